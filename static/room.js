// The room page: live counts from the server, for the projector during a session.
//
// It polls GET api/stats once a second and shows how many clients each lesson has, how
// busy the chat is and how steadily the ball ticks. Numbers only: the endpoint gives no
// names and no messages. That is also why this page needs no token: the server answers
// api/stats without one (the token guards the lessons' sockets and data), so the projector
// can show it without the token in its address bar.
//
// Rates come from successive samples and the server's own clock (`ts`), not this page's:
// a poll that arrives late then does not look like a burst.
//
// The "Server" card shows what the other numbers can hide: 2,000 clients that all
// read keep every buffer empty (no frames skipped) while the server's loop runs late, so it
// shows the loop's delay and CPU, and the connections refused by the limits.

import { el } from "./dom.js";
import { mountProgress, takeKeyFromUrl } from "./progress.js";

const POLL_EVERY_MS = 1000;
const POLL_TIMEOUT_MS = 3000; // a hung request (Wi-Fi gone) counts as unreachable, not "live"
const RATE_WINDOW_S = 10; // rates are averaged over the last ~10 s: steady on a projector
const BUSY_LAG_MS = 50; // a loop this late drops the ball's frames (60 Hz: 17 ms each)

// WebSocket paths shown under a lesson's name; any other path is shown as itself.
const LESSONS = [
  { key: "echo", title: "Echo", paths: ["/", "/echo"] },
  { key: "ball", title: "Bouncing ball", paths: ["/ball"] },
  { key: "chat", title: "Chat", paths: ["/chat"] },
];

/**
 * Build the room page inside `root` and start polling the server's counts.
 *
 * @param {HTMLElement} root - the element to fill (its old content is replaced)
 * @returns {() => void} unmount: stops the polling (and aborts a request in flight)
 */
export function mountRoomPage(root) {
  const status = el("output", {
    id: "room-status", "data-testid": "room-status", class: "status", role: "status",
  });
  const clients = el("dl", { id: "room-clients", class: "room-stats" });
  const stat = (id, label) => {
    const value = el("dd", { id: `room-${id}`, "data-testid": `room-${id}`, text: "–" });
    return { value, nodes: [el("dt", { text: label }), value] };
  };
  const members = stat("chat-members", "Members");
  const messageRate = stat("chat-rate", "Messages per second");
  const tickRate = stat("ball-rate", "Ticks per second");
  const skipped = stat("ball-skipped", "Frames skipped");
  const connections = stat("connections", "Connections");
  const messages = stat("chat-messages", "Chat messages");
  const lag = stat("server-lag", "Loop delay (ms, worst of 5 s)");
  const cpu = stat("server-cpu", "CPU (% of one core)");
  const open = stat("server-open", "Connections (limit)");
  const refusedNow = stat("server-refused-recent", "Refused in the last 10 s");
  const refused = stat("server-refused", "Refused since the start");
  const card = (title, ...stats) => el("section", { class: "card" },
    el("h2", { text: title }),
    el("dl", { class: "room-stats" }, ...stats.flatMap((s) => s.nodes)));
  const grid = el("div", { id: "room-grid", class: "room-grid" },
    el("section", { class: "card" }, el("h2", { text: "Connected now" }), clients),
    card("Chat", members, messageRate),
    card("Bouncing ball", tickRate, skipped),
    card("Server", lag, cpu, open, refusedNow),
    card("Since the server started", connections, messages, refused));

  // With the instructor's key (#room&key=KEY), the learners' progress above the counts.
  const key = takeKeyFromUrl();
  const instructor = key ? el("div", { id: "room-progress" }) : null;
  const unmountProgress = key ? mountProgress(instructor, key) : null;

  root.replaceChildren(
    ...(instructor ? [instructor] : []),
    el("section", { class: "card", "aria-labelledby": "room-title" },
      el("h1", { id: "room-title", text: "Room" }),
      el("p", { class: "lead", text:
        "Live counts from this server, refreshed every second: clients per lesson, chat " +
        "messages and ball ticks per second (averaged over 10 s), how loaded the server is " +
        "and how many connections its limits refused. No names, no messages." }),
      el("p", { class: "status-line room-status-line" }, "Status: ", status)),
    grid,
  );

  let samples = []; // {ts, messages, tick}, oldest first, spanning about RATE_WINDOW_S
  let timer = 0;
  let abort = null;
  let mounted = true;

  function setStatus(state, text, problem = false) {
    status.dataset.state = state;
    status.textContent = text;
    status.toggleAttribute("data-problem", problem);
  }

  function setStat(stat, value, text, problem = false) {
    stat.value.dataset.value = String(value);
    stat.value.textContent = text;
    stat.value.toggleAttribute("data-problem", problem); // for tests; the text says it too
  }

  /** Per-second rate of `key` between the oldest and newest sample, or null. */
  function rate(key) {
    const first = samples[0];
    const last = samples[samples.length - 1];
    return samples.length < 2 ? null : (last[key] - first[key]) / (last.ts - first.ts);
  }

  function show(stats) {
    const now = { ts: stats.ts, messages: stats.chat.messages, tick: stats.ball.tick };
    const last = samples[samples.length - 1];
    // A counter going back means a new server (a restart between two polls): the old
    // samples would give a negative rate.
    if (last && (now.ts <= last.ts || now.messages < last.messages || now.tick < last.tick)) {
      samples = [];
    }
    samples.push(now);
    while (samples.length > 2 && now.ts - samples[1].ts >= RATE_WINDOW_S) samples.shift();

    // One row per lesson, always (0 reads better than a missing row), then other paths.
    const open = { ...stats.clients };
    const rows = LESSONS.map(({ key, title, paths }) => {
      const n = paths.reduce((sum, path) => sum + (open[path] ?? 0), 0);
      for (const path of paths) delete open[path];
      return [key, title, n];
    });
    for (const [path, n] of Object.entries(open)) rows.push([`path-${path}`, path, n]);
    clients.replaceChildren(...rows.flatMap(([key, title, n]) => [
      el("dt", { text: title }),
      el("dd", {
        "data-testid": `room-clients-${key}`, dataset: { value: String(n) }, text: String(n),
      }),
    ]));

    const messagesPerSecond = rate("messages");
    const ticksPerSecond = rate("tick");
    setStat(members, stats.chat.members, String(stats.chat.members));
    setStat(messageRate, messagesPerSecond ?? "",
      messagesPerSecond === null ? "–" : messagesPerSecond.toFixed(1));
    setStat(tickRate, ticksPerSecond ?? "",
      ticksPerSecond === null ? "–" : ticksPerSecond.toFixed(0));
    setStat(skipped, stats.ball.frames_skipped, String(stats.ball.frames_skipped));
    const total = Object.values(stats.connections).reduce((sum, n) => sum + n, 0);
    setStat(connections, total, String(total));
    setStat(messages, stats.chat.messages, String(stats.chat.messages));
    showServer(stats);
  }

  /** Load and refusals; a server from before they were reported shows dashes. */
  function showServer(stats) {
    const load = stats.load ?? {};
    const limits = stats.limits ?? {};
    const busy = (load.lag_ms ?? 0) > BUSY_LAG_MS;
    setStat(lag, load.lag_ms ?? "", load.lag_ms === undefined ? "–"
      : `${Math.round(load.lag_ms)}${busy ? " — overloaded" : ""}`, busy);
    setStat(cpu, load.cpu_percent ?? "",
      load.cpu_percent === undefined ? "–" : String(Math.round(load.cpu_percent)));
    const cap = limits.max_connections ? String(limits.max_connections) : "none";
    setStat(open, limits.open ?? "", limits.open === undefined ? "–" : `${limits.open} (${cap})`);
    const recent = limits.refused_last_10s ?? 0;
    setStat(refusedNow, recent, String(recent), recent > 0);
    const reasons = Object.entries(limits.refused ?? {});
    const total = reasons.reduce((sum, [, n]) => sum + n, 0);
    setStat(refused, total, String(total));
    // Which limits turned clients away, on hover: "per-address limit 1950, wrong token 3".
    refused.value.title = reasons.map(([why, n]) => `${why} ${n}`).join(", ");
  }

  async function poll() {
    abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), POLL_TIMEOUT_MS);
    try {
      // Relative URL: under a proxy prefix (JupyterHub's /user/ada/proxy/8765/) it stays
      // on the same server.
      const response = await fetch(new URL("api/stats", location.href), {
        cache: "no-store", signal: abort.signal,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const stats = await response.json();
      if (!mounted) return;
      show(stats);
      grid.removeAttribute("data-stale");
      setStatus("open", "live, updated every second");
    } catch (error) {
      if (!mounted) return; // unmounting aborted the request: nothing to report
      // Keep the last numbers on screen, dimmed, and start the rates afresh on return.
      samples = [];
      grid.setAttribute("data-stale", "");
      const why = error.name === "AbortError" ? "no answer in 3 s" : error.message;
      setStatus("reconnecting", `server unreachable — retrying (${why})`, true);
    } finally {
      clearTimeout(timeout);
      abort = null;
      if (mounted) timer = setTimeout(poll, POLL_EVERY_MS);
    }
  }

  setStatus("connecting", "asking the server…");
  poll();

  return () => {
    mounted = false;
    unmountProgress?.();
    clearTimeout(timer);
    abort?.abort();
  };
}
