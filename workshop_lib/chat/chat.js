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
//
// This file is the page's logic: joining, the connection's events, leaving and sending.
// What the page shows is in chat-view.js (the elements and their states), message-log.js
// (the messages) and member-list.js (who is here).

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { serverAuth, storedToken } from "../../static/auth.js";
import { Connection, NO_RETRY, UNAUTHORIZED } from "../../static/connection.js";
import { el } from "../../static/dom.js";
import { describeClose } from "../../static/socket.js";
import { MAX_NAME, chatView } from "./chat-view.js";
import { memberList } from "./member-list.js";
import { messageLog } from "./message-log.js";

const JOIN_TIMEOUT_MS = 10_000; // no welcome this long after the join: treat it as lost

/**
 * Build the chat page inside `root`; join at once if the URL carries `?name=`.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: closes the connection and cancels any reconnect timer
 */
export function mountChatPage(root) {
  const view = chatView(root, () => {
    if (wanted !== "") join(wanted);
    else view.nameInput.focus(); // the token is kept; Join sends it
  });
  const { nameInput, input, auth } = view;
  const log = messageLog(view.messages, () => me);
  const members = memberList(view.users, view.userCount, () => me);

  // -- state --------------------------------------------------------------------------------
  let wanted = ""; // the name asked for: a reconnect asks for it again
  let me = ""; // the name the server gave ("ada 2" if "ada" was taken)
  let joined = false; // welcomed on the current connection
  let everJoined = false; // was in the room since the last Join click: a lost connection is retried
  let joinTimer = 0;
  let mounted = true;

  /** Show the state; "Here now" is emptied whenever the page is not in the room. */
  function setState(state, text, problem = false) {
    const active = view.setState(state, text, problem);
    members.stale(state !== "joined");
    if (!active) members.set([]);
  }

  /** An `error` event: the line under the input, and one line in the list per run of them. */
  function errorEvent(code, message) {
    view.showError(code, message);
    log.error(code, message);
  }

  // -- the connection -----------------------------------------------------------------------
  /** Join the room as `name`: the Join button, the deep link and Rejoin after a drop. */
  function join(name) {
    const clean = String(name).trim();
    if (clean.length < 1 || clean.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(clean)) {
      view.showError("bad_value",
        `a name is 1 to ${MAX_NAME} characters, without control characters`);
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
      view.offerRejoin(null); // "Retry now" belongs to the countdown, not to an attempt under way
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
      if (event === null) view.showError("bad_json", "the server sent something that is not JSON");
      else receive(event);
    },
    onLost: lost,
    onWait({ leftMs, why }) {
      setState("reconnecting", `reconnecting in ${Math.ceil(leftMs / 1000)} s (${why})`);
    },
    onNeedToken({ code, why }) {
      everJoined = false;
      setState("closed", code === null ? "this server needs a token" : `closed (${why})`, true);
      view.offerRejoin(null); // the token form is the way back in
      auth.show(code === null ? "" : `The server said: ${why}`);
    },
  });

  function receive(event) {
    switch (event?.type) {
      case "chat.welcome":
        welcome(event);
        break;
      case "chat.message":
        if (joined) log.message(event);
        break;
      case "chat.joined":
        if (!joined || typeof event.name !== "string") break;
        members.add(event.name);
        log.notice("joined", el("span", { class: "name", text: event.name }),
          event.name === me ? " joined (you)" : " joined");
        break;
      case "chat.left":
        if (!joined || typeof event.name !== "string") break;
        members.remove(event.name);
        log.notice("left", el("span", { class: "name", text: event.name }), " left");
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
          view.showError(String(event.code), String(event.message));
          setState("closed", `could not join: ${event.message}`, true);
          view.offerRejoin(null);
        }
        break;
      default:
        break; // a newer server's event this page does not know: ignore it
    }
  }

  function welcome(event) {
    clearTimeout(joinTimer);
    me = String(event.you);
    view.showYou(me);
    joined = true;
    everJoined = true;
    setState("joined", `joined as ${me}`);
    view.offerRejoin(null);
    members.set(Array.isArray(event.users) ? event.users : []);
    log.reconcile(Array.isArray(event.history) ? event.history : []);
    input.focus();
  }

  /** The connection ended without the user asking: say why, and whether it is retried. */
  function lost({ code, why, willRetry }) {
    clearTimeout(joinTimer);
    const wasJoined = joined;
    joined = false;
    if (wasJoined) log.notice("error", `Connection lost (${why}).`);
    if (willRetry) {
      view.offerRejoin("Retry now"); // onWait shows the countdown
    } else if (code === UNAUTHORIZED) {
      everJoined = false; // onNeedToken shows the token form
    } else if (NO_RETRY.has(code)) {
      // The server decided to drop this client: say why, and let the person decide.
      everJoined = false;
      setState("closed", `closed (${why})`, true);
      view.offerRejoin("Rejoin");
    } else {
      // Never got in (no server there, or it refused the upgrade): say so, offer a retry.
      setState("closed", `could not join (${why})`, true);
      view.offerRejoin("Try again");
    }
  }

  function leave() {
    clearTimeout(joinTimer);
    connection.stop("left the room");
    if (joined) log.notice("left", "You left the room.");
    joined = false;
    everJoined = false;
    setState("closed", `left the room (${describeClose(1000)})`);
    view.offerRejoin(null);
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
  view.joinForm.addEventListener("submit", (event) => {
    event.preventDefault(); // a WebSocket page must not reload itself on submit
    join(nameInput.value);
  });
  view.leaveButton.addEventListener("click", leave);
  view.rejoinButton.addEventListener("click", () => {
    if (connection.waiting) connection.retryNow(); // "Retry now": skip the rest of the countdown
    else join(wanted);
  });
  view.sendForm.addEventListener("submit", (event) => {
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
    view.dispose();
    connection.stop("left the page"); // and no reconnect: the page it would update is gone
  };
}

// What main.js mounts for this lesson's page (its module is named in /api/pages).
export default mountChatPage;
