"""Retry waits turned off for tests: recorded instead of slept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nemo_sync._retry import WAITS


@contextmanager
def disable_waits() -> Iterator[list[float]]:
    """Turn retry waits off inside the block; yields the list of waits that were skipped.

    Example:
        >>> from nemo_sync.testing import disable_waits
        >>> with disable_waits() as waits:
        ...     pass  # a call that meets a 429 with Retry-After: 1 records 1.0 here
        >>> waits
        []
    """
    before_enabled, before_recorded = WAITS.enabled, WAITS.recorded
    WAITS.enabled, WAITS.recorded = False, []
    try:
        yield WAITS.recorded
    finally:
        WAITS.enabled, WAITS.recorded = before_enabled, before_recorded
