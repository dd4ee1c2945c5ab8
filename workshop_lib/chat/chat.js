// The chat page: one room for everyone connected to /chat.
//
// The protocol (docs/protocol.md): send `chat.join` first and get `chat.welcome` (the name
// you were given, who is here, the recent history); then `chat.send` goes up and
// `chat.message`, `chat.joined` and `chat.left` come down, to every member in the same
// order. A bad event is answered with an `error` event and the connection stays up.
//
// Deep link: `/?name=ada#chat` opens this page and joins as "ada" at once, so an
// instructor can hand out one link per person (or per screen) and nobody has to type. The
// name travels in the query string because the fragment already chooses the page.
//
// The connection (connection.js) sends the token first when the server wants one, and
// checks with heartbeats that it is alive. When it is lost (the server restarted, the laptop
// slept), the page joins again by itself, with backoff, under the same name. Every piece of
// text that came from a person or the server is put on the page with textContent (dom.js),
// never as HTML.

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { serverAuth, storedToken, tokenForm } from "../../static/auth.js";
import { Connection, NO_RETRY, UNAUTHORIZED } from "../../static/connection.js";
import { el } from "../../static/dom.js";
import { describeClose } from "../../static/socket.js";

const MAX_NAME = 32; // the server's limits (workshop_lib/chat.py), checked here first
const MAX_TEXT = 500;
const MAX_LINES = 500; // older lines are dropped: a day-long session must not grow the page
const JOIN_TIMEOUT_MS = 10_000; // no welcome this long after the join: treat it as lost
const ERROR_SHOWN_MS = 8_000;

/**
 * Build the chat page inside `root`; join at once if the URL carries `?name=`.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: closes the connection and cancels any reconnect timer
 */
export function mountChatPage(root) {
  // -- markup -------------------------------------------------------------------------------
  const nameInput = el("input", {
    id: "chat-name", "data-testid": "chat-name", type: "text", maxLength: MAX_NAME,
    autocomplete: "nickname", placeholder: "Your name",
  });
  nameInput.spellcheck = false;
  const joinButton = el("button", {
    id: "chat-join", "data-testid": "chat-join", type: "submit", text: "Join",
  });
  const leaveButton = el("button", {
    id: "chat-leave", "data-testid": "chat-leave", type: "button", class: "secondary",
    text: "Leave", hidden: true,
  });
  const status = el("output", {
    id: "chat-status", "data-testid": "chat-status", class: "status", role: "status",
  });
  const rejoinButton = el("button", {
    id: "chat-rejoin", "data-testid": "chat-rejoin", type: "button", class: "secondary",
    text: "Rejoin", hidden: true,
  });
  const you = el("strong", { id: "chat-you", "data-testid": "chat-you" });
  const youLine = el("p", { class: "chat-you-line", hidden: true }, "You are ", you);
  const messages = el("ol", {
    id: "chat-messages", "data-testid": "chat-messages", class: "chat-messages", role: "log",
    "aria-label": "Messages",
  });
  const userCount = el("span", {
    id: "chat-user-count", "data-testid": "chat-user-count", class: "chat-count", text: "0",
  });
  const users = el("ul", {
    id: "chat-users", "data-testid": "chat-users", class: "chat-users",
    "aria-label": "People in the room",
  });
  const input = el("input", {
    id: "chat-input", "data-testid": "chat-input", type: "text", maxLength: MAX_TEXT,
    autocomplete: "off", placeholder: "Write a message and press Enter",
  });
  const sendButton = el("button", {
    id: "chat-send", "data-testid": "chat-send", type: "submit", text: "Send",
  });
  const auth = tokenForm(() => {
    if (wanted !== "") join(wanted);
    else nameInput.focus(); // the token is kept; Join sends it
  });
  const errorLine = el("output", {
    id: "chat-error", "data-testid": "chat-error", class: "chat-error", "aria-live": "polite",
  });

  // Two forms, so that Enter in the name field joins and Enter in the message field sends.
  const joinForm = el("form", { class: "row", id: "chat-join-form" },
    el("label", { for: "chat-name", text: "Name" }), nameInput, joinButton, leaveButton);
  const sendForm = el("form", { class: "chat-send-form", id: "chat-send-form" },
    el("label", { for: "chat-input", class: "visually-hidden", text: "Message" }),
    input, sendButton);
  const here = `${location.origin}${location.pathname}`;

  root.replaceChildren(
    el("section", { class: "card", "aria-labelledby": "chat-title" },
      el("h1", { id: "chat-title", text: "Chat" }),
      el("p", { class: "lead", text:
        "Everyone connected to /chat is in one room, and every message reaches every " +
        "member in the same order. Pick a name and join; open a second window to see " +
        "both sides." }),
      joinForm,
      el("p", { class: "status-line action-status-line" }, "Status: ", status, rejoinButton),
      auth.element,
      el("p", { class: "chat-deep-link" },
        "Instructors: ",
        el("code", { id: "chat-deep-link", "data-testid": "chat-deep-link" },
          `${here}?name=`, el("var", { text: "NAME" }), "#chat"),
        " opens this page and joins as NAME at once (on a server with a token, add ",
        el("code", {}, "&token=", el("var", { text: "TOKEN" })),
        " after #chat: the part after # never reaches the server)."),
    ),
    el("div", { class: "chat-layout" },
      el("section", { class: "card chat-room", "aria-labelledby": "chat-messages-title" },
        el("div", { class: "log-header" },
          el("h2", { id: "chat-messages-title", text: "Messages" }), youLine),
        messages,
        sendForm,
        el("p", { class: "chat-error-line" }, errorLine),
      ),
      el("aside", { class: "card chat-people", "aria-labelledby": "chat-users-title" },
        el("h2", { id: "chat-users-title" }, "Here now ", userCount),
        users,
      ),
    ),
  );

  // -- state --------------------------------------------------------------------------------
  let wanted = ""; // the name asked for: a reconnect asks for it again
  let me = ""; // the name the server gave ("ada 2" if "ada" was taken)
  let joined = false; // welcomed on the current connection
  let everJoined = false; // was in the room since the last Join click: a lost connection is retried
  let joinTimer = 0;
  let mounted = true;
  let errorTimer = 0;
  let people = []; // who is here, in the order they joined
  // The messages on the page that belong to the current room (see reconcile()).
  let lastId = 0;
  const shown = new Map(); // id -> { ts, from, text }

  /** Show the state, and enable exactly the controls that make sense in it. */
  function setState(state, text, problem = false) {
    status.dataset.state = state;
    // The countdown calls this four times a second: rewrite the live region only when the
    // words change, so a screen reader does not announce the same line again and again.
    if (status.textContent !== text) status.textContent = text;
    status.toggleAttribute("data-problem", problem);
    const active = state === "connecting" || state === "joined" || state === "reconnecting";
    nameInput.disabled = active;
    joinButton.hidden = active;
    leaveButton.hidden = !active;
    input.disabled = state !== "joined";
    sendButton.disabled = state !== "joined";
    youLine.hidden = !(state === "joined" || state === "reconnecting");
    users.classList.toggle("stale", state !== "joined");
    if (!active) setPeople([]);
  }

  /** The Rejoin button, with a label for the situation, or hidden (`null`). */
  function offerRejoin(label) {
    rejoinButton.hidden = label === null;
    if (label !== null) rejoinButton.textContent = label;
  }

  // -- the message list ---------------------------------------------------------------------
  function append(line) {
    // Stay pinned to the newest line unless the reader scrolled up to read older ones.
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 8;
    messages.append(line);
    while (messages.childElementCount > MAX_LINES) {
      const old = messages.firstElementChild;
      if (old.dataset.kind === "message" && !("stale" in old.dataset)) {
        shown.delete(Number(old.dataset.id));
      }
      old.remove();
    }
    if (atBottom) messages.scrollTop = messages.scrollHeight;
    return line;
  }

  /** A muted line: someone joined or left, the connection dropped, an error event. */
  function addNotice(kind, ...parts) {
    return append(el("li", { class: `chat-line notice ${kind}`, dataset: { kind } },
      timeOf(new Date()), el("span", { class: "text" }, ...parts)));
  }

  /** A `chat.message`, unless this room's message with that id is already on the page. */
  function addMessage(message) {
    if (!isMessage(message) || message.id <= lastId) return; // ids only grow in one room
    const { id, from, text, ts } = message;
    append(el("li", {
      class: from === me ? "chat-line message mine" : "chat-line message",
      dataset: { kind: "message", id: String(id) },
    },
      timeOf(new Date(ts * 1000)),
      el("span", { class: "from", text: from, title: from }),
      el("span", { class: "text", text }),
    ));
    shown.set(id, { ts, from, text });
    lastId = id;
  }

  /**
   * Put a welcome's history on the page, without repeating what is already there.
   *
   * Within one room ids only grow, so a history message whose id is not above the last one
   * shown is already on the page: a rejoin's history is skipped up to there, and only what
   * was missed is added. But a restarted server is a new room whose ids start again at 1:
   * its message 1 is not the message 1 on the page. So each welcome is first checked against
   * what is shown: the same room sends the same message (id, time, sender, text) for an id
   * we have. If it is a different room, the lines on the page stay (a reader may still want
   * them) but are marked as earlier (dimmed), a notice says why, and the new room's history
   * follows with the id bookkeeping started afresh. Merging the two by id would hide the new
   * room's messages behind old ones with the same numbers.
   */
  function reconcile(history) {
    const valid = history.filter(isMessage);
    if (lastId > 0 && !sameRoom(valid)) {
      for (const line of messages.children) line.dataset.stale = "";
      shown.clear();
      lastId = 0;
      addNotice("notice",
        "The server was restarted: this is a new room. Lines above are from before.");
    }
    if (lastId > 0 && valid.length > 0 && valid[0].id > lastId + 1) {
      addNotice("notice", "Some messages were sent while you were away and are not shown.");
    }
    for (const message of valid) addMessage(message);
  }

  function sameRoom(history) {
    if (history.length === 0) return false; // the room we were in still has our messages
    let overlap = 0;
    for (const message of history) {
      const seen = shown.get(message.id);
      if (seen === undefined) continue;
      if (seen.ts !== message.ts || seen.from !== message.from || seen.text !== message.text) {
        return false;
      }
      overlap += 1;
    }
    // No overlap is still the same room if more than a history's worth was said meanwhile.
    return overlap > 0 || history[0].id > lastId;
  }

  // -- who is here --------------------------------------------------------------------------
  function setPeople(names) {
    people = [...new Set(names.filter((name) => typeof name === "string"))];
    users.replaceChildren(...people.map((name) => el("li", {
      class: name === me ? "me" : null, dataset: { name }, text: name, title: name,
    })));
    userCount.textContent = String(people.length);
    userCount.dataset.count = String(people.length);
  }

  // -- errors -------------------------------------------------------------------------------
  /** Show an error in the small line under the input, for a few seconds. */
  function showError(code, message) {
    errorLine.dataset.code = code;
    errorLine.replaceChildren(el("code", { text: code }), " ", message);
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => {
      errorLine.replaceChildren();
      delete errorLine.dataset.code;
    }, ERROR_SHOWN_MS);
  }

  /** An `error` event: the line under the input, and one line in the list per run of them. */
  function errorEvent(code, message) {
    showError(code, message);
    // Five rate_limited errors in a row become one line with "×5", not five lines.
    const last = messages.lastElementChild;
    if (last?.dataset.kind === "error" && last.dataset.code === code) {
      const count = Number(last.dataset.count) + 1;
      last.dataset.count = String(count);
      last.querySelector(".repeat").textContent = `×${count}`;
      return;
    }
    const line = addNotice("error", el("code", { text: code }), " ", message,
      el("span", { class: "repeat" }));
    Object.assign(line.dataset, { code, count: "1" });
  }

  // -- the connection -----------------------------------------------------------------------
  /** Join the room as `name`: the Join button, the deep link and Rejoin after a drop. */
  function join(name) {
    const clean = String(name).trim();
    if (clean.length < 1 || clean.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(clean)) {
      showError("bad_value", `a name is 1 to ${MAX_NAME} characters, without control characters`);
      nameInput.focus();
      return;
    }
    wanted = clean;
    nameInput.value = clean;
    everJoined = false;
    auth.hide();
    connection.start(); // at most one connection: a second would join as "ada 2"
  }

  const connection = new Connection("chat", {
    // A drop before the first welcome is not retried: there may be no server at all, or it
    // refuses the upgrade, and the person who just clicked Join wants to know at once.
    retry: (code) => everJoined && !NO_RETRY.has(code),
    onConnecting({ attempt }) {
      offerRejoin(null); // "Retry now" belongs to the countdown, not to an attempt under way
      clearTimeout(joinTimer);
      if (everJoined) setState("reconnecting", `reconnecting… (attempt ${attempt})`);
      else setState("connecting", `connecting as ${wanted}…`);
    },
    onReady() {
      connection.send({ type: "chat.join", name: wanted });
      joinTimer = setTimeout(
        () => connection.drop(`no welcome from the server within ${JOIN_TIMEOUT_MS / 1000} s`),
        JOIN_TIMEOUT_MS);
    },
    onEvent(event) {
      if (event === null) showError("bad_json", "the server sent something that is not JSON");
      else receive(event);
    },
    onLost: lost,
    onWait({ leftMs, why }) {
      setState("reconnecting", `reconnecting in ${Math.ceil(leftMs / 1000)} s (${why})`);
    },
    onNeedToken({ code, why }) {
      everJoined = false;
      setState("closed", code === null ? "this server needs a token" : `closed (${why})`, true);
      offerRejoin(null); // the token form is the way back in
      auth.show(code === null ? "" : `The server said: ${why}`);
    },
  });

  function receive(event) {
    switch (event?.type) {
      case "chat.welcome":
        welcome(event);
        break;
      case "chat.message":
        if (joined) addMessage(event);
        break;
      case "chat.joined":
        if (!joined || typeof event.name !== "string") break;
        setPeople([...people, event.name]);
        addNotice("joined", el("span", { class: "name", text: event.name }),
          event.name === me ? " joined (you)" : " joined");
        break;
      case "chat.left":
        if (!joined || typeof event.name !== "string") break;
        setPeople(people.filter((name) => name !== event.name));
        addNotice("left", el("span", { class: "name", text: event.name }), " left");
        break;
      case "error":
        if (joined) {
          errorEvent(String(event.code), String(event.message));
        } else {
          // Before the welcome, an error can only mean the join itself was refused;
          // the same name would be refused again, so this is not retried.
          clearTimeout(joinTimer);
          connection.stop("join refused");
          everJoined = false;
          showError(String(event.code), String(event.message));
          setState("closed", `could not join: ${event.message}`, true);
          offerRejoin(null);
        }
        break;
      default:
        break; // a newer server's event this page does not know: ignore it
    }
  }

  function welcome(event) {
    clearTimeout(joinTimer);
    me = String(event.you);
    you.textContent = me;
    you.title = me;
    joined = true;
    everJoined = true;
    setState("joined", `joined as ${me}`);
    offerRejoin(null);
    setPeople(Array.isArray(event.users) ? event.users : []);
    reconcile(Array.isArray(event.history) ? event.history : []);
    input.focus();
  }

  /** The connection ended without the user asking: say why, and whether it is retried. */
  function lost({ code, why, willRetry }) {
    clearTimeout(joinTimer);
    const wasJoined = joined;
    joined = false;
    if (wasJoined) addNotice("error", `Connection lost (${why}).`);
    if (willRetry) {
      offerRejoin("Retry now"); // onWait shows the countdown
    } else if (code === UNAUTHORIZED) {
      everJoined = false; // onNeedToken shows the token form
    } else if (NO_RETRY.has(code)) {
      // The server decided to drop this client: say why, and let the person decide.
      everJoined = false;
      setState("closed", `closed (${why})`, true);
      offerRejoin("Rejoin");
    } else {
      // Never got in (no server there, or it refused the upgrade): say so, offer a retry.
      setState("closed", `could not join (${why})`, true);
      offerRejoin("Try again");
    }
  }

  function leave() {
    clearTimeout(joinTimer);
    connection.stop("left the room");
    if (joined) addNotice("left", "You left the room.");
    joined = false;
    everJoined = false;
    setState("closed", `left the room (${describeClose(1000)})`);
    offerRejoin(null);
    nameInput.focus();
  }

  function send() {
    // The disabled button stops clicks; this guard also stops any other way in.
    if (!joined) return;
    const text = input.value.trim();
    input.value = "";
    if (text === "") return;
    // Not shown yet: the server's chat.message is the copy everyone sees, in its order.
    connection.send({ type: "chat.send", text });
  }

  // -- events -------------------------------------------------------------------------------
  joinForm.addEventListener("submit", (event) => {
    event.preventDefault(); // a WebSocket page must not reload itself on submit
    join(nameInput.value);
  });
  leaveButton.addEventListener("click", leave);
  rejoinButton.addEventListener("click", () => {
    if (connection.waiting) connection.retryNow(); // "Retry now": skip the rest of the countdown
    else join(wanted);
  });
  sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });

  // -- start --------------------------------------------------------------------------------
  setState("idle", "not in the room");
  const deepLinkName = new URLSearchParams(location.search).get("name"); // /?name=ada#chat
  if (deepLinkName !== null && deepLinkName.trim() !== "") {
    nameInput.value = deepLinkName;
    join(deepLinkName);
  } else {
    nameInput.focus();
    // Say at once that a token is needed, not only after the person typed a name and joined.
    serverAuth().then((mode) => {
      if (mounted && mode === "token" && storedToken() === null && !everJoined) auth.show();
    });
  }

  return () => {
    mounted = false;
    clearTimeout(joinTimer);
    clearTimeout(errorTimer);
    connection.stop("left the page"); // and no reconnect: the page it would update is gone
  };
}

/** True for a well-formed `chat.message` event. */
function isMessage(message) {
  return (
    message?.type === "chat.message" &&
    Number.isInteger(message.id) &&
    typeof message.from === "string" &&
    typeof message.text === "string" &&
    typeof message.ts === "number"
  );
}

/** A <time> showing HH:MM, with the full date and time on hover. */
function timeOf(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return el("time", {
    class: "time", datetime: date.toISOString(), title: date.toLocaleString(),
    text: `${pad(date.getHours())}:${pad(date.getMinutes())}`,
  });
}

// What main.js mounts for this lesson's page (its module is named in /api/pages).
export default mountChatPage;
