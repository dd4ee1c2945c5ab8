// The echo page: open a WebSocket to /echo, send text, and watch it come back.
//
// It is the browser half of lesson 01, written with the plain WebSocket API so the
// notebook can point at each step: `new WebSocket(url)`, then the open, message, error
// and close events, then `send()` and `close()`.
//
// On purpose, this page does not reconnect by itself and sends no heartbeats: the learner
// drives every step, the status shows each close code, and Connect tries again. (A
// heartbeat would also appear in the log as an echoed message.) A server started with a
// token gets it as the first message, `{"type": "auth", "token": ...}`, and the page shows
// "open" only once the server answered `{"type": "auth.ok"}`: that answer is written in the
// log as an event, not as an echoed message, because it is the server speaking, not the echo.
//
// This file is the connection and the learner's actions; the elements, their states and the
// log are in echo-view.js.

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { forgetToken, serverAuth, storedToken, tokenForm } from "../../static/auth.js";
import { describeClose } from "../../static/socket.js";
import { echoView } from "./echo-view.js";

/**
 * Build the echo page inside `root` and wire it up.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: closes the connection, so leaving the page leaves the
 *   server too, instead of keeping a hidden socket open
 */
export function mountEchoPage(root) {
  const auth = tokenForm(() => connect());
  const { url, input, setState, addEntry, ...view } = echoView(root, auth);

  // -- state --------------------------------------------------------------------------------
  /** @type {WebSocket | null} */
  let socket = null;
  // Send times (performance.now()) of messages not yet echoed. The echo server answers in
  // order, so the oldest pending send belongs to the next reply: a FIFO queue suffices.
  let pending = [];
  let awaitingAuth = false; // the token went out, auth.ok has not come back yet
  let attemptId = 0; // bumped by each Connect and Disconnect: a stale connect() gives up

  // -- connection ---------------------------------------------------------------------------
  async function connect() {
    const target = url.value.trim();
    const id = ++attemptId;
    auth.hide();
    setState("connecting", "connecting…");
    // The token belongs to the server that served this page: it is never sent to another
    // server a learner typed into the URL field.
    let token = null;
    if (sameServer(target)) {
      const mode = await serverAuth(); // GET healthz: does this server want a token?
      if (id !== attemptId) return; // Disconnect was clicked, or the page left, meanwhile
      token = mode === "none" ? null : storedToken();
      if (mode === "token" && token === null) {
        setState("closed", "this server needs a token", true);
        auth.show();
        return;
      }
    }
    let ws;
    try {
      ws = new WebSocket(target);
    } catch (error) {
      // A malformed URL throws synchronously (SyntaxError) instead of firing "error".
      setState("closed", `invalid URL (${error.message})`, true);
      return;
    }
    socket = ws;
    pending = [];
    awaitingAuth = false;
    ws.binaryType = "arraybuffer";
    listen(ws, token);
  }

  /** Follow `ws`'s open, message and close events; `token` goes first, if there is one. */
  function listen(ws, token) {
    // Each listener first checks that `ws` is still the current socket: events of an
    // old connection can arrive after the learner has already opened a new one.
    ws.addEventListener("open", () => {
      if (ws !== socket) return;
      if (token !== null) {
        // Step zero on a server with a token: say who we are before anything else.
        ws.send(JSON.stringify({ type: "auth", token }));
        awaitingAuth = true;
        setState("connecting", "sent the token, waiting for auth.ok…");
        addEntry("event", `connected to ${ws.url}; sent {"type": "auth", "token": "…"}`);
        return;
      }
      setState("open");
      addEntry("event", `connected to ${ws.url}`);
      input.focus();
    });
    ws.addEventListener("message", (event) => {
      if (ws !== socket) return;
      if (awaitingAuth) {
        awaitingAuth = false;
        setState("open");
        if (isAuthOk(event.data)) {
          addEntry("event", "the server accepted the token (auth.ok): from now on it echoes");
        } else {
          // A server without a token echoes the auth message back; it holds the token, so
          // it is not written in the log.
          addEntry("event", "this server wants no token (it echoed the auth message)");
        }
        input.focus();
        return;
      }
      const sentAt = pending.shift();
      const rtt = sentAt === undefined ? undefined : performance.now() - sentAt;
      // This page only sends text, but the echo lesson also echoes binary frames.
      const text = typeof event.data === "string"
        ? event.data
        : `[binary, ${event.data.byteLength} bytes]`;
      addEntry("received", text, rtt);
    });
    // "error" carries no detail on purpose (browsers hide network errors from pages);
    // the close event that always follows it has the code, so the status waits for that.
    ws.addEventListener("close", (event) => {
      if (ws !== socket) return;
      socket = null;
      pending = [];
      awaitingAuth = false;
      const why = describeClose(event.code, event.reason);
      // Only a 1000 is a close someone asked for; anything else deserves attention.
      const hint = event.code === 1000 ? "" : " — press Connect to try again";
      setState("closed", `closed (${why})${hint}`, event.code !== 1000);
      addEntry("event", `closed (${why})`);
      if (event.code === 4001) {
        forgetToken(); // it was wrong (or missing): ask for another
        auth.show(`The server said: ${why}`);
      }
    });
  }

  function disconnect() {
    attemptId += 1; // a connect() still asking healthz gives up
    if (!socket) {
      setState("closed", "not connected");
      return;
    }
    setState("closing", "closing…");
    socket.close(1000, "user disconnected");
  }

  function send() {
    // The disabled button stops clicks; this guard also stops any other way in
    // (a script calling requestSubmit(), a state change mid-keystroke).
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const text = input.value;
    if (text === "") return;
    pending.push(performance.now());
    socket.send(text);
    addEntry("sent", text);
    input.value = "";
    input.focus();
  }

  // -- events -------------------------------------------------------------------------------
  view.connectForm.addEventListener("submit", (event) => {
    event.preventDefault(); // a WebSocket page must not reload itself on submit
    connect();
  });
  view.disconnectButton.addEventListener("click", disconnect);
  view.sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  setState("closed", "not connected");

  return () => {
    attemptId += 1;
    const ws = socket;
    socket = null; // ignore its late events: the page they would update is gone
    ws?.close(1000, "left the page");
  };
}

/** True if `target` is a WebSocket URL on the server that served this page. */
function sameServer(target) {
  try {
    return new URL(target).host === location.host;
  } catch {
    return false; // new WebSocket() reports the malformed URL
  }
}

/** True for the text `{"type": "auth.ok"}` (any spacing). */
function isAuthOk(data) {
  if (typeof data !== "string") return false;
  try {
    return JSON.parse(data)?.type === "auth.ok";
  } catch {
    return false;
  }
}

// What main.js mounts for this lesson's page (its module is named in /api/pages).
export default mountEchoPage;
