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

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { storedToken, tokenForm } from "../../static/auth.js";
import { drawField } from "./canvas.js";
import { Connection } from "../../static/connection.js";
import { el } from "../../static/dom.js";

const POLL_DEFAULT_MS = 250;
const PUSH_TRAIL = 24; // positions in the pushed canvas's trail (about 0.4 s at 60 Hz)
const POLL_TRAIL = 5; // earlier polled positions shown as faint dots
const STATS_EVERY_MS = 100; // refresh the numbers 10 times a second: readable, not flickering
const LOCAL_EDIT_MS = 1000; // a control the user just moved is not overwritten from frames

/**
 * Build the ball page inside `root`, connect, start polling, and start drawing.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: closes the WebSocket, stops the polling and the drawing
 */
export function mountBallPage(root) {
  // -- markup -------------------------------------------------------------------------------
  const status = el("output", {
    id: "ball-status", "data-testid": "ball-status", class: "status", role: "status",
  });
  const reconnectButton = el("button", {
    id: "ball-reconnect", "data-testid": "ball-reconnect", type: "button", class: "secondary",
    text: "Reconnect now", hidden: true,
  });
  const auth = tokenForm(() => connection.start());
  const errorLine = el("output", {
    id: "ball-error", "data-testid": "ball-error", class: "ball-error", "aria-live": "polite",
  });

  const speed = el("input", {
    id: "ball-speed", "data-testid": "ball-speed", type: "range",
    min: "0", max: "3", step: "0.05", value: "0.45",
  });
  const speedOut = el("output", { class: "ball-value", for: "ball-speed" });
  const radius = el("input", {
    id: "ball-radius", "data-testid": "ball-radius", type: "range",
    min: "0.01", max: "0.25", step: "0.005", value: "0.05",
  });
  const radiusOut = el("output", { class: "ball-value", for: "ball-radius" });
  const color = el("input", {
    id: "ball-color", "data-testid": "ball-color", type: "color", value: "#e4572e",
  });
  const pauseButton = el("button", {
    id: "ball-pause", "data-testid": "ball-pause", type: "button", text: "Pause",
    "aria-pressed": "false",
  });
  const kickButton = el("button", {
    id: "ball-kick", "data-testid": "ball-kick", type: "button", class: "secondary",
    text: "Kick",
  });

  const interval = el("input", {
    id: "ball-poll-interval", "data-testid": "ball-poll-interval", type: "range",
    min: "100", max: "1000", step: "50", value: String(POLL_DEFAULT_MS),
  });
  const intervalOut = el("output", { class: "ball-value", for: "ball-poll-interval" });

  const pollError = el("p", {
    id: "ball-poll-error", "data-testid": "ball-poll-error", class: "ball-poll-error",
  });
  const push = panel("push", "Pushed over WebSocket",
    "The server sends every tick; each repaint draws the newest frame.",
    el("p", { class: "ball-fixed",
      text: "No timer on this side: 60 updates a second, even when nothing moves." }),
    "Bytes (message payloads)", "Delay (now − server ts)");
  const poll = panel("poll", "Polled over HTTP",
    "GET api/ball on a timer; each answer stays on screen until the next.",
    el("div", { class: "ball-control" },
      el("label", { for: "ball-poll-interval", text: "Poll every" }), interval, intervalOut),
    "Bytes (response bodies only*)", "Staleness (now − server ts)", pollError);

  root.replaceChildren(
    el("section", { class: "card", "aria-labelledby": "ball-title" },
      el("h1", { id: "ball-title", text: "Bouncing ball" }),
      el("p", { class: "lead", text:
        "One ball on the server, moved 60 times a second and the same for every client: " +
        "open this page in two tabs and steer it from either." }),
      el("p", { class: "status-line action-status-line" }, "Status: ", status, reconnectButton),
      auth.element,
      el("div", { class: "ball-controls" },
        el("div", { class: "ball-control" },
          el("label", { for: "ball-speed", text: "Speed" }), speed, speedOut),
        el("div", { class: "ball-control" },
          el("label", { for: "ball-radius", text: "Radius" }), radius, radiusOut),
        el("div", { class: "ball-control compact" },
          el("label", { for: "ball-color", text: "Colour" }), color),
        el("div", { class: "ball-buttons" }, pauseButton, kickButton),
      ),
      el("p", { class: "ball-error-line" }, errorLine),
    ),
    el("section", { class: "ball-panels" }, push.section, poll.section),
    el("p", { class: "ball-note", text:
      "* Bytes are what the page itself can see. WebSocket: the text of each message " +
      "(each frame adds 2–4 bytes of header on top). HTTP: the body of each response; " +
      "fetch() does not expose the request and response headers (a few hundred bytes per " +
      "poll), so they are not counted. Delay and staleness compare the server's clock " +
      "(ts) with this page's clock, which is only meaningful on the same machine." }),
  );

  /** One side of the comparison: a heading, a control row, a square canvas, its numbers. */
  function panel(side, title, blurb, controlRow, bytesLabel, delayLabel, extra = null) {
    const stat = (name, label) => {
      const value = el("dd", {
        id: `ball-${side}-${name}`, "data-testid": `ball-${side}-${name}`, class: "ball-stat",
        text: "–",
      });
      return { value, nodes: [el("dt", { text: label }), value] };
    };
    const stats = {
      count: stat("count", "Updates received"),
      rate: stat("rate", "Updates per second"),
      bytes: stat("bytes", bytesLabel),
      delay: stat("delay", delayLabel),
      tick: stat("tick", "Tick shown"),
    };
    const canvas = el("canvas", {
      id: `ball-${side}-canvas`, "data-testid": `ball-${side}-canvas`, class: "ball-canvas",
      role: "img", "aria-label": `${title}: the ball's field`,
    });
    // Five rows in every panel; the panels share them (CSS subgrid), so both canvases
    // start at the same height even when one blurb wraps onto more lines.
    const section = el("section", {
      class: "card ball-panel", "aria-labelledby": `ball-${side}-title`,
    },
      el("h2", { id: `ball-${side}-title`, text: title }),
      el("p", { class: "ball-blurb", text: blurb }),
      el("div", { class: "ball-panel-control" }, controlRow),
      canvas,
      el("div", {},
        el("dl", { class: "ball-stats" }, ...Object.values(stats).flatMap((s) => s.nodes)),
        extra),
    );
    return { section, canvas, stats };
  }

  // -- state --------------------------------------------------------------------------------
  /** One side's numbers: what arrived, when, and what is on screen. */
  const newFeed = () => ({
    latest: null, // the newest state received
    drawn: null, // the state on the canvas
    trail: [], // earlier positions
    count: 0,
    bytes: 0,
    arrivals: [], // performance.now() of recent arrivals, for the per-second rate
  });
  const pushed = newFeed();
  const polled = newFeed();
  const encoder = new TextEncoder();
  const lastLocalEdit = new Map(); // control -> performance.now() of the user's last change

  let frameRequest = 0;
  let pollTimer = 0;
  let pollAbort = null;
  let pollInFlight = false;
  let lastPollStart = -Infinity;
  let lastStatsAt = -Infinity;
  let mounted = true;

  function setState(state, text, problem = false) {
    status.dataset.state = state;
    status.textContent = text;
    status.toggleAttribute("data-problem", problem);
    const open = state === "open";
    for (const control of [speed, radius, color, pauseButton, kickButton]) {
      control.disabled = !open;
    }
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.toggleAttribute("hidden", !text);
  }

  /** Record one arrival of `state` (`size` bytes) on a feed. */
  function receive(feed, state, size, keepTrail) {
    if (feed.latest && keepTrail) {
      feed.trail.push({ x: feed.latest.x, y: feed.latest.y });
      if (feed.trail.length > keepTrail) feed.trail.shift();
    }
    feed.latest = state;
    feed.count += 1;
    feed.bytes += size;
    feed.arrivals.push(performance.now());
  }

  // -- the WebSocket: pushed frames and the controls ----------------------------------------
  const connection = new Connection("ball", {
    onConnecting({ attempt }) {
      reconnectButton.hidden = true;
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
      reconnectButton.hidden = false;
      setState("reconnecting",
        `disconnected (${why}) — reconnecting in ${Math.ceil(leftMs / 1000)} s`);
    },
    onNeedToken({ code, why }) {
      setState("closed", code === null ? "this server needs a token" : `closed (${why})`, true);
      auth.show(code === null ? "" : `The server said: ${why}`);
    },
  });

  function send(event) {
    connection.send(event);
  }

  reconnectButton.addEventListener("click", () => connection.retryNow());

  /** Show the server's state in the controls, so another client's change shows here too. */
  function reflect(state) {
    const paused = Boolean(state.paused);
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    setControl(speed, Math.hypot(state.vx, state.vy));
    setControl(radius, state.radius);
    setControl(color, state.color);
    speedOut.textContent = Math.hypot(state.vx, state.vy).toFixed(2);
    radiusOut.textContent = Number(state.radius).toFixed(3);
  }

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
    const paused = pushed.latest ? Boolean(pushed.latest.paused) : false;
    send({ type: "ball.control", paused: !paused });
  });
  kickButton.addEventListener("click", () => {
    const random = () => Math.round((Math.random() * 2 - 1) * 100) / 100; // -1..1
    send({ type: "ball.kick", dx: random(), dy: random() });
  });

  // -- HTTP polling -------------------------------------------------------------------------
  function pollInterval() {
    return Number(interval.value) || POLL_DEFAULT_MS;
  }

  /** Run one poll when its time has come, then plan the next one. */
  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!mounted || pollInFlight) return; // the running poll plans the next when it ends
    const wait = Math.max(0, lastPollStart + pollInterval() - performance.now());
    pollTimer = setTimeout(pollOnce, wait);
  }

  async function pollOnce() {
    pollInFlight = true;
    lastPollStart = performance.now();
    pollAbort = new AbortController();
    try {
      // Unlike a WebSocket, fetch() can send a header: a token server wants it here.
      const token = storedToken();
      const response = await fetch(new URL("api/ball", location.href), {
        cache: "no-store",
        signal: pollAbort.signal,
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      const body = await response.arrayBuffer();
      if (!mounted) return;
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const state = JSON.parse(new TextDecoder().decode(body));
      receive(polled, state, body.byteLength, POLL_TRAIL);
      pollError.textContent = "";
    } catch (error) {
      if (!mounted || error.name === "AbortError") return;
      pollError.textContent = `Last poll failed: ${error.message}`;
    } finally {
      pollInFlight = false;
      pollAbort = null;
      if (mounted) schedulePoll();
    }
  }

  interval.addEventListener("input", () => {
    intervalOut.textContent = `${pollInterval()} ms`;
    schedulePoll(); // a shorter interval takes effect now, not after the old one ran out
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

  function showStats(feed, stats, now) {
    while (feed.arrivals.length && now - feed.arrivals[0] > 1000) feed.arrivals.shift();
    setStat(stats.count, feed.count, String(feed.count));
    setStat(stats.rate, feed.arrivals.length, String(feed.arrivals.length));
    setStat(stats.bytes, feed.bytes, formatBytes(feed.bytes));
    setStat(stats.tick, feed.drawn?.tick, feed.drawn ? String(feed.drawn.tick) : "–");
    if (feed.drawn) {
      // How old the state on screen is: server clock at sending vs this page's clock now.
      const delay = Date.now() - feed.drawn.ts * 1000;
      setStat(stats.delay, delay, `${Math.round(delay)} ms`);
    }
  }

  function setStat(stat, value, text) {
    if (value !== undefined) stat.value.dataset.value = String(value);
    if (stat.value.textContent !== text) stat.value.textContent = text;
  }

  // -- start --------------------------------------------------------------------------------
  intervalOut.textContent = `${pollInterval()} ms`;
  showError("");
  connection.start();
  schedulePoll();
  frameRequest = requestAnimationFrame(frame);

  return () => {
    mounted = false;
    cancelAnimationFrame(frameRequest);
    clearTimeout(pollTimer);
    pollAbort?.abort();
    connection.stop("left the page"); // and no reconnect: the page it would update is gone
  };
}

/** 1234 -> "1,234 B", 123456 -> "120.6 KiB". */
function formatBytes(bytes) {
  if (bytes < 10 * 1024) return `${bytes.toLocaleString("en")} B`;
  if (bytes < 10 * 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// What main.js mounts for this lesson's page (its module is named in /api/pages).
export default mountBallPage;
