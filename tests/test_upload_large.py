"""A 200+ MB upload to the emulator: the bytes arrive intact and memory stays flat."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator

MB = 1024 * 1024
SIZE = 210 * MB + 12_345  # over 200 MB, and not a whole number of chunks
RSS_LIMIT = 32 * MB
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size now (ru_maxrss is a lifetime peak and cannot be reset)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def write_test_file(path: Path, size: int) -> str:
    """Random-looking bytes (a random MiB, each copy stamped with its index); the sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MB)
    with path.open("wb") as f:
        head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # sniffs as MP4
        f.write(head)
        digest.update(head)
        written, index = len(head), 0
        while written < size:
            chunk = (index.to_bytes(8, "big") + block[8:])[: size - written]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            index += 1
    return digest.hexdigest()


class PeakRSS:
    """Samples RSS every few ms in the background while the block runs."""

    def __init__(self) -> None:
        self.start = self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakRSS:
        self.start = self.peak = rss()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss())
            await asyncio.sleep(0.002)

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
async def test_a_210_mb_upload_arrives_intact_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "long take.mp4"
    expected = await asyncio.to_thread(write_test_file, path, SIZE)
    progress: list[int] = []
    # The emulator runs in this process: its memory counts too (it streams to disk).
    async with Emulator(data_dir=tmp_path / "emulator") as emu:
        async with NemoClient(base_url=emu.url, home=tmp_path / "home") as nemo:
            session = await nemo.create_session()
            await session.upload(b"ID3" + bytes(2 * MB), filename="warm-up.mp3")  # lazy setup
            async with PeakRSS() as memory:
                media = await session.upload(path, on_progress=lambda s, t: progress.append(s))
            record = emu.media_record(media)
    assert media.size == SIZE
    assert record.size == SIZE
    assert record.sha256 == expected
    assert memory.growth < RSS_LIMIT, f"RSS grew by {memory.growth / MB:.1f} MB"
    assert progress[-1] == SIZE
    assert len(progress) > 200  # reported as chunks went out, not once at the end
