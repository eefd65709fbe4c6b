"""The emulator's clock: real time plus an offset that tests move forward."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class FakeClock:
    """Wall-clock time as the emulator sees it (seconds since the epoch).

    It starts at the real time and keeps ticking with it; :meth:`advance` jumps it forward,
    so a test can let a 7-day token expire in a microsecond. Token expiry and the anonymous
    token rate limit read this clock; render progress and chat latency use real time.

    Example:
        >>> clock = FakeClock()
        >>> before = clock.now()
        >>> clock.advance(days=7)
        >>> clock.now() - before >= 7 * 86400
        True
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """The emulated time, in seconds since the epoch."""
        return time.time() + self._offset

    def datetime(self) -> datetime:
        """The emulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    @property
    def offset(self) -> float:
        """How far (seconds) the clock is ahead of real time."""
        return self._offset

    def advance(
        self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> None:
        """Move the clock forward.

        Raises:
            ValueError: when the total is negative (time does not run backwards here).
        """
        delta = days * 86400 + hours * 3600 + minutes * 60 + seconds
        if delta < 0:
            raise ValueError(f"the clock only moves forward; got {delta} seconds")
        self._offset += delta

    def reset(self) -> None:
        """Back to real time."""
        self._offset = 0.0

    def __repr__(self) -> str:
        return f"FakeClock(now={self.datetime().isoformat()}, offset={self._offset:g}s)"
