// Small helpers every lesson page shares: where the server is, and how to say why a
// connection closed. No DOM here, so the lesson modules stay about their own page.

/**
 * The WebSocket URL of a path on the server that served this page.
 *
 * Derived from `location` rather than hard-coded, so the client keeps working when the
 * server falls back to another port, and picks wss: when the page came over https:
 * (browsers block ws: from an https: page as mixed content). A relative path ("echo")
 * resolves against the page's own folder, so the client also works behind a proxy that
 * serves it under a prefix (JupyterHub's /user/NAME/proxy/8765/).
 *
 * @param {string} path - e.g. "echo" (relative, preferred) or "/echo"
 * @param {Location | URL} [here=location] - the page's address (a parameter for testing)
 * @returns {string} e.g. "ws://127.0.0.1:8765/echo"
 */
export function wsUrl(path, here = location) {
  const url = new URL(path, here.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  return url.href;
}

// Names for the close codes a learner meets in this course: RFC 6455 section 7.4.1,
// plus the two 4xxx codes this course's protocol adds.
const CLOSE_CODE_NAMES = {
  1000: "normal closure",
  1001: "going away",
  1005: "no status",
  1006: "abnormal closure",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal error",
  4001: "unauthorized",
  4029: "rate limited",
};

/**
 * A human description of a close, e.g. "1001 going away" or "1000 normal closure: bye".
 *
 * @param {number} code - CloseEvent.code
 * @param {string} [reason] - CloseEvent.reason, often empty
 * @returns {string}
 */
export function describeClose(code, reason = "") {
  const name = CLOSE_CODE_NAMES[code];
  const text = name ? `${code} ${name}` : String(code);
  return reason ? `${text}: ${reason}` : text;
}

/**
 * Wall-clock time as HH:MM:SS.mmm, for log entries.
 *
 * @param {Date} [date=new Date()]
 * @returns {string} e.g. "14:03:07.042"
 */
export function clockTime(date = new Date()) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return (
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`
  );
}
