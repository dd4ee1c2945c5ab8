// The chat's message list: messages, notices, runs of errors, and a rejoin's history
// merged without repeats. Text from people and the server goes in as textContent (dom.js).

import { el } from "../../static/dom.js";

const MAX_LINES = 500; // older lines are dropped: a day-long session must not grow the page

/**
 * Keep `list` (an <ol role="log">) as the room's log.
 *
 * @param {HTMLElement} list
 * @param {() => string} me - the name this page was given: its own messages are marked
 */
export function messageLog(list, me) {
  // The messages on the page that belong to the current room (see reconcile()).
  let lastId = 0;
  const shown = new Map(); // id -> { ts, from, text }

  function append(line) {
    // Stay pinned to the newest line unless the reader scrolled up to read older ones.
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
    list.append(line);
    while (list.childElementCount > MAX_LINES) {
      const old = list.firstElementChild;
      if (old.dataset.kind === "message" && !("stale" in old.dataset)) {
        shown.delete(Number(old.dataset.id));
      }
      old.remove();
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
    return line;
  }

  /** A muted line: someone joined or left, the connection dropped, an error event. */
  function notice(kind, ...parts) {
    return append(el("li", { class: `chat-line notice ${kind}`, dataset: { kind } },
      timeOf(new Date()), el("span", { class: "text" }, ...parts)));
  }

  /** A `chat.message`, unless this room's message with that id is already on the page. */
  function message(event) {
    if (!isMessage(event) || event.id <= lastId) return; // ids only grow in one room
    const { id, from, text, ts } = event;
    append(el("li", {
      class: from === me() ? "chat-line message mine" : "chat-line message",
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
      for (const line of list.children) line.dataset.stale = "";
      shown.clear();
      lastId = 0;
      notice("notice",
        "The server was restarted: this is a new room. Lines above are from before.");
    }
    if (lastId > 0 && valid.length > 0 && valid[0].id > lastId + 1) {
      notice("notice", "Some messages were sent while you were away and are not shown.");
    }
    for (const event of valid) message(event);
  }

  function sameRoom(history) {
    if (history.length === 0) return false; // the room we were in still has our messages
    let overlap = 0;
    for (const event of history) {
      const seen = shown.get(event.id);
      if (seen === undefined) continue;
      if (seen.ts !== event.ts || seen.from !== event.from || seen.text !== event.text) {
        return false;
      }
      overlap += 1;
    }
    // No overlap is still the same room if more than a history's worth was said meanwhile.
    return overlap > 0 || history[0].id > lastId;
  }

  /** An `error` event's line: five rate_limited errors in a row are one line with "×5". */
  function error(code, text) {
    const last = list.lastElementChild;
    if (last?.dataset.kind === "error" && last.dataset.code === code) {
      const count = Number(last.dataset.count) + 1;
      last.dataset.count = String(count);
      last.querySelector(".repeat").textContent = `×${count}`;
      return;
    }
    const line = notice("error", el("code", { text: code }), " ", text,
      el("span", { class: "repeat" }));
    Object.assign(line.dataset, { code, count: "1" });
  }

  return { notice, message, reconcile, error };
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
