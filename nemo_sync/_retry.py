"""When a failed call is tried again, and how long to wait first.

Decisions come from the exception (the approach of hynek/stamina): each kind of failure has its
own budget per call, so a 429 followed by a 1001 gets one retry each, not a shared count.

A 429 whose Retry-After is longer than :data:`RETRY_AFTER_CAP` is not waited for at all: a
wait cut short would only meet the same refusal, and a silent minute (then a failure) tells
the user nothing. The error says the wait in words instead ("about 7 days").
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone

import attrs

from nemo_sync._contract import ANONYMOUS_TOKEN_PATH, RATE_LIMIT_DEFAULT_WAIT
from nemo_sync.errors import (
    APIConnectionError,
    AuthenticationError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)

logger = logging.getLogger("nemo_sync")

RETRY_AFTER_CAP = 60.0
RETRY_AFTER_DEFAULT = RATE_LIMIT_DEFAULT_WAIT
BACKOFF_START = 0.5
BACKOFF_CAP = 8.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class _Waits:
    """The testing switch: when off, waits are recorded instead of slept."""

    def __init__(self) -> None:
        self.enabled = True
        self.recorded: list[float] = []


WAITS = _Waits()


async def sleep(seconds: float) -> None:
    """Sleep for a retry wait, unless waits are turned off for tests."""
    if WAITS.enabled:
        await asyncio.sleep(seconds)
    else:
        WAITS.recorded.append(seconds)
        await asyncio.sleep(0)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` seconds, or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe_wait(seconds: float) -> str:
    """A wait in words, two units at most: "45 seconds", "3 hours 20 minutes", "about 7 days".

    Under a minute it is counted in seconds, under a day in minutes, else in hours; "about"
    says that rounding changed it.
    """
    seconds = max(0.0, seconds)
    step = 1 if seconds < 60 else 60 if seconds < 86400 else 3600
    steps = max(1, round(seconds / step))
    left = steps * step
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    text = " ".join(parts)
    return text if steps * step == seconds else f"about {text}"


def wait_until(seconds: float, *, now: float | None = None) -> str:
    """When a wait of ``seconds`` from now ends, in UTC to the minute: "2025-06-08 10:00 UTC"."""
    end = (time.time() if now is None else now) + max(0.0, seconds)
    return datetime.fromtimestamp(end, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _too_long_to_wait(exc: RateLimitError, wait: float) -> None:
    """Put the wait the SDK will not make into the error's message, in words.

    The error object is the one raised to the caller (as ``with_link`` does for 2001): its
    message is the only thing the user reads.
    """
    exc.message = (
        f"Rate limited by the service for {describe_wait(wait)} (until {wait_until(wait)}); "
        f"nemo-sync waits {RETRY_AFTER_CAP:.0f} s at most, so it stopped at once instead."
    )
    exc.args = (exc.message,)


class RateCooldown:
    """The "not before" time of this client's API calls: the end of the last 429's wait.

    Kept in memory and read by every call (a float compared with the clock, no I/O); with a
    Redis job store, fed by this host's own 429s and the other hosts' (see
    :mod:`nemo_sync._fleet_state`); without one it stays 0. It is a Unix time
    (``time.time()``) because it crosses hosts: the host that got the 429 adds the
    Retry-After to its own clock, and every host compares with its own, so a host whose
    clock is off by N seconds waits N seconds too long or too short (NTP keeps that small).
    """

    __slots__ = ("joining", "not_before", "shared")

    def __init__(self) -> None:
        self.not_before = 0.0  # 0: no cooldown (the hot path tests only this)
        # Called with a deadline this host learned from its own 429 (to tell the fleet).
        self.shared: Callable[[float], None] | None = None
        # Set while this host's fleet listener has not read the cooldown in force yet: the
        # first call awaits it (bounded), so a host starting mid-cooldown sends nothing early.
        self.joining: Callable[[], Awaitable[None]] | None = None

    def extend(self, deadline: float) -> None:
        """Wait until ``deadline`` (a Unix time) unless a later one is already kept."""
        self.not_before = max(self.not_before, deadline)

    def rate_limited(self, exc: RateLimitError) -> None:
        """Record a 429 this host got: its wait, from now, for every call and the fleet.

        Only for a client in a fleet (a Redis job store): alone, a 429 is waited for by the
        call that got it, as it always was.
        """
        if self.shared is None or (exc.endpoint or "").endswith(ANONYMOUS_TOKEN_PATH):
            # The anonymous-token call's 429 is its client id's weekly quota, not the API's
            # rate: the other hosts' calls (with a token already) are not refused.
            return
        wait = exc.retry_after if exc.retry_after is not None else RETRY_AFTER_DEFAULT
        deadline = time.time() + wait
        self.extend(deadline)
        self.shared(deadline)

    def left(self) -> float:
        """Seconds still to wait (0.0 when none); forgets a deadline that has passed."""
        if not self.not_before:
            return 0.0
        wait = self.not_before - time.time()
        if wait <= 0:
            self.not_before = 0.0
            return 0.0
        return wait


def cooling_down(wait: float, endpoint: str, *, time_left: float | None) -> RateLimitError | None:
    """The error for a call that may not wait out a cooldown of ``wait`` seconds, or None.

    Over :data:`RETRY_AFTER_CAP` it fails at once with the wait in words, as a 429 of this
    host's own does; past the call's own deadline (``time_left``) it fails too, since a
    request sent before the cooldown ends would only be refused again.
    """
    exc = RateLimitError(
        f"Rate limited by the service for {describe_wait(wait)} more (a 429 seen by this "
        "host or another host of the fleet); the call's timeout ends before that.",
        status=429,
        code=429,
        endpoint=endpoint,
        retry_after=wait,
    )
    if wait > RETRY_AFTER_CAP:
        _too_long_to_wait(exc, wait)
        return exc
    if time_left is not None and wait >= time_left:
        return exc
    return None


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped at 8 s."""
    ceiling = min(BACKOFF_CAP, BACKOFF_START * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)


@attrs.define
class RetryBudget:
    """What one call may still retry, and what the next wait is."""

    method: str
    max_retries: int
    anonymous_auth: bool
    replayable: bool = True
    rate_limited: int = 0
    reauthed: int = 0
    transient: int = 0
    next_wait: float = 0.0
    # The bearer sent on the last attempt (needed to invalidate it after a 1001); its repr is
    # redacted because budgets sit in the frames of every failed call's traceback.
    token_used: str | None = attrs.field(default=None, repr=lambda t: "'***'" if t else "None")
    # Getting the token failed: that was its own call, with its own retries (a 429 waited
    # once), so retrying this call would only ask for a token again.
    token_fetch_failed: bool = False

    def plan(self, exc: BaseException) -> float | None:
        """The wait before retrying after ``exc``, or None when it must not be retried."""
        if not self.replayable or self.token_fetch_failed:
            return None
        if isinstance(exc, RateLimitError):
            if self.rate_limited >= 1:
                return None
            wait = exc.retry_after if exc.retry_after is not None else RETRY_AFTER_DEFAULT
            if wait > RETRY_AFTER_CAP:
                # Retrying before the server's time would be refused again: fail now, in words.
                _too_long_to_wait(exc, wait)
                return None
            self.rate_limited += 1
            return wait
        if isinstance(exc, AuthenticationError):
            # Only the SDK's own anonymous token may be swapped; a user's token is theirs.
            if not self.anonymous_auth or self.reauthed >= 1 or self.token_used is None:
                return None
            self.reauthed += 1
            return 0.0
        if isinstance(exc, StreamInterruptedError):
            return None
        idempotent = self.method in IDEMPOTENT_METHODS
        if isinstance(exc, APIConnectionError):
            # A POST that may have reached the server is never replayed.
            if not idempotent and exc.request_sent:
                return None
        elif isinstance(exc, ServerError):
            if not idempotent or exc.status not in TRANSIENT_STATUSES:
                return None
        else:
            return None
        if self.transient >= self.max_retries:
            return None
        wait = backoff(self.transient)
        self.transient += 1
        return wait

    def should_retry(self, exc: BaseException) -> bool:
        """tenacity's ``retry`` predicate: plan the retry and remember its wait."""
        wait = self.plan(exc)
        if wait is None:
            return False
        self.next_wait = wait
        return True
