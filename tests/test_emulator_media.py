"""Emulator: media kinds, streaming storage, and durations read with the standard library."""

from __future__ import annotations

import hashlib
import io
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nemo_sync.emulator import _media
from nemo_sync.emulator._media import (
    TooLarge,
    _mp4_duration_ms,
    kind_of,
    probe_file,
    store_stream,
)


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def mvhd(version: int, timescale: int, duration: int) -> bytes:
    if version == 1:
        body = b"\x01\x00\x00\x00" + b"\x00" * 16 + struct.pack(">IQ", timescale, duration)
    else:
        body = b"\x00\x00\x00\x00" + b"\x00" * 8 + struct.pack(">II", timescale, duration)
    return box(b"mvhd", body + b"\x00" * 80)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.MP4", "video"),
        ("b.mov", "video"),
        ("c.webm", "video"),
        ("d.mp3", "audio"),
        ("e.m4a", "audio"),
        ("f.jpg", "image"),
        ("f.jpeg", "image"),
        ("g.webp", "image"),
        ("h.txt", None),
        ("noext", None),
        ("dir.mp4/file", None),
    ],
)
def test_kind_of(name: str, kind: str | None) -> None:
    assert kind_of(name) == kind


def _facts(probed: Any) -> tuple[int | None, bool]:
    return probed.duration_ms, probed.estimated


def test_mp4_duration_from_mvhd(tmp_path: Path) -> None:
    v0 = tmp_path / "v0.mp4"
    v0.write_bytes(
        box(b"ftyp", b"isom" * 4) + box(b"mdat", b"\x00" * 100) + box(b"moov", mvhd(0, 600, 7200))
    )
    assert _mp4_duration_ms(v0) == 12_000
    v1 = tmp_path / "v1.mov"
    v1.write_bytes(box(b"ftyp", b"qt  ") + box(b"moov", box(b"udta", b"") + mvhd(1, 1000, 4321)))
    assert _mp4_duration_ms(v1) == 4321
    assert _facts(probe_file(v1, "video")) == (4321, False)


def test_probe_falls_back_to_an_estimate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x01junk")
    assert _facts(probe_file(junk, "video")) == (_media.ASSUMED_DURATION_MS, True)
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3" + b"\x00" * 50)
    assert _facts(probe_file(song, "audio")) == (10_000, True)
    assert _facts(probe_file(tmp_path / "x.png", "image")) == (None, False)


def test_wav_duration(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\x00" * 4 * 44100 * 3)
    path = tmp_path / "a.wav"
    path.write_bytes(buffer.getvalue())
    assert _facts(probe_file(path, "audio")) == (3000, False)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_store_stream_hashes_and_counts(tmp_path: Path) -> None:
    stored = await store_stream(chunks(b"abc", b"def"), tmp_path / "x" / "f.bin", limit=6)
    assert stored.size == 6
    assert stored.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert stored.path.read_bytes() == b"abcdef"


async def test_store_stream_stops_past_the_limit(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(TooLarge):
        await store_stream(chunks(b"abc", b"defg"), dest, limit=6)
    assert not dest.exists()
