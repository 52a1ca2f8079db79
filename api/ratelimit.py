"""Token-bucket rate limits per client address and per signing key.

Each bucket refills at ``rate`` tokens a second up to ``burst``; a request takes
one token or is refused with the seconds until one is available (Retry-After).
The table of buckets is bounded: the least recently used are forgotten, so a flood
of new addresses cannot grow memory. Time is a parameter (the caller's clock).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """Bounded table of token buckets."""

    def __init__(self, rate: float, burst: float, max_buckets: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._max = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 if allowed, else seconds to wait."""
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return wait
