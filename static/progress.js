// The instructor's part of the room page: who is where, who is stuck, and a line to everyone.
//
// Shown only with the instructor's key (`#room&key=KEY`, printed by `serve`): the key moves
// from the address bar into this tab's storage at once, like the learners' token (auth.js).
// The page holds one WebSocket to `progress/watch`. A page cannot put the key in a header,
// so it offers it as a subprotocol, `workshop-key.<key>`, beside `workshop-progress`, which
// the server selects (the way browsers send the Realtime API's keys). The server sends the
// whole board first, then each learner's row whenever it changes: no polling.
//
// The page counts itself connected when the board arrives, not when the socket opens:
// behind a hub's jupyter-server-proxy the socket opens as soon as the proxy accepts it, and
// a wrong key is refused only after that, upstream, with no close code or reason passed on.
// A socket that closes before the board came is explained by asking `GET api/progress`
// with the same key (HTTP statuses do pass the proxy): 401 is a wrong key, 403 the learners'
// token, and neither is retried.
//
// Every name is a text node (dom.js): a learner called `<img onerror=...>` is shown as typed.

import { parseFragment } from "./auth.js";
import { el } from "./dom.js";
import { backoffDelay } from "./reconnect.js";
import { wsUrl } from "./socket.js";

const KEY_STORAGE = "workshop.instructorKey";
const SUBPROTOCOL = "workshop-progress";
const KEY_PROTOCOL = "workshop-key.";
const STUCK_EVERY_MS = 5000; // the ten-minute rule needs no event: look again now and then

let memoryKey = null; // the key, where sessionStorage is unavailable (privacy settings)

/**
 * Move an instructor's key from the address bar (`#room&key=K`) into this tab's storage.
 *
 * @returns {string | null} the key this tab holds, if any
 */
export function takeKeyFromUrl() {
  const { page, params } = parseFragment(location.hash);
  if (params.has("key")) {
    const key = params.get("key").trim();
    if (key) {
      memoryKey = key; // where sessionStorage is unavailable, for this page load
      try {
        sessionStorage.setItem(KEY_STORAGE, key);
      } catch {
        // storage disabled: memoryKey serves
      }
    }
    params.delete("key");
    const rest = [...params].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    const fragment = [page ? encodeURIComponent(page) : "", ...rest].filter(Boolean).join("&");
    history.replaceState(history.state, "",
      `${location.pathname}${location.search}${fragment ? `#${fragment}` : ""}`);
  }
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? memoryKey;
  } catch {
    return memoryKey;
  }
}

/**
 * The instructor's view, inside `root`: a live grid, pass counts, who is stuck, who is
 * online, and the announcement form.
 *
 * @param {HTMLElement} root - filled by this function
 * @param {string} key - the instructor's key
 * @returns {() => void} unmount: closes the socket
 */
export function mountProgress(root, key) {
  const status = el("output", { id: "progress-status", "data-testid": "progress-status",
    class: "status", role: "status", text: "connecting…" });
  const sortButton = el("button", { id: "progress-sort", type: "button", text: "Sort by name" });
  const table = el("table", { id: "progress-grid", class: "progress-grid" });
  const stuckList = el("ul", { id: "progress-stuck", class: "progress-names" });
  const onlineList = el("ul", { id: "progress-online", class: "progress-names" });
  const input = el("input", { id: "announce-text", type: "text", maxLength: 200,
    placeholder: "e.g. move on to §6, or: break until 11:00", autocomplete: "off" });
  const sendButton = el("button", { id: "announce-send", type: "submit", text: "Announce" });
  const clearButton = el("button", { id: "announce-clear", type: "button", text: "Take down" });
  const current = el("p", { id: "announce-current", class: "announce-current" });
  const form = el("form", { id: "announce-form", class: "row" },
    el("label", { for: "announce-text", text: "To everyone" }), input, sendButton, clearButton);

  root.replaceChildren(
    el("section", { class: "card", "aria-labelledby": "progress-title" },
      el("h2", { id: "progress-title", text: "Learners" }),
      el("p", { class: "lead", text:
        "Each learner's exercises, live: ✔ passed, ✘ failed (with the number of checks), " +
        "h a hint seen, s the solution seen. The bottom row counts who passed." }),
      el("p", { class: "status-line" }, "Status: ", status, " ", sortButton),
      el("div", { class: "progress-scroll" }, table)),
    el("div", { class: "room-grid" },
      el("section", { class: "card" },
        el("h2", { text: "Stuck" }),
        el("p", { class: "lead", text: "Three failed checks, or ten minutes on one exercise." }),
        stuckList),
      el("section", { class: "card" }, el("h2", { text: "Online" }), onlineList),
      el("section", { class: "card" }, el("h2", { text: "Announcement" }), form, current)),
  );

  let board = { exercises: [], learners: new Map(), rule: { failures: 3, seconds: 600 } };
  let offset = 0; // server clock minus this page's, in seconds
  let byName = false;
  let socket = null;
  let attempt = 0;
  let timer = 0;
  let mounted = true;

  const now = () => Date.now() / 1000 + offset;

  function cell(exercise, entry) {
    if (!entry) {
      return el("td", { dataset: { status: "none", exercise }, title: `${exercise}: not started` });
    }
    const marks = `${entry.hint ? " h" : ""}${entry.solution ? " s" : ""}`;
    const symbol = entry.status === "passed" ? "✔"
      : entry.status === "failed" ? `✘ ${entry.attempts}` : "·";
    const tip = `${exercise}: ${entry.status}, ${entry.attempts} check(s)` +
      `${entry.error ? `, last error ${entry.error}` : ""}${entry.hint ? ", hint" : ""}` +
      `${entry.solution ? ", solution" : ""}`;
    return el("td", {
      dataset: { status: entry.status, exercise, hint: String(entry.hint),
        solution: String(entry.solution), attempts: String(entry.attempts) },
      title: tip, text: `${symbol}${marks}`,
    });
  }

  const passedCount = (learner) =>
    Object.values(learner.exercises).filter((e) => e.status === "passed").length;

  function render() {
    const learners = [...board.learners.values()];
    learners.sort(byName ? (a, b) => a.name.localeCompare(b.name)
      : (a, b) => passedCount(b) - passedCount(a) || a.name.localeCompare(b.name));
    const head = el("tr", {}, el("th", { text: "Learner" }),
      ...board.exercises.map((x) => el("th", { scope: "col", text: x })));
    const rows = learners.map((learner) => el("tr", {
      dataset: { learner: learner.name, online: String(learner.online) },
    },
    el("th", { scope: "row", class: learner.online ? "online" : "offline", text: learner.name }),
    ...board.exercises.map((x) => cell(x, learner.exercises[x]))));
    const passed = el("tr", { class: "progress-passed" }, el("th", { text: "Passed" }),
      ...board.exercises.map((x) => {
        const n = learners.filter((l) => l.exercises[x]?.status === "passed").length;
        return el("td", { dataset: { exercise: x, value: String(n) }, text: String(n) });
      }));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows),
      el("tfoot", {}, passed));
    onlineList.replaceChildren(...learners.filter((l) => l.online)
      .map((l) => el("li", { text: l.name })));
    if (!learners.some((l) => l.online)) onlineList.append(el("li", { text: "nobody yet" }));
    renderStuck();
  }

  function renderStuck() {
    const { failures, seconds } = board.rule;
    const stuck = [];
    for (const learner of board.learners.values()) {
      for (const [exercise, entry] of Object.entries(learner.exercises)) {
        if (entry.status === "passed") continue;
        const minutes = Math.floor((now() - entry.started) / 60);
        if (entry.failures >= failures) {
          stuck.push([learner.name, exercise, `${entry.failures} failed checks`]);
        } else if (now() - entry.started >= seconds) {
          stuck.push([learner.name, exercise, `${minutes} min`]);
        }
      }
    }
    stuckList.replaceChildren(...stuck.map(([name, exercise, why]) =>
      el("li", { dataset: { learner: name, exercise } }, el("b", { text: name }),
        ` on ${exercise}: ${why}`)));
    if (stuck.length === 0) stuckList.append(el("li", { text: "nobody" }));
  }

  function showAnnouncement(announcement) {
    current.textContent = announcement ? `Showing: “${announcement.text}”` : "None showing.";
  }

  function onEvent(event) {
    if (typeof event?.ts === "number") offset = event.ts - Date.now() / 1000;
    if (event.type === "progress.snapshot") {
      board = {
        exercises: event.exercises,
        learners: new Map(event.learners.map((l) => [l.name, l])),
        rule: event.stuck_rule ?? board.rule,
      };
      showAnnouncement(event.announcement);
      render();
    } else if (event.type === "progress.learner") {
      board.exercises = event.exercises;
      board.learners.set(event.learner.name, event.learner);
      render();
    } else if (event.type === "progress.announcement") {
      showAnnouncement(event.announcement);
    } else if (event.type === "error") {
      status.textContent = `the server said: ${event.message}`;
    }
  }

  /**
   * Why the server would not give this key the board: a sentence if the key itself is
   * refused (no point in retrying), else null (the server or the network is away).
   */
  async function refusal() {
    let response;
    try {
      response = await fetch(new URL("api/progress", location.href), {
        headers: { Authorization: `Bearer ${key}` }, cache: "no-store",
      });
    } catch {
      return null;
    }
    if (response.status === 401) {
      return "wrong key: this is not the key of this room's server (restarted with " +
        "another one?). Open the \"Instructor page\" link that serve printed.";
    }
    if (response.status === 403) {
      return "this is the learners' token, not the instructor's key. Open the " +
        "\"Instructor page\" link that serve printed.";
    }
    return null;
  }

  function connect() {
    const ws = new WebSocket(wsUrl("progress/watch"), [SUBPROTOCOL, KEY_PROTOCOL + key]);
    socket = ws;
    let boardCame = false; // the key opened this socket: the server sent the board
    status.dataset.state = "connecting";
    ws.addEventListener("message", (message) => {
      if (ws !== socket) return;
      try {
        const event = JSON.parse(message.data);
        if (!boardCame && event?.type === "progress.snapshot") {
          boardCame = true;
          attempt = 0;
          status.dataset.state = "open";
          status.textContent = "live";
        }
        onEvent(event);
      } catch (error) {
        status.textContent = `could not read an update (${error.message})`;
      }
    });
    ws.addEventListener("close", async (event) => {
      if (ws !== socket || !mounted) return;
      socket = null;
      const why = boardCame ? null : await refusal();
      if (!mounted) return;
      if (why !== null) {
        status.dataset.state = "refused";
        status.toggleAttribute("data-problem", true);
        status.textContent = why;
        return;
      }
      const delay = backoffDelay(attempt++);
      status.dataset.state = "reconnecting";
      status.textContent = `connection lost (${event.code}) — retrying in ` +
        `${Math.ceil(delay / 1000)} s`;
      timer = setTimeout(connect, delay);
    });
  }

  sortButton.addEventListener("click", () => {
    byName = !byName;
    sortButton.textContent = byName ? "Sort by progress" : "Sort by name";
    render();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "progress.announce", text }));
      input.value = "";
    }
  });
  clearButton.addEventListener("click", () => {
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "progress.announce", text: "" }));
    }
  });
  const stuckTimer = setInterval(renderStuck, STUCK_EVERY_MS);
  showAnnouncement(null);
  connect();

  return () => {
    mounted = false;
    clearTimeout(timer);
    clearInterval(stuckTimer);
    socket?.close(1000, "left the page");
    socket = null;
  };
}
