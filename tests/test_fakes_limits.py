"""The fakes' rate limiters: what they admit never exceeds the limit they model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.common import SlidingWindow, TokenBucket, retry_after_seconds

gaps = st.lists(st.floats(min_value=0.0, max_value=0.5, allow_nan=False), min_size=1, max_size=200)


def _admitted(limiter: SlidingWindow | TokenBucket, steps: list[float]) -> list[float]:
    now, admitted = 100.0, []
    for gap in steps:
        now += gap
        if limiter.check(now) <= 0:
            limiter.hit(now)
            admitted.append(now)
    return admitted


@given(gaps, st.integers(min_value=1, max_value=30))
def test_sliding_window_never_admits_more_than_its_limit(steps: list[float], limit: int) -> None:
    admitted = _admitted(SlidingWindow(limit, 1.0), steps)
    for i, t in enumerate(admitted):
        assert sum(1 for u in admitted[i:] if u < t + 1.0) <= limit


@given(gaps, st.integers(min_value=1, max_value=5))
def test_token_bucket_allows_rate_plus_burst(steps: list[float], burst: int) -> None:
    admitted = _admitted(TokenBucket(1.0, float(burst)), steps)
    for i, t in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - t
            assert j - i + 1 <= burst + span * 1.0 + 1e-9


def test_waiting_as_told_is_then_allowed() -> None:
    window = SlidingWindow(2, 1.0)
    for t in (0.0, 0.1):
        window.hit(t)
    wait = window.check(0.2)
    assert 0.79 < wait < 0.81 and window.check(0.2 + wait) == 0
    bucket = TokenBucket(1.0, 1.0)
    bucket.hit(0.0)
    assert 0.99 < bucket.check(0.0) <= 1.0 and bucket.check(1.0) == 0


def test_out_of_order_arrivals_are_counted() -> None:
    window = SlidingWindow(2, 1.0)
    window.hit(0.5)
    window.hit(0.2)  # handled after a later arrival
    assert window.check(0.9) > 0 and window.check(1.21) == 0
    bucket = TokenBucket(1.0, 2.0)
    bucket.hit(1.0)
    bucket.hit(0.9)
    assert bucket.check(1.0) > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_seconds(w) for w in (0.001, 1.0, 1.2, 59.1)] == [1, 1, 2, 60]
