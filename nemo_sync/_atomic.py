"""Atomic, private file writes, and tidying what a writer killed mid-write left behind."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import time
from pathlib import Path

STALE_TEMP_SECONDS = 60.0
"""A temporary file older than this is no live write's (a write takes milliseconds)."""


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600.

    A reader sees the old file or the new one, never half of one; a crash leaves no partial
    file at ``path``. A process killed mid-write leaves a ``.<name>.<pid>-<random>.tmp``
    beside it, which :func:`remove_stale_temps` removes later.
    """
    # A folder made here for private files is private too (0700); an existing one is left be.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The writer's pid in the name tells a later tidy whether the writer is still alive.
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    try:
        # mkstemp already creates the file 0600; chmod again in case of an odd umask handler.
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable: after a power cut the folder still names the new file
    (POSIX; Windows cannot open a folder this way, and NTFS journals renames)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: the data is safe anyway
        pass
    finally:
        os.close(fd)


_PID = re.compile(r"(\d+)-")


def _writer_gone(name: str, prefix: str) -> bool:
    """Whether the process named in a temporary file's name has ended (POSIX only)."""
    found = _PID.match(name[len(prefix) :])
    if found is None or sys.platform == "win32":
        # An older version's name has no pid; on Windows, os.kill(pid, 0) would send a
        # CTRL_C_EVENT. Only the age rule applies then.
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # alive under another user (EPERM), or no such number
        return False
    return False


def remove_stale_temps(
    path: Path, *, older_than: float = STALE_TEMP_SECONDS, now: float | None = None
) -> list[Path]:
    """Remove the temporary files :func:`write_private` left beside ``path`` when a writer
    was killed mid-write; returns what was removed.

    A temporary file is stale when the process that made it has ended, or when it is older
    than ``older_than`` seconds. Call this only while holding the lock every writer of
    ``path`` holds: then no write of ``path`` is under way, and the age rule only guards a
    writer that does not take the lock. Never raises: a file that cannot be removed stays.
    """
    prefix = _temp_prefix(path)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        temp = path.parent / name
        try:
            info = os.lstat(temp)
            if not stat.S_ISREG(info.st_mode):
                continue  # not one of ours: write_private only makes regular files
            if now - info.st_mtime <= older_than and not _writer_gone(name, prefix):
                continue  # a live writer's, maybe mid-write
            os.unlink(temp)
        except OSError:
            continue
        removed.append(temp)
    return removed
