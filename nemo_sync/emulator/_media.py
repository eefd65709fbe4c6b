"""Uploaded media: streaming to disk (bounded memory, hashed as it goes) and probing durations."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import attrs
from aiohttp import web

from nemo_sync._contract import media_kind
from nemo_sync.emulator._api_errors import DiskFull, folder_of, is_disk_full

ASSUMED_DURATION_MS = 10_000
CHUNK = 256 * 1024

# The emulator process (its worker id) that serves a request: a file it writes carries that id
# in its name, so a later process can tell a file being written by a live process from one a
# killed process left behind (see ``_store_admin.worker_alive``).
WRITER = web.RequestKey("writer", str)
WORKER_IN_NAME = re.compile(r"wrk_[0-9a-f]{12}")


def extension(name: str) -> str:
    """The lower-case extension of a file name ("" when it has none)."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def kind_of(name: str) -> str | None:
    """``"video"``, ``"audio"`` or ``"image"`` for a supported file name, else ``None``."""
    kind = media_kind(extension(name))
    return None if kind == "unknown" else kind


def stored_name(name: str, writer: str | None) -> str:
    """A new file's name in the media folder: random, the writer's id, the upload's extension
    (what the probe and the CDN's content go by)."""
    tag = f"-{writer}" if writer else ""
    return f"{secrets.token_hex(8)}{tag}.{extension(name)}"


class TooLarge(Exception):
    """The stream passed the size limit (the partial file is already deleted)."""


@attrs.frozen
class Stored:
    """A file written to the emulator's data folder."""

    path: Path
    size: int
    sha256: str


async def store_stream(chunks: AsyncIterator[bytes], dest: Path, *, limit: int) -> Stored:
    """Write ``chunks`` to ``dest``, hashing as it goes; never holds more than one chunk.

    Raises:
        TooLarge: as soon as more than ``limit`` bytes arrive (``dest`` is removed).
        DiskFull: when the disk has no room for it (``dest`` is removed): the 507 reply.
    """
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    complete = False
    # Plain blocking writes: a local disk write of one chunk is shorter than a thread hop.
    try:
        with dest.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    break
                digest.update(chunk)
                out.write(chunk)
            else:
                # Complete only once closed: the last buffered bytes are written by the close,
                # and a full disk may refuse those too.
                out.flush()
                complete = True
    except OSError as exc:
        complete = False
        if is_disk_full(exc):
            dest.unlink(missing_ok=True)  # before the free space is measured for the message
            raise DiskFull.of(exc, folder_of(dest)) from None
        raise
    finally:
        if not complete:
            dest.unlink(missing_ok=True)
    if not complete:
        raise TooLarge
    return Stored(dest, size, digest.hexdigest())


def _mp4_duration_ms(path: Path) -> int | None:
    """The movie duration from an MP4/MOV ``moov/mvhd`` box, reading only box headers."""
    with path.open("rb") as f:
        end = os.fstat(f.fileno()).st_size
        return _find_mvhd(f, 0, end, depth=0)


def _find_mvhd(f: BinaryIO, start: int, end: int, depth: int) -> int | None:
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return None
        size, box = struct.unpack(">I4s", header)
        body = pos + 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return None
            size = struct.unpack(">Q", large)[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < 8:
            return None
        if box == b"moov" and depth == 0:
            return _find_mvhd(f, body, min(pos + size, end), depth=1)
        if box == b"mvhd" and depth == 1:
            f.seek(body)
            version = f.read(4)[:1]
            if version == b"\x01":
                f.seek(16, os.SEEK_CUR)
                timescale, duration = struct.unpack(">IQ", f.read(12))
            else:
                f.seek(8, os.SEEK_CUR)
                timescale, duration = struct.unpack(">II", f.read(8))
            return round(duration * 1000 / timescale) if timescale else None
        pos += size
    return None


def _wav_duration_ms(path: Path) -> int | None:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        return round(w.getnframes() * 1000 / rate) if rate else None


@attrs.frozen
class Probed:
    """What the emulator knows of a stored file (the upload reply's facts [R]).

    Attributes:
        duration_ms: Its length (``None`` for images).
        estimated: True when the length could not be read and 10 s was assumed.
        width, height, fps: Picture facts, when the local engine could read them.
    """

    duration_ms: int | None
    estimated: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def probe_file(path: Path, kind: str) -> Probed:
    """The facts of a stored file. Blocking: call it in a thread.

    Uses the local engine's probe when the ``local`` extra is installed, else what the
    standard library can read (WAV headers, the MP4/MOV ``mvhd`` box); otherwise assumes
    10 s and says so (``estimated=True``). Images have no duration.
    """
    from nemo_sync.emulator._local import probe_media

    info = probe_media(path)
    if kind == "image":
        return Probed(None, False, info.width, info.height)
    picture = (info.width, info.height, info.fps) if kind == "video" else (None, None, None)
    if info.duration_ms is not None:
        return Probed(info.duration_ms, False, *picture)
    ext = extension(path.name)
    found: int | None
    try:
        if ext == "wav":
            found = _wav_duration_ms(path)
        elif ext in ("mp4", "mov", "m4a"):
            found = _mp4_duration_ms(path)
        else:
            found = None
    except (OSError, EOFError, wave.Error, struct.error):
        found = None
    if found is not None and found > 0:
        return Probed(found, False, *picture)
    return Probed(ASSUMED_DURATION_MS, True, *picture)
