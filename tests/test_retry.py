"""Retry decisions on their own: budgets per kind of failure, waits, Retry-After parsing."""

from __future__ import annotations

import pytest

import nemo_sync
from nemo_sync._retry import RETRY_AFTER_CAP, RetryBudget, backoff, parse_retry_after


def budget(method: str = "GET", **kw: object) -> RetryBudget:
    return RetryBudget(method=method, max_retries=2, anonymous_auth=True, **kw)  # type: ignore[arg-type]


def rate_limited(after: float | None) -> nemo_sync.RateLimitError:
    return nemo_sync.RateLimitError("slow", retry_after=after, status=429)


def test_a_429_is_retried_once_after_its_wait() -> None:
    b = budget()
    assert b.plan(rate_limited(5.0)) == 5.0
    assert b.plan(rate_limited(5.0)) is None
    assert budget().plan(rate_limited(RETRY_AFTER_CAP)) == RETRY_AFTER_CAP
    assert budget().plan(rate_limited(None)) == 30.0


def test_a_429_asking_for_more_than_the_cap_is_not_retried_and_says_the_wait() -> None:
    """Issue 24: waiting 60 s of a week's Retry-After only met the same refusal, in silence."""
    error = rate_limited(RETRY_AFTER_CAP + 1)
    b = budget()
    assert b.plan(error) is None
    assert "about 1 minute" in str(error)
    assert "60 s at most" in str(error)
    assert b.rate_limited == 0  # not spent: a later, shorter 429 in this call may still wait


def test_a_post_that_may_have_arrived_is_never_replayed() -> None:
    sent = nemo_sync.APIConnectionError("lost", request_sent=True)
    refused = nemo_sync.APIConnectionError("refused", request_sent=False)
    assert budget("POST").plan(sent) is None
    assert budget("POST").plan(refused) is not None
    assert budget("GET").plan(sent) is not None


def test_transient_retries_stop_at_max_retries() -> None:
    b = budget()
    error = nemo_sync.ServerError("x", status=503)
    assert b.plan(error) is not None
    assert b.plan(error) is not None
    assert b.plan(error) is None
    assert budget().plan(nemo_sync.ServerError("x", status=501)) is None


def test_reauth_only_for_the_sdks_own_token_and_once() -> None:
    error = nemo_sync.AuthenticationError("expired", code=1001, status=401)
    b = budget(token_used="t")
    assert b.plan(error) == 0.0
    assert b.plan(error) is None
    user = RetryBudget(method="GET", max_retries=2, anonymous_auth=False, token_used="t")
    assert user.plan(error) is None


def test_a_dropped_stream_and_unreplayable_bodies_are_never_retried() -> None:
    assert budget().plan(nemo_sync.StreamInterruptedError("x")) is None
    assert budget(replayable=False).plan(rate_limited(1.0)) is None


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    for attempt in range(10):
        wait = backoff(attempt)
        ceiling = min(8.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_the_budget_repr_hides_the_token() -> None:
    assert "secret" not in repr(budget(token_used="secret"))
