// The echo page's elements: the server field and its buttons, the status, the token form,
// the message field, and the log. No connection here: echo.js decides; this module shows.

import { el } from "../../static/dom.js";
import { clockTime, wsUrl } from "../../static/socket.js";

// A long session must not grow the page without bound: older entries are dropped.
const MAX_LOG_ENTRIES = 500;

/**
 * Fill `root` with the echo page.
 *
 * @param {HTMLElement} root - its old content is replaced
 * @param {{ element: HTMLElement }} auth - the token form (auth.js), shown under the status
 */
export function echoView(root, auth) {
  const url = el("input", {
    id: "echo-url", "data-testid": "echo-url", type: "url", value: wsUrl("echo"),
    spellcheck: false, autocomplete: "off",
  });
  const connectButton = el("button", {
    id: "echo-connect", "data-testid": "echo-connect", type: "submit", text: "Connect",
  });
  const disconnectButton = el("button", {
    id: "echo-disconnect", "data-testid": "echo-disconnect", type: "button",
    class: "secondary", text: "Disconnect",
  });
  const status = el("output", {
    id: "echo-status", "data-testid": "echo-status", class: "status", role: "status",
  });
  const input = el("input", {
    id: "echo-input", "data-testid": "echo-input", type: "text", autocomplete: "off",
    placeholder: "Type a message and press Enter",
  });
  const sendButton = el("button", {
    id: "echo-send", "data-testid": "echo-send", type: "submit", text: "Send",
  });
  const clearButton = el("button", {
    id: "echo-clear", "data-testid": "echo-clear", type: "button", class: "secondary",
    text: "Clear log",
  });
  const log = el("ol", {
    id: "echo-log", "data-testid": "echo-log", class: "log", role: "log",
    "aria-label": "Messages",
  });

  // Two forms, so that Enter in the URL field connects and Enter in the message field
  // sends: the browser submits a form from its text field for free.
  const connectForm = el("form", { class: "row", id: "echo-connect-form" },
    el("label", { for: "echo-url", text: "Server" }), url, connectButton, disconnectButton);
  const sendForm = el("form", { class: "row", id: "echo-send-form" },
    el("label", { for: "echo-input", text: "Message" }), input, sendButton);

  root.replaceChildren(
    el("section", { class: "card", "aria-labelledby": "echo-title" },
      el("h1", { id: "echo-title", text: "Echo" }),
      el("p", { class: "lead", text:
        "The server at /echo sends every message straight back. Connect, send a few " +
        "messages, and watch the round-trip time of each one." }),
      connectForm,
      el("p", { class: "status-line" }, "Status: ", status),
      auth.element,
      sendForm,
    ),
    el("section", { class: "card", "aria-labelledby": "echo-log-title" },
      el("div", { class: "log-header" },
        el("h2", { id: "echo-log-title", text: "Log" }), clearButton),
      log,
    ),
  );
  clearButton.addEventListener("click", () => log.replaceChildren());

  return {
    url, input, connectForm, sendForm, disconnectButton,

    /**
     * Show the connection state, and enable exactly the controls that make sense in it.
     * `problem` marks a state worth noticing (an abnormal close, a bad URL): it turns red.
     */
    setState(state, text = state, problem = false) {
      status.dataset.state = state;
      status.textContent = text;
      status.toggleAttribute("data-problem", problem);
      const busy = state === "connecting" || state === "open" || state === "closing";
      url.disabled = busy;
      connectButton.disabled = busy;
      disconnectButton.disabled = !busy || state === "closing";
      input.disabled = state !== "open";
      sendButton.disabled = state !== "open";
    },

    /** Add one log line; `direction` is "sent", "received" or "event" (open, close...). */
    addEntry(direction, text, rttMs) {
      const arrow = { sent: "→", received: "←", event: "•" }[direction];
      const entry = el("li", { class: `entry ${direction}`, dataset: { direction } },
        el("time", { class: "time", text: clockTime() }),
        el("span", { class: "direction", "aria-label": direction, text: arrow }),
        el("span", { class: "text", text }),
        rttMs === undefined ? null : el("span", {
          class: "rtt", title: "round-trip time", text: `${rttMs.toFixed(1)} ms`,
        }),
      );
      // Stay pinned to the newest entry unless the reader scrolled up to look at older ones.
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
      log.append(entry);
      while (log.childElementCount > MAX_LOG_ENTRIES) log.firstElementChild.remove();
      if (atBottom) log.scrollTop = log.scrollHeight;
    },
  };
}
