"""A rate limit on one connection's events: a burst, then a steady rate.

bucket = TokenBucket(capacity=10, rate=5)
bucket.take(now)                    # False once the client sends too fast

The chat's messages, the ball's controls and the Realtime sessions' events each keep one per
connection; what a lesson does with a refusal (an error event, a close) is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket"]


@dataclass
class TokenBucket:
    """Allows bursts of ``capacity`` events, then ``rate`` per second.

    Time is passed in (``now``), so the limit is tested without waiting.
    """

    capacity: float = 10.0
    rate: float = 5.0
    tokens: float = -1.0  # full on first use
    updated: float = 0.0

    def take(self, now: float) -> bool:
        """Spend a token if there is one: True if the event is allowed."""
        if self.tokens < 0:
            self.tokens, self.updated = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
