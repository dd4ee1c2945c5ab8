// The Realtime page: the course's local Realtime-API server, from a browser.
//
// A browser's WebSocket cannot set an Authorization header, so it logs in the way the real
// Realtime API lets browsers do: two subprotocols, "realtime" and
// "openai-insecure-api-key.<key>". ("Insecure" because a key in a page is readable by anyone
// who opens the page's developer tools: real apps mint a short-lived key on their server.)
// Here the key is the workshop's token, or anything on a server without one.
//
// The page asks for text first (session.update, output_modalities ["text"]): the service
// answers in audio unless asked. Every event the page sends (↑) and gets (↓) is listed with
// its ids, and the answer assembles from response.output_text.delta events as they arrive;
// Cancel sends response.cancel mid-stream (barge-in). Text from the server is set with
// textContent.

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { serverAuth, storedToken, tokenForm } from "../../static/auth.js";
import { el } from "../../static/dom.js";
import { clockTime, describeClose, wsUrl } from "../../static/socket.js";

const MAX_EVENTS = 300; // older lines go: a long session must not grow the page forever
const MODEL = "workshop-local";

/**
 * Build the Realtime page inside `root`.
 *
 * @param {HTMLElement} root - the element to fill
 * @returns {() => void} unmount: closes the connection
 */
export default function mountRealtimePage(root) {
  const status = el("output", { id: "realtime-status", "data-testid": "realtime-status",
    class: "status", role: "status", text: "connecting…" });
  const input = el("input", { id: "realtime-text", "data-testid": "realtime-text", type: "text",
    maxLength: 2000, placeholder: "Say something to the local model", autocomplete: "off" });
  const send = el("button", { id: "realtime-send", "data-testid": "realtime-send",
    type: "submit", text: "Send", disabled: true });
  const cancel = el("button", { id: "realtime-cancel", "data-testid": "realtime-cancel",
    type: "button", class: "secondary", text: "Cancel", disabled: true });
  const again = el("button", { id: "realtime-connect", "data-testid": "realtime-connect",
    type: "button", class: "secondary", text: "Connect again", hidden: true });
  const answer = el("p", { id: "realtime-answer", "data-testid": "realtime-answer",
    class: "realtime-answer", "aria-live": "polite" });
  const events = el("ol", { id: "realtime-events", "data-testid": "realtime-events",
    class: "realtime-events", role: "log", "aria-label": "Events" });
  const form = el("form", { class: "row" }, input, send, cancel, again);
  const auth = tokenForm(() => connect());

  root.replaceChildren(
    el("section", { class: "card", id: "realtime-page" },
      el("h1", { text: "Realtime API" }),
      el("p", { text: "Typed JSON events over one WebSocket, the protocol of the OpenAI and " +
        "Azure OpenAI Realtime API, answered by the workshop's local model." }),
      status, auth.element, form,
      el("h2", { text: "Answer" }), answer,
      el("h2", { text: "Events" }), events),
  );

  let socket = null;
  let responseId = null; // the response streaming now, if any
  let closedByPage = false;

  function log(direction, event) {
    const ids = ["response_id", "item_id"].filter((key) => event[key])
      .map((key) => `${key}=${event[key]}`);
    if (event.response?.id) ids.push(`response=${event.response.id}`);
    if (event.item?.id) ids.push(`item=${event.item.id}`);
    const detail = event.delta !== undefined ? JSON.stringify(event.delta)
      : event.error ? `${event.error.code}: ${event.error.message}` : "";
    events.append(el("li", { class: `event ${direction === "↑" ? "sent" : "received"}`,
      "data-type": event.type },
      el("span", { class: "event-time", text: clockTime() }),
      el("span", { class: "event-dir", text: direction }),
      el("code", { class: "event-type", text: event.type }),
      el("span", { class: "event-ids", text: ids.join(" ") }),
      el("span", { class: "event-detail", text: detail })));
    while (events.children.length > MAX_EVENTS) events.firstElementChild.remove();
    events.lastElementChild.scrollIntoView({ block: "nearest" });
  }

  function emit(event) {
    const full = { event_id: `evt_page_${Date.now().toString(36)}`, ...event };
    socket.send(JSON.stringify(full));
    log("↑", full);
  }

  function onEvent(event) {
    log("↓", event);
    if (event.type === "session.created") {
      status.textContent = `connected: session ${event.session.id}, model ${event.session.model}`;
      emit({ type: "session.update", session: { type: "realtime", output_modalities: ["text"] } });
      send.disabled = false; // the server reads events in order: the update comes first
    } else if (event.type === "response.created") {
      responseId = event.response.id;
      answer.textContent = "";
      cancel.disabled = false;
    } else if (event.type === "response.output_text.delta") {
      answer.textContent += event.delta;
    } else if (event.type === "response.done") {
      responseId = null;
      cancel.disabled = true;
      status.textContent = `response ${event.response.status}`;
    } else if (event.type === "error") {
      status.textContent = `error ${event.error.code}: ${event.error.message}`;
    }
  }

  async function connect() {
    again.hidden = true;
    const mode = await serverAuth();
    const token = storedToken();
    if (mode === "token" && !token) {
      status.textContent = "This server needs a token.";
      auth.show();
      return;
    }
    const url = `${wsUrl("v1/realtime")}?model=${encodeURIComponent(MODEL)}`;
    // The key rides in a subprotocol; the server answers with "realtime" alone.
    socket = new WebSocket(url, ["realtime", `openai-insecure-api-key.${token || "local"}`]);
    socket.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        status.textContent = `a message that is not an event: ${error.message}`;
      }
    });
    socket.addEventListener("close", (close) => {
      send.disabled = cancel.disabled = true;
      responseId = null;
      if (closedByPage) return;
      const opened = socket.protocol === "realtime";
      status.textContent = opened ? `disconnected (${describeClose(close.code, close.reason)})`
        : "could not connect: is the server running, and the token right?";
      if (!opened && mode === "token") auth.show("The server refused the token.");
      again.hidden = false;
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the field sends, and the page does not reload
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    input.value = "";
    emit({ type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
    emit({ type: "response.create" });
  });
  cancel.addEventListener("click", () => {
    if (responseId) emit({ type: "response.cancel", response_id: responseId });
  });
  again.addEventListener("click", () => connect());

  connect();
  return () => {
    closedByPage = true;
    socket?.close(1000, "page left");
  };
}
