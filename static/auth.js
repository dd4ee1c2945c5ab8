// The token a server may ask for: where the page finds it, where it keeps it, and the small
// form that asks a person for it.
//
// A server started with a token (workshop_lib/app/auth.py) wants it from every client. A page
// cannot put headers on a WebSocket, so it sends `{"type": "auth", "token": ...}` as its first
// message and waits for `{"type": "auth.ok"}`. The token reaches the page in the link's
// fragment, `/?name=ada#chat&token=T`: browsers never send the fragment to any server, so it
// lands in no access log. The page then keeps it in sessionStorage (this tab only, gone when
// the tab closes) and takes it out of the address bar, so a bookmark or a link copied to a
// neighbour does not carry it by accident.

import { el } from "./dom.js";

const STORAGE_KEY = "workshop.token";
let memoryToken = null; // the token, where sessionStorage is unavailable (privacy settings)

/**
 * Split a fragment into the page's name and its `key=value` parameters.
 *
 * `"#chat&token=T"` → `{ page: "chat", params: Map { token → "T" } }`; `"#token=T"` has no
 * page (`""`). Values are percent-decoded (links.py quotes the token); a malformed escape is
 * kept as typed rather than throwing, so "#%E0" still shows the page index.
 *
 * @param {string} hash - `location.hash`, with or without its "#"
 * @returns {{ page: string, params: Map<string, string> }}
 */
export function parseFragment(hash) {
  const parts = hash.replace(/^#/, "").split("&");
  const page = parts[0].includes("=") ? "" : decode(parts.shift());
  const params = new Map();
  for (const part of parts) {
    if (part === "") continue;
    const at = part.indexOf("=");
    const key = at < 0 ? part : part.slice(0, at);
    params.set(decode(key), at < 0 ? "" : decode(part.slice(at + 1)));
  }
  return { page, params };
}

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // "%E0" would otherwise throw URIError and break the page
  }
}

/**
 * Move a token from the address bar into this tab's storage.
 *
 * Call it before the page reads its fragment, and again on every `hashchange` (a link with
 * a token may be pasted into a tab that is already open). history.replaceState() rewrites the
 * address without reloading and without a `hashchange` event, and without a history entry
 * that would bring the token back with the Back button.
 *
 * @returns {boolean} true if the fragment carried a token
 */
export function takeTokenFromUrl() {
  const { page, params } = parseFragment(location.hash);
  if (!params.has("token")) return false;
  const token = params.get("token").trim();
  if (token !== "") storeToken(token);
  params.delete("token");
  const rest = [...params].map(([key, value]) =>
    `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  const fragment = [page ? encodeURIComponent(page) : "", ...rest].filter(Boolean).join("&");
  const clean = `${location.pathname}${location.search}${fragment ? `#${fragment}` : ""}`;
  history.replaceState(history.state, "", clean);
  return true;
}

/**
 * The token this tab holds for this server, or null.
 *
 * @returns {string | null}
 */
export function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return memoryToken; // storage disabled: the token lasts for this page load
  }
}

/**
 * Keep `token` for this tab (sessionStorage: other tabs and later visits do not see it).
 *
 * @param {string} token
 */
export function storeToken(token) {
  memoryToken = token;
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // storedToken() falls back to memoryToken
  }
}

/** Forget the token (the server said it is wrong: sending it again would not help). */
export function forgetToken() {
  memoryToken = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}

let authMode = null; // the server's answer, a Promise, once one came

/**
 * Whether the server that served this page wants a token: "token", "none", or "unknown"
 * when it could not be asked (it is down, or too old to say).
 *
 * Asks GET healthz (relative, so a proxy prefix such as JupyterHub's is kept) once per page
 * load; a failed request is not remembered, so the next call asks again.
 *
 * @returns {Promise<"token" | "none" | "unknown">}
 */
export function serverAuth() {
  if (authMode !== null) return authMode;
  const asking = fetch(new URL("healthz", location.href), { cache: "no-store" })
    .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
    .then((health) => (health.auth === "token" || health.auth === "none" ? health.auth
      : "unknown"))
    .catch(() => "unknown");
  authMode = asking;
  asking.then((mode) => {
    if (mode === "unknown" && authMode === asking) authMode = null;
  });
  return asking;
}

/**
 * Forget the server's answer: after a lost connection the server on this port may be a new
 * one, started with or without a token.
 */
export function forgetServerAuth() {
  authMode = null;
}

/**
 * The small form that asks for a token: hidden until `show()`.
 *
 * Usage: `const form = tokenForm((token) => connect()); card.append(form.element);`
 * Submitting stores the token, hides the form and calls `onToken`.
 *
 * @param {(token: string) => void} onToken - called with the token the person entered
 * @returns {{ element: HTMLFormElement, show: (reason?: string) => void, hide: () => void }}
 */
export function tokenForm(onToken) {
  const input = el("input", {
    id: "auth-token", "data-testid": "auth-token", type: "text", autocomplete: "off",
    placeholder: "Token", required: true,
  });
  input.spellcheck = false;
  // Shown as typed, not as dots: the token is read out or written on the board anyway,
  // and a learner who sees a typo can fix it.
  const reason = el("p", { id: "auth-reason", "data-testid": "auth-reason", class: "auth-reason" });
  const element = el("form", {
    id: "auth-form", "data-testid": "auth-form", class: "auth-form", hidden: true,
    "aria-labelledby": "auth-title",
  },
    el("p", { id: "auth-title", class: "auth-title",
      text: "This server needs a token: ask your instructor." }),
    reason,
    el("div", { class: "row" },
      el("label", { for: "auth-token", text: "Token" }), input,
      el("button", {
        id: "auth-submit", "data-testid": "auth-submit", type: "submit", text: "Connect",
      })),
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault(); // a WebSocket page must not reload itself on submit
    const token = input.value.trim();
    if (token === "") return;
    storeToken(token);
    input.value = "";
    element.hidden = true;
    onToken(token);
  });
  return {
    element,
    /** Show the form; `text` (e.g. the server's close reason) goes above the field. */
    show(text = "") {
      reason.textContent = text;
      reason.hidden = text === "";
      element.hidden = false;
      input.focus();
    },
    hide() {
      element.hidden = true;
    },
  };
}
