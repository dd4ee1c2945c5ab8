// The bouncing-ball page: one ball on the server, seen two ways side by side.
//
// Left, the state the server *pushes* over the WebSocket at /ball (60 frames a second);
// right, the state this page *polls* from GET api/ball every N ms. Same ball, same
// machine: the difference in smoothness, delay and bytes is the lesson. The controls send
// `ball.control` and `ball.kick` over the same WebSocket, so every open page sees them.
//
// The connection (connection.js) sends the token first when the server wants one, checks
// with heartbeats that it is alive, and reconnects with backoff when it is lost: after a
// server restart the ball comes back by itself, with the new server's first frame.
//
// This file wires the pieces: ball-view.js (the elements), ball-controls.js (the controls),
// poller.js (the HTTP side), feed.js (each side's numbers) and canvas.js (the drawing).

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { tokenForm } from "../../static/auth.js";
import { Connection } from "../../static/connection.js";
import { wireControls } from "./ball-controls.js";
import { ballView } from "./ball-view.js";
import { drawField } from "./canvas.js";
import { newFeed, receive, showStats } from "./feed.js";
import { poller } from "./poller.js";

const POLL_DEFAULT_MS = 250;
const PUSH_TRAIL = 24; // positions in the pushed canvas's trail (about 0.4 s at 60 Hz)
const POLL_TRAIL = 5; // earlier polled positions shown as faint dots
const STATS_EVERY_MS = 100; // refresh the numbers 10 times a second: readable, not flickering

/**
 * Build the ball page inside `root`, connect, start polling, and start drawing.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: closes the WebSocket, stops the polling and the drawing
 */
export function mountBallPage(root) {
  const auth = tokenForm(() => connection.start());
  const view = ballView(root, auth, POLL_DEFAULT_MS);
  const { setState, showError, push, poll } = view;
  const pushed = newFeed();
  const polled = newFeed();
  const encoder = new TextEncoder();
  let frameRequest = 0;
  let lastStatsAt = -Infinity;

  // -- the WebSocket: pushed frames and the controls ----------------------------------------
  const connection = new Connection("ball", {
    onConnecting({ attempt }) {
      view.reconnectButton.hidden = true;
      if (attempt === 0) setState("connecting", "connecting…");
      else setState("reconnecting", `reconnecting… (attempt ${attempt})`);
    },
    onReady() {
      auth.hide();
      setState("open", "connected, receiving frames");
    },
    onEvent(message, text) {
      if (message === null) {
        showError("the server sent something that is not JSON");
      } else if (message.type === "ball.state") {
        receive(pushed, message, encoder.encode(text).length, PUSH_TRAIL);
        reflect(message);
      } else if (message.type === "error") {
        showError(`Server said: ${message.code}: ${message.message}`);
      }
    },
    onLost({ why, willRetry }) {
      // The canvas says "waiting…" instead of showing a ball that no longer moves, and the
      // trail does not join the old server's last position to the new server's first.
      pushed.latest = null;
      pushed.trail = [];
      if (!willRetry) setState("closed", `disconnected (${why})`, true);
    },
    onWait({ leftMs, why }) {
      view.reconnectButton.hidden = false;
      setState("reconnecting",
        `disconnected (${why}) — reconnecting in ${Math.ceil(leftMs / 1000)} s`);
    },
    onNeedToken({ code, why }) {
      setState("closed", code === null ? "this server needs a token" : `closed (${why})`, true);
      auth.show(code === null ? "" : `The server said: ${why}`);
    },
  });

  view.reconnectButton.addEventListener("click", () => connection.retryNow());
  const reflect = wireControls(view, (event) => connection.send(event), () => pushed.latest);

  // -- HTTP polling -------------------------------------------------------------------------
  const pollInterval = () => Number(view.interval.value) || POLL_DEFAULT_MS;
  const polling = poller({
    interval: pollInterval,
    onState: (state, bytes) => receive(polled, state, bytes, POLL_TRAIL),
    onError: (text) => {
      view.pollError.textContent = text;
    },
  });
  view.interval.addEventListener("input", () => {
    view.intervalOut.textContent = `${pollInterval()} ms`;
    polling.schedule(); // a shorter interval takes effect now, not after the old one ran out
  });

  // -- drawing ------------------------------------------------------------------------------
  function frame(now) {
    frameRequest = requestAnimationFrame(frame);
    // Client-side conflation: however many frames arrived since the last repaint, only
    // the latest is drawn. Both canvases are redrawn every time so a resize shows at once.
    for (const [feed, canvas, style] of [
      [pushed, push.canvas, "line"],
      [polled, poll.canvas, "dots"],
    ]) {
      const state = feed.latest;
      drawField(canvas, state, {
        trail: feed.trail, trailStyle: style, message: "waiting for the first update…",
      });
      if (state && state !== feed.drawn) {
        feed.drawn = state;
        Object.assign(canvas.dataset, {
          tick: String(state.tick), x: String(state.x), y: String(state.y),
          vx: String(state.vx), vy: String(state.vy), radius: String(state.radius),
          color: state.color, paused: String(state.paused), ts: String(state.ts),
        });
      }
    }
    if (now - lastStatsAt >= STATS_EVERY_MS) {
      lastStatsAt = now;
      showStats(pushed, push.stats, now);
      showStats(polled, poll.stats, now);
    }
  }

  // -- start --------------------------------------------------------------------------------
  view.intervalOut.textContent = `${pollInterval()} ms`;
  showError("");
  connection.start();
  polling.schedule();
  frameRequest = requestAnimationFrame(frame);

  return () => {
    cancelAnimationFrame(frameRequest);
    polling.stop();
    connection.stop("left the page"); // and no reconnect: the page it would update is gone
  };
}

// What main.js mounts for this lesson's page (its module is named in /api/pages).
export default mountBallPage;
