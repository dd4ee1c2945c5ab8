// Drawing the ball's square field on a <canvas>. No network and no page state here:
// the page (ball.js) and the notebook's view (view.js) decide *what* to draw and *when*;
// this module only knows *how*.
//
// The ball's state is in unit coordinates (0..1 across and down), so each draw scales the
// canvas to a 1 x 1 square and draws the state as it is.

/**
 * Match the canvas's backing store to its size on screen (times the pixel ratio), so the
 * ball stays sharp on any screen and after the layout changes. CSS sets the size.
 *
 * @param {HTMLCanvasElement} canvas
 * @returns {number} the side of the square in device pixels
 */
export function fitCanvas(canvas) {
  const side = Math.max(1, Math.round(canvas.clientWidth * (window.devicePixelRatio || 1)));
  if (canvas.width !== side || canvas.height !== side) {
    canvas.width = side;
    canvas.height = side;
  }
  return side;
}

/**
 * Draw the field, an optional trail, and the ball.
 *
 * @param {HTMLCanvasElement} canvas
 * @param {object | null} state - a `ball.state` event, or null before the first one
 * @param {object} [options]
 * @param {{x: number, y: number}[]} [options.trail] - earlier positions, oldest first
 * @param {"line" | "dots"} [options.trailStyle] - a smooth line (pushed) or the separate
 *   positions that were seen (polled), which shows how far the ball jumped between them
 * @param {string} [options.message] - text to show instead of a ball (e.g. "waiting…")
 */
export function drawField(canvas, state, { trail = [], trailStyle = "line", message } = {}) {
  const side = fitCanvas(canvas);
  const ctx = canvas.getContext("2d");
  const styles = getComputedStyle(canvas);
  const color = (name, fallback) => styles.getPropertyValue(name).trim() || fallback;
  const px = 1 / side; // one device pixel, in unit coordinates

  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, side, side);
  ctx.setTransform(side, 0, 0, side, 0, 0);

  // The field: a faint background and a subtle border.
  ctx.fillStyle = color("--field", "#f6f7f9");
  ctx.fillRect(0, 0, 1, 1);
  ctx.strokeStyle = color("--border", "#d1d9e0");
  ctx.lineWidth = 2 * px;
  ctx.strokeRect(px, px, 1 - 2 * px, 1 - 2 * px);

  if (!state) {
    if (message) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = color("--muted", "#59636e");
      ctx.font = `${Math.round(side / 22)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(message, side / 2, side / 2);
    }
    return;
  }

  // The trail, fading towards the oldest position.
  if (trail.length > 1 && trailStyle === "line") {
    ctx.lineCap = "round";
    ctx.strokeStyle = state.color;
    for (let i = 1; i < trail.length; i++) {
      const a = trail[i - 1];
      const b = trail[i];
      ctx.globalAlpha = 0.35 * (i / trail.length);
      ctx.lineWidth = state.radius * 0.6 * (i / trail.length);
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
    }
  } else if (trailStyle === "dots") {
    ctx.fillStyle = state.color;
    trail.forEach((point, i) => {
      ctx.globalAlpha = 0.25 * ((i + 1) / (trail.length + 1));
      ctx.beginPath();
      ctx.arc(point.x, point.y, state.radius, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
  ctx.globalAlpha = 1;

  // The ball: a filled circle in its colour, with a thin darker rim.
  ctx.beginPath();
  ctx.arc(state.x, state.y, state.radius, 0, 2 * Math.PI);
  ctx.fillStyle = state.color;
  ctx.fill();
  ctx.lineWidth = 1.5 * px;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.25)";
  ctx.stroke();
}
