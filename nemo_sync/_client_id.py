"""The machine's anonymous client id, in the file the vendor's own tools share [V].

``~/.config/nemovideo/client_id`` holds a UUID and nothing else (no secret). The vendor's
skill and this SDK both read it, and the first to need one writes it, so a machine is one
client: the service allows one anonymous token per client per 7 days and ten per IP [V], and
a second identity per tool would burn that quota.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from pathlib import Path

from nemo_sync._safe_file import read_state_file, set_aside

logger = logging.getLogger("nemo_sync")

# What the vendor writes is a UUID; accept any short id of safe characters (a header value).
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# A UUID and a newline; anything much larger is not a client id file.
_MAX_FILE = 4096


def _inspect(path: Path) -> tuple[str | None, str | None]:
    """(the id in ``path``, why the file there is not usable); both None when there is none."""
    found = read_state_file(path, limit=_MAX_FILE)
    if found.problem is not None or found.data is None:
        return None, found.problem
    try:
        value = found.data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "it is not text"
    if not value:
        return None, "it is empty"
    if not _VALID.fullmatch(value):
        return None, "it does not hold an id"
    return value, None


def read_client_id(path: Path) -> str | None:
    """The id in ``path``, or None when there is none or the file is damaged (nothing is
    changed: :func:`claim_client_id` is what sets a damaged file aside)."""
    return _inspect(path)[0]


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def claim_client_id(path: Path, candidate: str | None = None) -> str:
    """The machine's client id: the one in ``path``, else ``candidate`` (or a new UUID) saved there.

    Creation is exclusive (``O_EXCL``), so when two processes race the second adopts the
    first one's id instead of overwriting it. A damaged file (not an id, a FIFO, a symlink,
    too large) is moved aside whole, with one line saying where, and replaced. When the file
    cannot be written (a read-only home, say) the id is still returned, for this process only.
    """
    seen = _identity(path)
    existing, problem = _inspect(path)
    if existing is not None:
        return existing
    # No lock is shared with the vendor's tools: set the damage aside only if it is still the
    # file that was read, not a good one another process has just put in its place.
    if problem is not None and seen is not None and _identity(path) == seen:
        set_aside(path, problem)
    value = candidate if candidate and _VALID.fullmatch(candidate) else str(uuid.uuid4())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(value + "\n")
            try:
                # link() fails if the file appeared meanwhile: the first writer wins.
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                os.replace(tmp, path)  # a file system without hard links: last writer wins
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    except FileExistsError:
        raced = read_client_id(path)
        if raced is not None:
            return raced
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        logger.warning(
            "cannot save the shared client id to %s (%s): it is used by this process only",
            path,
            reason,
        )
    return value
