// Reconnecting politely: exponential backoff with jitter, and a countdown a page can show.
//
// When a server restarts, every open page loses its connection at the same moment. If all
// of them retried on a fixed schedule they would hit the new server together, again and
// again. Doubling the wait spreads the attempts out over time, and a random ±20% spreads
// pages that lost their connection at the same instant.

import { RULES } from "./rules.js";

/**
 * How long to wait before reconnect attempt number `attempt` (0 for the first retry).
 *
 * Usage: `setTimeout(connect, backoffDelay(attempt++))` → about 0.5, 1, 2, 4, 8, 10, 10 … s.
 *
 * @param {number} attempt - retries already made since the connection was last good
 * @param {object} [options]
 * The defaults are the course's rules (rules.js, from workshop_lib/wire/protocol.py's BACKOFF).
 *
 * @param {number} [options.base=500] - the first wait, in ms
 * @param {number} [options.factor=2] - each wait is this many times the one before
 * @param {number} [options.max=10000] - no wait is longer than this, jitter included
 * @param {number} [options.jitter=0.2] - each wait is scaled by a random 1 ± jitter
 * @param {() => number} [options.random=Math.random] - a parameter for testing
 * @returns {number} milliseconds
 */
export function backoffDelay(
  attempt,
  {
    base = RULES.backoff.first * 1000,
    factor = RULES.backoff.factor,
    max = RULES.backoff.cap * 1000,
    jitter = RULES.backoff.jitter,
    random = Math.random,
  } = {},
) {
  const exact = Math.min(max, base * factor ** Math.max(0, attempt));
  return Math.round(Math.min(max, exact * (1 + jitter * (2 * random() - 1))));
}

/**
 * Call `done` after `ms`, and `tick(remainingMs)` now and every `everyMs` until then.
 *
 * Usage: `const cancel = countdown(2000, (left) => show(left), connect)`.
 *
 * @param {number} ms - how long to wait
 * @param {(remainingMs: number) => void} tick - for showing "reconnecting in N s"
 * @param {() => void} done - runs once when the time is up (not after `cancel()`)
 * @param {number} [everyMs=250]
 * @returns {() => void} cancel: stops both timers (safe to call more than once)
 */
export function countdown(ms, tick, done, everyMs = 250) {
  const end = performance.now() + ms;
  const ticker = setInterval(() => tick(Math.max(0, end - performance.now())), everyMs);
  const timer = setTimeout(() => {
    clearInterval(ticker);
    done();
  }, ms);
  tick(ms);
  return () => {
    clearInterval(ticker);
    clearTimeout(timer);
  };
}
