"""Per-sender token buckets: pure, the caller passes the clock."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; starts full."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 1:
            msg = f"rate must be >= 0 and burst >= 1 (got rate={rate}, burst={burst})"
            raise ValueError(msg)
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one. A clock that goes back refills nothing."""
        elapsed = now - self.last
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self, now: float) -> bool:
        """Tell whether the bucket has refilled completely (so it can be forgotten)."""
        return self.tokens + max(0.0, now - self.last) * self.rate >= self.burst


class RateLimiter:
    """One bucket per key (a uid). Memory is bounded: full buckets are forgotten."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        exempt: frozenset[int] = frozenset(),
        max_keys: int = 4096,
    ) -> None:
        TokenBucket(rate, burst, 0.0)  # validate early, with the same message
        self.rate = rate
        self.burst = burst
        self.exempt = exempt
        self.max_keys = max_keys
        self._buckets: dict[int, TokenBucket] = {}

    def allow(self, key: int, now: float) -> bool:
        """Tell whether ``key`` may send one more event at time ``now``."""
        if key in self.exempt:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[key] = bucket
        return bucket.take(now)

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            # Every sender is throttled: forgetting one only hands it a fresh burst.
            self._buckets.pop(next(iter(self._buckets)))
