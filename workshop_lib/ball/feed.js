// One side of the ball page's comparison (pushed or polled): what arrived, when, how many
// bytes, and what is on screen; and its numbers under the canvas.

/** A new, empty feed. */
export function newFeed() {
  return {
    latest: null, // the newest state received
    drawn: null, // the state on the canvas
    trail: [], // earlier positions
    count: 0,
    bytes: 0,
    arrivals: [], // performance.now() of recent arrivals, for the per-second rate
  };
}

/** Record one arrival of `state` (`size` bytes) on `feed`, keeping `keepTrail` positions. */
export function receive(feed, state, size, keepTrail) {
  if (feed.latest && keepTrail) {
    feed.trail.push({ x: feed.latest.x, y: feed.latest.y });
    if (feed.trail.length > keepTrail) feed.trail.shift();
  }
  feed.latest = state;
  feed.count += 1;
  feed.bytes += size;
  feed.arrivals.push(performance.now());
}

/** Show `feed`'s numbers in its panel's `stats` (ball-view.js), as of `now`. */
export function showStats(feed, stats, now) {
  while (feed.arrivals.length && now - feed.arrivals[0] > 1000) feed.arrivals.shift();
  setStat(stats.count, feed.count, String(feed.count));
  setStat(stats.rate, feed.arrivals.length, String(feed.arrivals.length));
  setStat(stats.bytes, feed.bytes, formatBytes(feed.bytes));
  setStat(stats.tick, feed.drawn?.tick, feed.drawn ? String(feed.drawn.tick) : "–");
  if (feed.drawn) {
    // How old the state on screen is: server clock at sending vs this page's clock now.
    const delay = Date.now() - feed.drawn.ts * 1000;
    setStat(stats.delay, delay, `${Math.round(delay)} ms`);
  }
}

function setStat(stat, value, text) {
  if (value !== undefined) stat.value.dataset.value = String(value);
  if (stat.value.textContent !== text) stat.value.textContent = text;
}

/** 1234 -> "1,234 B", 123456 -> "120.6 KiB". */
function formatBytes(bytes) {
  if (bytes < 10 * 1024) return `${bytes.toLocaleString("en")} B`;
  if (bytes < 10 * 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
