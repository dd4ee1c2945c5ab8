// The ball's live display inside JupyterLab: an anywidget whose front end is itself a
// WebSocket client of the ball stream. Frames go straight from the server to this canvas,
// not through the kernel, so the ball moves smoothly at 60 Hz while the kernel stays idle.
// Twice a second it reports what it received (frames, fps, delay) back to the kernel, as a
// custom widget message (see report()).
//
// It draws and reconnects with the ball page's own code: an anywidget module cannot import
// files beside it, so ball/widgets.py writes the files imported below into this one
// (ball/bundle.py), and the widget runs what the page runs.

import { drawField } from "./canvas.js";
import { backoffDelay } from "../../static/reconnect.js";
import { NO_RETRY } from "../../static/rules.js";

const STATS_EVERY_MS = 500;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

/**
 * JupyterLab's base URL, from the page config it writes into every page
 * (`<script id="jupyter-config-data">`, key `baseUrl`, e.g. "/user/learner/"), or null.
 *
 * @param {Document} [doc=document]
 * @returns {string | null}
 */
export function labBaseUrl(doc = document) {
  try {
    const config = JSON.parse(doc.getElementById("jupyter-config-data")?.textContent || "{}");
    return typeof config.baseUrl === "string" ? config.baseUrl : null;
  } catch {
    return null;
  }
}

/**
 * The address this page opens for the kernel-side WebSocket `url` (e.g.
 * "ws://127.0.0.1:8765/ball"). Direct when the page is on loopback or on the server's own
 * host (a laptop, an ssh tunnel), or when `url` is not on the kernel's loopback (the room's
 * server); otherwise through jupyter-server-proxy: the page's JupyterLab base URL +
 * `proxy/{port}/path`, wss: on an https: page. `hint`: the kernel's own answer
 * (links.browser_ws(): it knows it runs behind a hub, which a page served from loopback by
 * a test or an ssh tunnel cannot tell); an absolute hint is used as it is.
 *
 * @param {string} url
 * @param {{hint?: string, page?: Location | URL, baseUrl?: string | null}} [where]
 * @returns {string}
 */
export function socketAddress(url, { hint = "", page = location, baseUrl = null } = {}) {
  const target = new URL(url);
  if (!LOOPBACK.test(target.hostname)) return url; // a real address: the room's server
  if (/^wss?:\/\//.test(hint)) return hint;
  const here = new URL(page.href);
  const direct = LOOPBACK.test(here.hostname) || here.hostname === target.hostname;
  if (!hint && direct) return url;
  // The page's own base URL is the surest; a page without one (not JupyterLab) uses the
  // kernel's relative hint, or the proxy at the site's root.
  const proxied =
    baseUrl === null && hint
      ? new URL(hint, here.href)
      : new URL(
          `${(baseUrl ?? "/").replace(/\/?$/, "/")}proxy/${target.port}${target.pathname}${target.search}`,
          here.origin,
        );
  proxied.protocol = here.protocol === "https:" ? "wss:" : "ws:";
  return proxied.href;
}

/** @param {{ model: any, el: HTMLElement }} context */
function render({ model, el }) {
  const size = model.get("size");
  const canvas = document.createElement("canvas");
  canvas.className = "workshop-ball-canvas";
  // The size on screen; drawField() matches the pixels behind it to the screen's density.
  canvas.style.display = "block";
  canvas.style.boxSizing = "content-box";
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const caption = document.createElement("div");
  caption.className = "workshop-ball-caption";
  caption.style.font = "12px monospace";
  // One line of fixed height: a caption that wrapped as its numbers changed would move
  // everything below the view twice a second (plots included) while the learner reads.
  caption.style.whiteSpace = "nowrap";
  caption.style.overflow = "hidden";
  caption.style.textOverflow = "ellipsis";
  caption.style.height = "1.4em";
  caption.style.maxWidth = `${size}px`;
  el.classList.add("workshop-ball-view");
  el.append(canvas, caption);

  let latest = null; // only the newest frame is drawn: the client half of conflation
  let frames = 0;
  let arrivals = []; // [time ms, delay ms] over the last second
  let closed = false; // for good: the view went away, or the server refused us
  let connected = false;
  let attempt = 0; // reconnect attempts since the last frame
  let retry = null;
  let socket = null;

  // Worked out once, from this page: where the browser can reach the server's port.
  const address = socketAddress(model.get("url"), {
    hint: model.get("browser_url"),
    baseUrl: labBaseUrl(),
  });
  canvas.dataset.address = address;

  /**
   * Tell the kernel what this view received (BallView.handle_report reads it).
   *
   * A message of its own (model.send), not widget state (model.set + save_changes):
   * ipywidgets sends a model's next state update only once the kernel has said "idle" for
   * the one before, and ipykernel 7 handles a widget message that arrives while a cell runs
   * (at any moment of a Run All) without saying busy or idle, so the first report that
   * landed then was the view's last. Messages are not held back that way.
   *
   * @param {number | null} [delay] - median delay over the last second, ms
   */
  function report(delay = null) {
    model.send({
      type: "report",
      frames,
      fps: arrivals.length,
      delay_ms: delay === null ? -1 : delay,
      tick: latest ? latest.tick : -1,
      connected,
    });
  }

  function connect() {
    socket = new WebSocket(address);
    // The server's in-band reason for a close it is about to make ({"type": "error", ...,
    // "close": 4001}): behind jupyter-server-proxy the close itself arrives as 1006.
    let announced = null;
    socket.onopen = () => {
      caption.textContent = "connected";
      // A browser cannot send an Authorization header: the token is the first message.
      const token = model.get("token");
      if (token) socket.send(JSON.stringify({ type: "auth", token }));
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "error" && Number.isInteger(event.close)) announced = event;
      if (event.type !== "ball.state") return;
      connected = true;
      attempt = 0;
      latest = event;
      frames += 1;
      const now = Date.now();
      arrivals.push([now, now - event.ts * 1000]);
    };
    socket.onclose = (event) => {
      connected = false;
      if (closed) return;
      const code = announced ? announced.close : event.code;
      const reason = announced ? String(announced.message) : event.reason;
      const why = `close code ${code}${reason ? `: ${reason}` : ""}`;
      if (NO_RETRY.has(code)) {
        closed = true;
        caption.textContent = `disconnected (${why}): run the cell again`;
      } else {
        // The server restarted or the network dropped: try again, politely.
        const delay = backoffDelay(attempt++);
        caption.textContent = `disconnected (${why}); reconnecting in ${(delay / 1000).toFixed(1)} s…`;
        retry = setTimeout(connect, delay);
      }
      report();
    };
  }
  connect();

  // Paint only a frame not painted yet, and only while the canvas is on screen: two views
  // repainting 60 times a second whether or not anything changed kept the page's main
  // thread busy, and the cells scrolled into view (lesson 02's plots) were painted late.
  let painted; // undefined until the first paint, which says "waiting" until a frame came
  let visible = true;
  const watcher = new IntersectionObserver((entries) => {
    visible = entries[entries.length - 1].isIntersecting;
  });
  watcher.observe(canvas);

  function draw() {
    // clientWidth 0: not laid out yet (the output area is still being built), no size to fit.
    if (latest !== painted && visible && canvas.clientWidth > 0) {
      painted = latest;
      drawField(canvas, latest, { message: "waiting for the first frame…" });
      if (latest) canvas.dataset.tick = String(latest.tick);
    }
    if (!closed) frame = requestAnimationFrame(draw);
  }
  let frame = requestAnimationFrame(draw);

  const timer = setInterval(() => {
    const now = Date.now();
    arrivals = arrivals.filter(([at]) => at >= now - 1000);
    const delays = arrivals.map(([, delay]) => delay).sort((a, b) => a - b);
    const delay = delays.length ? delays[Math.floor(delays.length / 2)] : null;
    if (connected) {
      caption.textContent = latest
        ? `tick ${latest.tick} · ${arrivals.length} fps · delay ${delay === null ? "-" : delay.toFixed(1)} ms` +
          (latest.paused ? " · paused" : "")
        : "waiting for the first frame…";
    }
    report(delay);
  }, STATS_EVERY_MS);

  // Called when the view goes away (cell re-run, output cleared, widget closed).
  return () => {
    closed = true;
    clearInterval(timer);
    clearTimeout(retry);
    cancelAnimationFrame(frame);
    watcher.disconnect();
    socket.close(1000, "view closed");
  };
}

export default { render };
