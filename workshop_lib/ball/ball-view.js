// The ball page's elements: the status, the controls, and the two panels (pushed and
// polled), each a canvas and its numbers. No connection and no drawing here: ball.js
// decides, canvas.js draws.

import { el } from "../../static/dom.js";

/**
 * Fill `root` with the ball page.
 *
 * @param {HTMLElement} root - its old content is replaced
 * @param {{ element: HTMLElement }} auth - the token form (auth.js), shown under the status
 * @param {number} pollDefaultMs - the polling interval the slider starts at
 */
export function ballView(root, auth, pollDefaultMs) {
  const status = el("output", {
    id: "ball-status", "data-testid": "ball-status", class: "status", role: "status",
  });
  const reconnectButton = el("button", {
    id: "ball-reconnect", "data-testid": "ball-reconnect", type: "button", class: "secondary",
    text: "Reconnect now", hidden: true,
  });
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
    min: "100", max: "1000", step: "50", value: String(pollDefaultMs),
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

  return {
    reconnectButton, speed, speedOut, radius, radiusOut, color, pauseButton, kickButton,
    interval, intervalOut, pollError, push, poll,

    /** Show the connection's state; the controls work only on an open connection. */
    setState(state, text, problem = false) {
      status.dataset.state = state;
      status.textContent = text;
      status.toggleAttribute("data-problem", problem);
      const open = state === "open";
      for (const control of [speed, radius, color, pauseButton, kickButton]) {
        control.disabled = !open;
      }
    },

    showError(text) {
      errorLine.textContent = text;
      errorLine.toggleAttribute("hidden", !text);
    },
  };
}

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
