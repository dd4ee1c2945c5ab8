// One lesson connection kept alive: connect, authenticate, heartbeat, reconnect with backoff.
//
// The ball and chat pages both need the same four things, so they live here once:
//
// 1. connect to a path of the server that served the page (socket.js's wsUrl);
// 2. authenticate when the server wants a token (auth.js): send `{"type": "auth", ...}`
//    first and call the connection ready only on `{"type": "auth.ok"}`. A 4001 close, or a
//    server that wants a token the tab does not hold, ends in `onNeedToken`, never in a retry
//    loop: the same token would only be refused again;
// 3. send `{"type": "heartbeat"}` every HEARTBEAT_MS. A page cannot see WebSocket pings, so
//    without this a dead connection (a laptop that slept, a server that hangs, a Wi-Fi that
//    dropped without a FIN) looks exactly like a quiet one. The server answers every
//    heartbeat; when nothing at all has arrived for two intervals, the connection is dead:
//    close it and reconnect;
// 4. after a lost connection, try again after backoffDelay() (reconnect.js), showing a
//    countdown through `onWait`;
// 5. believe the server's in-band reason over the close code: before closing with 4001,
//    4029, 1008 or 1009 it sends `{"type": "error", ..., "close": CODE}`, because a proxy
//    (jupyter-server-proxy on JupyterHub and Binder) ends the page's side with 1000, 1005
//    or 1006 whatever the server sent. The page then reports and decides on CODE.
//
// No DOM here: each page decides what to show for each callback.

import { forgetServerAuth, forgetToken, serverAuth, storedToken } from "./auth.js";
import { backoffDelay, countdown } from "./reconnect.js";
import { CLOSE, NO_RETRY } from "./rules.js";
import { describeClose, wsUrl } from "./socket.js";

/** The close code of a missing or wrong token (workshop_lib/app/auth.py). */
export const UNAUTHORIZED = CLOSE.UNAUTHORIZED;

/**
 * Closes after which trying again would only repeat the problem: a normal close (1000), or
 * the server decided to drop this client (1008 could not keep up, 4001 not allowed in, 4029
 * flooding). The set is the course's (rules.js, from workshop_lib/wire/protocol.py).
 */
export { NO_RETRY };

const READY_TIMEOUT_MS = 10_000; // connected and authenticated by then, or it counts as lost

/**
 * The close code an event announces: an `error` event with an integer `close` field (the
 * server's word for the close that follows), else null.
 *
 * @param {object | null} event
 * @returns {number | null}
 */
export function announcedClose(event) {
  const close = event?.type === "error" ? event.close : undefined;
  return Number.isInteger(close) && close >= 1000 && close <= 4999 ? close : null;
}

/**
 * How a connection ended, for people, and the code to act on: the announced one when the
 * server sent an in-band reason (the close itself may be a proxy's 1006), else the close's.
 * Described alike either way, e.g. "4001 unauthorized: wrong token": the reason is the
 * close frame's when it carries the announced code, else the message's first part.
 *
 * @param {{code: number, reason: string}} close - the CloseEvent (or its two fields)
 * @param {object | null} announced - the in-band error event, if one came
 * @returns {{code: number, why: string, detail: string}}
 */
export function closeOutcome(close, announced) {
  const code = announcedClose(announced);
  if (code === null) {
    return { code: close.code, why: describeClose(close.code, close.reason), detail: "" };
  }
  const message = String(announced.message ?? "");
  const reason = close.code === code && close.reason ? close.reason : message.split(": ")[0];
  return { code, why: describeClose(code, reason), detail: message };
}

/**
 * How often a ready connection sends a heartbeat, in ms: 15 s, or `?heartbeat=SECONDS` in the
 * page's address (e.g. `/?heartbeat=1#ball`). Tests use the query parameter to see in a few
 * seconds what takes half a minute; it is read once, when the page loads.
 */
export const HEARTBEAT_MS = heartbeatFromQuery(location.search) ?? 15_000;

/**
 * The heartbeat interval a query string asks for, in ms, or null.
 *
 * @param {string} search - e.g. "?name=ada&heartbeat=2"
 * @returns {number | null} e.g. 2000; null when absent or not a positive number
 */
export function heartbeatFromQuery(search) {
  const value = new URLSearchParams(search).get("heartbeat");
  const seconds = value === null ? NaN : Number(value);
  // A floor of 0.2 s: a typo such as ?heartbeat=0.001 must not flood the server.
  return Number.isFinite(seconds) && seconds > 0 ? Math.max(200, seconds * 1000) : null;
}

/**
 * A connection to one WebSocket path that authenticates, checks that it is alive, and
 * reconnects by itself.
 *
 * Usage:
 *
 *     const connection = new Connection("ball", {
 *       onReady: () => show("connected"),
 *       onEvent: (event) => draw(event),
 *       onWait: ({ leftMs }) => show(`reconnecting in ${Math.ceil(leftMs / 1000)} s`),
 *     });
 *     connection.start();   // and connection.stop() when the page goes away
 *
 * Callbacks (all optional) are only ever called for the current connection: never after
 * stop(), and never for a socket that start() replaced.
 *
 * - `onConnecting({ attempt })`: a WebSocket is being opened; `attempt` counts the retries
 *   since the connection was last ready (0 for the first try).
 * - `onReady()`: authenticated (or no token needed); `send()` works from now on.
 * - `onEvent(event, text)`: every JSON message except `auth.ok` and heartbeat answers.
 *   `event` is null when the text is not JSON. Binary messages are ignored.
 * - `onLost({ code, why, detail, wasReady, willRetry })`: the connection ended without
 *   stop(). `why` is a description for people, e.g. "1001 going away"; `code` is the
 *   server's in-band announced code when it sent one (closeOutcome), and `detail` its
 *   whole message ("" without one).
 * - `onWait({ leftMs, why, attempt })`: counting down to the next attempt, 4 times a second.
 * - `onNeedToken({ code, why, detail })`: the server wants a token: none is stored (`code` null) or
 *   it refused the one sent (`code` 4001; the stored token is forgotten). Nothing happens
 *   until the page calls start() again, typically after tokenForm() stored a new one.
 * - `retry(code)`: whether to reconnect after a close with this code (default: unless it is
 *   in NO_RETRY). 4001 is never retried.
 */
export class Connection {
  /**
   * @param {string} path - relative WebSocket path, e.g. "chat"
   * @param {object} [handlers] - the callbacks above
   */
  constructor(path, handlers = {}) {
    this.path = path;
    this.handlers = handlers;
    /** @type {WebSocket | null} */
    this.socket = null;
    this.ready = false;
    this.attempt = 0; // retries since the connection was last ready
    this.generation = 0; // bumped by start() and stop(): stale async work checks it
    this.cancelWait = null;
    this.readyTimer = 0;
    this.beatTimer = 0;
    this.lastHeard = 0; // performance.now() of the last message of any kind
    this.lastBeat = 0; // performance.now() of the last heartbeat sent
  }

  /** True while counting down to the next attempt (a "Retry now" button makes sense). */
  get waiting() {
    return this.cancelWait !== null;
  }

  /** Connect now, as a fresh start: replaces any connection and resets the backoff. */
  start() {
    this.stop("replaced by a new connection");
    this.attempt = 0;
    this.open();
  }

  /** Skip the rest of the countdown and try now (keeps the backoff count). */
  retryNow() {
    if (!this.waiting) return;
    this.cancelWait();
    this.cancelWait = null;
    this.open();
  }

  /**
   * Close on purpose (1000): no callbacks, no reconnect.
   *
   * @param {string} [reason="left the page"] - sent to the server in the close frame
   */
  stop(reason = "left the page") {
    this.generation += 1;
    this.cancelWait?.();
    this.cancelWait = null;
    const ws = this.detach();
    ws?.close(1000, reason);
  }

  /**
   * Treat the connection as dead (no heartbeat answer, no welcome...): close it without
   * waiting for the closing handshake, which a hung server never finishes, and go on as
   * after any lost connection (onLost, then a retry if allowed).
   *
   * @param {string} why - shown to people, e.g. "no answer to heartbeats for 30 s"
   */
  drop(why) {
    const wasReady = this.ready;
    const ws = this.detach();
    if (ws === null) return;
    ws.close();
    this.lost(1006, why, wasReady);
  }

  /**
   * Send an event as JSON, if the connection is ready.
   *
   * @param {object} event - e.g. `{ type: "chat.send", text: "hi" }`
   * @returns {boolean} false if it was not sent (not ready)
   */
  send(event) {
    if (!this.ready || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(event));
    return true;
  }

  // -- inside ---------------------------------------------------------------------------------

  /** Forget the current socket (its late events are ignored) and stop its timers. */
  detach() {
    const ws = this.socket;
    this.socket = null;
    this.ready = false;
    clearTimeout(this.readyTimer);
    clearInterval(this.beatTimer);
    return ws;
  }

  async open() {
    const generation = ++this.generation;
    this.handlers.onConnecting?.({ attempt: this.attempt });
    // Ask first whether a token is needed, rather than connect and wait 5 s for a 4001.
    const mode = await serverAuth();
    if (generation !== this.generation) return; // stopped or restarted meanwhile
    const token = storedToken();
    if (mode === "token" && token === null) {
      this.handlers.onNeedToken?.({ code: null, why: "this server needs a token" });
      return;
    }
    // "unknown": the server could not be asked (it may be restarting); send the token if
    // the tab holds one. "none": never send it, the server would take it for a lesson event.
    const sendToken = token !== null && mode !== "none";

    const ws = new WebSocket(wsUrl(this.path));
    this.socket = ws;
    let announced = null; // this socket's in-band reason for its coming close, if any
    this.readyTimer = setTimeout(
      () => this.drop(`not connected within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);

    // Each listener first checks that `ws` is still the current socket: events of an old
    // connection can arrive after a new one was opened (or the page was left).
    ws.addEventListener("open", () => {
      if (ws !== this.socket) return;
      if (sendToken) ws.send(JSON.stringify({ type: "auth", token }));
      else this.becomeReady();
    });
    ws.addEventListener("message", (message) => {
      if (ws !== this.socket) return;
      this.lastHeard = performance.now(); // any message at all shows the connection lives
      if (typeof message.data !== "string") return; // the lessons' events are JSON text
      let event = null;
      try {
        event = JSON.parse(message.data);
      } catch {
        // handed on as null: the page says the server sent something that is not JSON
      }
      if (announcedClose(event) !== null) {
        announced = event;
        // Before auth.ok it is the refusal (a wrong token): not a sign of being ready.
        if (!this.ready) return;
      }
      if (!this.ready) {
        if (event?.type === "auth.ok") {
          this.becomeReady();
          return;
        }
        // Something else first: the server did not want a token after all (an "unknown"
        // answer from healthz). It is ready; let the page see this event too.
        this.becomeReady();
      }
      if (event?.type === "heartbeat") return; // the answer to ours: lastHeard says enough
      this.handlers.onEvent?.(event, message.data);
    });
    // "error" carries no detail (browsers hide network errors from pages); the close event
    // that always follows it has the code.
    ws.addEventListener("close", (event) => {
      if (ws !== this.socket) return;
      const wasReady = this.ready;
      this.detach();
      const { code, why, detail } = closeOutcome(event, announced);
      this.lost(code, why, wasReady, detail);
    });
  }

  becomeReady() {
    clearTimeout(this.readyTimer);
    this.ready = true;
    this.attempt = 0;
    this.lastHeard = this.lastBeat = performance.now();
    // Checked four times per interval, so a dead connection is found soon after two
    // intervals of silence rather than up to a whole interval later.
    this.beatTimer = setInterval(() => this.heartbeat(), HEARTBEAT_MS / 4);
    this.handlers.onReady?.();
  }

  heartbeat() {
    const now = performance.now();
    // Dead: two intervals of silence, *and* a heartbeat sent an interval ago still has no
    // answer. The second condition matters in a background tab, where the browser may run
    // this timer only once a minute: a long silence there may just mean no heartbeat went
    // out, so one is sent first and the page waits for its answer.
    const unanswered = this.lastBeat > this.lastHeard && now - this.lastBeat >= HEARTBEAT_MS;
    if (unanswered && now - this.lastHeard >= 2 * HEARTBEAT_MS) {
      this.drop(`no answer to heartbeats for ${Math.round((now - this.lastHeard) / 1000)} s`);
      return;
    }
    if (now - this.lastBeat >= HEARTBEAT_MS && this.send({ type: "heartbeat" })) {
      this.lastBeat = now;
    }
  }

  lost(code, why, wasReady, detail = "") {
    const generation = this.generation;
    if (wasReady) forgetServerAuth(); // a restarted server may have another token, or none
    if (code === UNAUTHORIZED) {
      forgetToken(); // wrong: sending it again would only be refused again
      this.handlers.onLost?.({ code, why, detail, wasReady, willRetry: false });
      if (generation === this.generation) this.handlers.onNeedToken?.({ code, why, detail });
      return;
    }
    const retry = this.handlers.retry ?? ((closeCode) => !NO_RETRY.has(closeCode));
    const willRetry = retry(code);
    this.handlers.onLost?.({ code, why, detail, wasReady, willRetry });
    if (!willRetry || generation !== this.generation) return; // onLost may have stopped us
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    const attempt = this.attempt;
    this.cancelWait = countdown(
      delay,
      (leftMs) => this.handlers.onWait?.({ leftMs, why, attempt }),
      () => {
        this.cancelWait = null;
        this.open();
      },
    );
  }
}
