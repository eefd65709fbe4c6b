"""A cross-process advisory lock on a file, usable from asyncio without blocking the loop."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from nemo_sync.errors import ConfigurationError

_POLL_SECONDS = 0.02


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


@asynccontextmanager
async def file_lock(path: Path, *, timeout: float = 60.0) -> AsyncIterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block.

    The lock is released when the process dies, so a crash never leaves it stuck.

    Raises:
        ConfigurationError: when the lock file cannot be made (a read-only home, a folder in
            its place), or the lock is not had within ``timeout`` seconds.
    """
    try:
        # Lock files live in NEMO_HOME beside the credentials: a folder we make is private.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_NOFOLLOW: a lock file swapped for a symlink must not make us create or open its
        # target.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        # One line that says what to do, not "[Errno 30] Read-only file system".
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ConfigurationError(
            f"cannot make the lock file {path} ({reason}): nemo-sync only locks to write its "
            f"state in {path.parent}; make that folder writable, or set NEMO_HOME to one that is"
        ) from exc
    try:
        deadline = time.monotonic() + timeout
        # Polling keeps the event loop free; flock has no async form.
        while not try_lock(fd):
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"could not lock {path} within {timeout:.0f} s: another nemo-sync process "
                    "holds it; if none runs, delete the file"
                )
            await asyncio.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


_T = TypeVar("_T")


async def locked_file_work(path: Path, work: Callable[[], _T]) -> _T:
    """Run ``work`` (blocking file work) in a thread while holding the lock on ``path``.

    Shielded: a cancelled caller still waits for work that started to finish before the lock
    is let go, so a file is never left half written, nor written by two processes at once.
    """
    async with file_lock(path):
        running = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            await asyncio.wait({running})
            raise
