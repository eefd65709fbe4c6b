"""Render wait: CPU seconds this process uses while ``job.wait()`` polls a long render.

Target: near zero. The emulator runs in its own process (``python -m nemo_sync.emulator``)
with renders that take a day, so only the waiting client's CPU is counted. The baseline is
the same event loop doing nothing (``asyncio.sleep``) for the same time, in the same run.

    python benchmarks/bench_render_wait.py            # 60 s per row
    python benchmarks/bench_render_wait.py --quick    # 3 s per row
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

import nemo_sync

# A minimal ISO-BMFF header: enough for the upload checks; the render never gets that far.
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(run: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) spent in ``run()``."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    await run()
    return cpu_seconds() - cpu, time.perf_counter() - wall


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nemo_sync.emulator", "--port", "0", "--render-seconds", "86400"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"http://\S+", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return proc, found.group()


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else 60.0
    intervals = (1.0, 0.25) if args.quick else (30.0, 5.0, 1.0)

    proc, url = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as home:
            async with nemo_sync.NemoClient(base_url=url, home=home) as nemo:
                session = await nemo.create_session()
                media = await session.upload(CLIP, filename="clip.mp4")
                draft = {"t": [{"tt": 0, "sg": [{"mid": media.id, "st": 0, "d": 1000}]}]}
                job = await session.export(draft)
                await job.status()  # warm: the connection is open, the code paths imported

                base_cpu, base_wall = await measure(lambda: asyncio.sleep(seconds))
                rows = [
                    ["`asyncio.sleep` (baseline)", f"{base_wall:.1f} s", "0", f"{base_cpu:.3f} s"]
                ]
                for interval in intervals:

                    async def wait(interval: float = interval) -> None:
                        # The timeout is expected: the render takes a day.
                        with contextlib.suppress(nemo_sync.RenderTimeoutError):
                            await job.wait(poll_interval=interval, timeout=seconds)

                    cpu, wall = await measure(wait)
                    rows.append(
                        [
                            f"`job.wait(poll_interval={interval:g})`",
                            f"{wall:.1f} s",
                            f"~{wall / interval:.0f}",
                            f"{cpu:.3f} s ({cpu - base_cpu:+.3f} s vs baseline)",
                        ]
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return table(
        f"Render wait: client CPU while polling ({machine()})",
        ["waiting with", "wall", "polls", "CPU used"],
        rows,
    )


if __name__ == "__main__":
    print(asyncio.run(main()))
