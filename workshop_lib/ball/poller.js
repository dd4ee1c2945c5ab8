// The ball page's HTTP side: GET api/ball on a timer, one request at a time.

import { storedToken } from "../../static/auth.js";

/**
 * Poll api/ball every `interval()` ms (from the start of one poll to the start of the next).
 *
 * @param {object} options
 * @param {() => number} options.interval - read before each wait: a change applies at once
 * @param {(state: object, bytes: number) => void} options.onState - an answer's state
 * @param {(text: string) => void} options.onError - "" after a good answer
 * @returns {{ schedule: () => void, stop: () => void }} schedule: plan the next poll now
 *   (after an interval change); stop: no more polls, the one under way is aborted
 */
export function poller({ interval, onState, onError }) {
  let timer = 0;
  let abort = null;
  let inFlight = false;
  let lastStart = -Infinity;
  let running = true;

  /** Run one poll when its time has come, then plan the next one. */
  function schedule() {
    clearTimeout(timer);
    if (!running || inFlight) return; // the running poll plans the next when it ends
    const wait = Math.max(0, lastStart + interval() - performance.now());
    timer = setTimeout(pollOnce, wait);
  }

  async function pollOnce() {
    inFlight = true;
    lastStart = performance.now();
    abort = new AbortController();
    try {
      // Unlike a WebSocket, fetch() can send a header: a token server wants it here.
      const token = storedToken();
      const response = await fetch(new URL("api/ball", location.href), {
        cache: "no-store",
        signal: abort.signal,
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      const body = await response.arrayBuffer();
      if (!running) return;
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const state = JSON.parse(new TextDecoder().decode(body));
      onState(state, body.byteLength);
      onError("");
    } catch (error) {
      if (!running || error.name === "AbortError") return;
      onError(`Last poll failed: ${error.message}`);
    } finally {
      inFlight = false;
      abort = null;
      if (running) schedule();
    }
  }

  return {
    schedule,
    stop() {
      running = false;
      clearTimeout(timer);
      abort?.abort();
    },
  };
}
