// The ball page's controls: each change goes to the server as an event, and the controls
// show the server's state (what any client set last), except one the user is moving.

const LOCAL_EDIT_MS = 1000; // a control the user just moved is not overwritten from frames

/**
 * Wire the view's controls (ball-view.js) to `send`.
 *
 * @param {object} view - ballView()'s controls
 * @param {(event: object) => void} send - sends a `ball.control` or `ball.kick` event
 * @param {() => object | null} latest - the server's newest state, for the pause toggle
 * @returns {(state: object) => void} reflect: show the server's `state` in the controls
 */
export function wireControls(view, send, latest) {
  const { speed, speedOut, radius, radiusOut, color, pauseButton, kickButton } = view;
  const lastLocalEdit = new Map(); // control -> performance.now() of the user's last change

  function setControl(control, value) {
    // Leave a control alone while the user is moving it: the frames in flight still
    // carry the old value, and the slider would jump back under their finger.
    const editedAt = lastLocalEdit.get(control) ?? -Infinity;
    if (performance.now() - editedAt < LOCAL_EDIT_MS) return;
    const text = String(value);
    if (control.value !== text) control.value = text;
  }

  function edited(control) {
    lastLocalEdit.set(control, performance.now());
  }

  speed.addEventListener("input", () => {
    edited(speed);
    speedOut.textContent = Number(speed.value).toFixed(2);
    send({ type: "ball.control", speed: Number(speed.value) });
  });
  radius.addEventListener("input", () => {
    edited(radius);
    radiusOut.textContent = Number(radius.value).toFixed(3);
    send({ type: "ball.control", radius: Number(radius.value) });
  });
  color.addEventListener("input", () => {
    edited(color);
    send({ type: "ball.control", color: color.value });
  });
  pauseButton.addEventListener("click", () => {
    // Toggle what the server last said, not what this button last did: another client
    // may have paused or resumed the ball since.
    const paused = latest() ? Boolean(latest().paused) : false;
    send({ type: "ball.control", paused: !paused });
  });
  kickButton.addEventListener("click", () => {
    const random = () => Math.round((Math.random() * 2 - 1) * 100) / 100; // -1..1
    send({ type: "ball.kick", dx: random(), dy: random() });
  });

  /** Show the server's state in the controls, so another client's change shows here too. */
  return function reflect(state) {
    const paused = Boolean(state.paused);
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    setControl(speed, Math.hypot(state.vx, state.vy));
    setControl(radius, state.radius);
    setControl(color, state.color);
    speedOut.textContent = Math.hypot(state.vx, state.vy).toFixed(2);
    radiusOut.textContent = Number(state.radius).toFixed(3);
  };
}
