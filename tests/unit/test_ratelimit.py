"""The per-uid token bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watcher.intake.ratelimit import RateLimiter, TokenBucket


def test_bucket_allows_its_burst_then_refuses() -> None:
    """A full bucket allows exactly ``burst`` events at one instant."""
    bucket = TokenBucket(rate=1.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_its_rate() -> None:
    """After emptying, one token comes back per 1/rate seconds."""
    bucket = TokenBucket(rate=2.0, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)


def test_clock_going_back_refills_nothing() -> None:
    """A clock that steps backwards never hands out extra tokens."""
    bucket = TokenBucket(rate=1.0, burst=1, now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.5)


def test_limiter_keeps_uids_apart_and_exempts_root() -> None:
    """One uid's flood does not spend another's tokens; exempt uids are never limited."""
    limiter = RateLimiter(rate=0.0, burst=2, exempt=frozenset({0}))
    assert [limiter.allow(1000, 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(1001, 0.0)
    assert all(limiter.allow(0, 0.0) for _ in range(100))


def test_limiter_memory_is_bounded() -> None:
    """Many distinct senders never grow the table past max_keys."""
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=8)
    for uid in range(1000):
        limiter.allow(uid, 0.0)
    assert len(limiter._buckets) <= 8


@given(
    rate=st.floats(0.0, 1000.0),
    burst=st.integers(1, 100),
    steps=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    """Over any run, allowed <= burst + rate * elapsed."""
    bucket = TokenBucket(rate, burst, now=0.0)
    now, allowed = 0.0, 0
    for step in steps:
        now += step
        allowed += bucket.take(now)
    assert allowed <= burst + rate * now + 1e-6
