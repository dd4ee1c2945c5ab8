// The rules every client of this course follows: close codes, when not to reconnect, and
// how long to wait before trying again.
//
// The source is Python's workshop_lib/wire/protocol.py (client_rules()); this copy is for the
// browser, and tests/test_protocol_rules.py keeps the object below equal to it. The ball's
// notebook widget runs this file too, written into its module (ball/widgets.py).

/** Close codes by name, the set after which a client must not reconnect, the backoff (s). */
export const RULES = Object.freeze({
  "close": {
    "NORMAL": 1000,
    "GOING_AWAY": 1001,
    "POLICY": 1008,
    "TOO_BIG": 1009,
    "INTERNAL": 1011,
    "UNAUTHORIZED": 4001,
    "RATE_LIMITED": 4029
  },
  "noRetry": [
    1000,
    1008,
    4001,
    4029
  ],
  "backoff": {
    "first": 0.5,
    "factor": 2.0,
    "cap": 10.0,
    "jitter": 0.2
  }
});

/** Close codes by name, e.g. `CLOSE.UNAUTHORIZED` (4001). */
export const CLOSE = Object.freeze(RULES.close);

/** Closes after which a new connection would be refused for the same reason. */
export const NO_RETRY = new Set(RULES.noRetry);
