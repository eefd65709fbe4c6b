"""Render progress is honest: it follows the frames the local engine has encoded."""

from __future__ import annotations

import itertools
import time

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.local import make_sample_media


async def test_a_local_render_reports_its_frames_in_small_steady_steps(tmp_path) -> None:
    media = make_sample_media(tmp_path / "media", seconds=3.0)
    seen: list[tuple[float, float]] = []  # (seconds since export, progress)
    async with Emulator(silent_ratio=0) as emu, NemoClient(base_url=emu.url) as nemo:
        session = await nemo.create_session()
        for path in (media.music, *media.clips):
            await session.upload(path)
        await session.send("sync the background music to my video")
        job = await session.export()
        started = time.monotonic()
        async for result in job.watch(poll_interval=0.02):
            seen.append((time.monotonic() - started, result.progress or 0.0))
        elapsed = time.monotonic() - started
        assert result.ok, result.error
    values = [p for _, p in seen]
    assert values == sorted(values)
    assert values[-1] == 100
    # Many small steps, not a jump to 90 % and a long silence.
    assert len(set(values)) >= 10, seen
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert max(steps) <= 25, seen
    # In the first fifth of the render it has not claimed most of the work.
    early = [p for t, p in seen if t <= elapsed / 5]
    assert max(early) < 50, seen
