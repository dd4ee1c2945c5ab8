// The chat's "Here now" list: who is in the room, in the order they joined.

import { el } from "../../static/dom.js";

/**
 * Keep `list` (a <ul>) and `count` showing the members.
 *
 * @param {HTMLElement} list - one <li> per member, data-name set, "me" marked
 * @param {HTMLElement} count - the number, also as data-count
 * @param {() => string} me - the name this page was given, marked in the list
 */
export function memberList(list, count, me) {
  let people = [];

  /** Show exactly `names` (non-strings and repeats dropped). */
  function set(names) {
    people = [...new Set(names.filter((name) => typeof name === "string"))];
    list.replaceChildren(...people.map((name) => el("li", {
      class: name === me() ? "me" : null, dataset: { name }, text: name, title: name,
    })));
    count.textContent = String(people.length);
    count.dataset.count = String(people.length);
  }

  return {
    set,
    add: (name) => set([...people, name]),
    remove: (name) => set(people.filter((other) => other !== name)),
    /** Dimmed while the list may be out of date (not joined right now). */
    stale: (yes) => list.classList.toggle("stale", yes),
  };
}
