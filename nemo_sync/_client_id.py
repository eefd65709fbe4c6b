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

logger = logging.getLogger("nemo_sync")

# What the vendor writes is a UUID; accept any short id of safe characters (a header value).
_VALID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_FILE = 4096


def read_client_id(path: Path) -> str | None:
    """The id in ``path``, or None when there is none (a damaged file is ignored, with a log)."""
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read the shared client id %s: %s", path, type(exc).__name__)
        return None
    value = raw.decode("utf-8", errors="replace").strip()
    if not _VALID.fullmatch(value):
        logger.warning("ignoring the shared client id in %s: it is not an id", path)
        return None
    return value


def claim_client_id(path: Path, candidate: str | None = None) -> str:
    """The machine's client id: the one in ``path``, else ``candidate`` (or a new UUID) saved there.

    Creation is exclusive (``O_EXCL``), so when two processes race the second adopts the
    first one's id instead of overwriting it. When the file cannot be written (a read-only
    home, say) the id is still returned, for this process only.
    """
    existing = read_client_id(path)
    if existing is not None:
        return existing
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
        logger.warning("cannot save the shared client id to %s: %s", path, type(exc).__name__)
    return value
