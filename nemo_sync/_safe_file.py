"""Reading the SDK's own state files safely, and setting a damaged one aside.

Every file nemo-sync keeps (credentials, the client id, the job store, the CLI's last session)
may be found damaged: emptied by a full disk, truncated by a crash, replaced by a FIFO or a
symlink, written by a newer version, or planted huge. Reading one must never hang (a FIFO),
never follow a link, never take more memory than its kind needs, and never raise an untyped
error. A damaged file is moved aside whole (``<name>.damaged-<UTC time>``), with one line
saying where, so nothing the user had is lost and the next write starts clean.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path

import attrs

logger = logging.getLogger("nemo_sync")

# O_NOFOLLOW refuses a symlink at open time (no check-then-open race); Windows has no such
# flag, so there the is_symlink() check is the only guard.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A FIFO planted in place of a file would block open(); O_NONBLOCK does nothing to files.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

DAMAGED_SUFFIX = ".damaged-"


@attrs.frozen
class FileRead:
    """What reading a state file found.

    Attributes:
        data: The bytes, when the file is there and usable.
        problem: Why it is not usable (a symlink, not a regular file, too large, unreadable),
            when it is there but refused; ``None`` when it is fine or absent.
    """

    data: bytes | None = None
    problem: str | None = None

    @property
    def missing(self) -> bool:
        """No file at all (not an error: a first run)."""
        return self.data is None and self.problem is None


def open_no_follow(path: Path) -> int:
    """Open ``path`` for reading without following a symlink or blocking on a FIFO.

    Raises:
        OSError: ``ELOOP`` for a symlink, ``ENOENT`` when absent, or the open's own error.
    """
    if not _NOFOLLOW and path.is_symlink():  # pragma: no cover - Windows: check, then open
        raise OSError(errno.ELOOP, "symbolic link", str(path))
    return os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)


def read_state_file(path: Path, *, limit: int) -> FileRead:
    """The bytes of a regular file of at most ``limit`` bytes; never raises.

    A symlink, a FIFO, a device, a folder, a file over ``limit`` or one that cannot be read
    gives a :class:`FileRead` whose ``problem`` says so (nothing is read from it).
    """
    try:
        fd = open_no_follow(path)
    except FileNotFoundError:
        return FileRead()
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            return FileRead(problem="it is a symbolic link, which is not followed")
        return FileRead(problem=f"it cannot be opened ({_reason(exc)})")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return FileRead(problem="it is not a regular file")
        if info.st_size > limit:
            return FileRead(problem=f"{info.st_size:,} bytes is more than such a file holds")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while being read
            return FileRead(problem=f"more than {limit:,} bytes")
        return FileRead(data=b"".join(chunks))
    except OSError as exc:
        return FileRead(problem=f"it cannot be read ({_reason(exc)})")
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


def json_kind(value: object) -> str:
    """A JSON value's kind, for messages about a damaged file ("a string", "a list")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def damaged_name(path: Path, now: float | None = None) -> Path:
    """``<name>.damaged-<UTC time>`` beside ``path`` (a free name: ``-2``, ``-3`` when taken)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    candidate = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}")
    n = 2
    while os.path.lexists(candidate):
        candidate = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}-{n}")
        n += 1
    return candidate


def set_aside(path: Path, why: str) -> Path | None:
    """Move a damaged file aside whole and say so in one line; returns where it went.

    A file that cannot be moved (a read-only folder) is left where it is, and the line says
    that instead: nothing is deleted either way.
    """
    target = damaged_name(path)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning(
            "%s is damaged (%s) and could not be moved aside (%s); it is ignored",
            path,
            why,
            _reason(exc),
        )
        return None
    logger.warning("%s was damaged (%s); moved aside to %s", path, why, target.name)
    return target
