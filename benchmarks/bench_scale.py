"""Scale: N concurrent sessions, each upload (small) + chat turn + state, from one event loop.

Checks: no errors, the client's connection pool stays bounded, and the turn latency
distribution (p50/p99). The baseline is the same turn with one session alone, measured in
the same run, so the ratio shows what concurrency costs.

    python benchmarks/bench_scale.py [--quick] [--sessions 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import tempfile
import time
import wave
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

import nemo_sync
from nemo_sync.emulator import Emulator

POOL = 100


def tiny_wav(seconds: float = 1.0) -> bytes:
    buffer = BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<h", 0) * int(8000 * seconds))
    return buffer.getvalue()


async def one_session(nemo: nemo_sync.NemoClient, audio: bytes) -> float:
    session = await nemo.create_session()
    await session.upload(audio, filename="beat.wav")
    started = time.perf_counter()
    await session.send("set the music volume to 40%")
    took = time.perf_counter() - started
    await session.state()
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, default=500)
    args = parser.parse_args(argv)
    count = 40 if args.quick else args.sessions
    audio = tiny_wav()
    async with Emulator(silent_ratio=0.0) as emu:
        with tempfile.TemporaryDirectory() as home:
            async with nemo_sync.NemoClient(
                base_url=emu.url, home=home, max_connections=POOL, timeout=300
            ) as nemo:
                alone = [await one_session(nemo, audio) for _ in range(5)]
                started = time.perf_counter()
                results = await asyncio.gather(
                    *(one_session(nemo, audio) for _ in range(count)), return_exceptions=True
                )
                wall = time.perf_counter() - started
                connector = nemo._transport.http.connector
                assert connector is not None
                pool_limit = connector.limit
    errors = [r for r in results if isinstance(r, BaseException)]
    latencies = [r for r in results if isinstance(r, float)]
    base = statistics.median(alone)
    rows = [
        [
            str(count),
            str(len(errors)),
            f"{pool_limit}",
            f"{statistics.median(latencies) * 1000:.0f} ms" if latencies else "-",
            f"{pct(latencies, 0.99) * 1000:.0f} ms" if latencies else "-",
            f"{base * 1000:.0f} ms",
            f"{count / wall:.0f}/s",
        ]
    ]
    if errors:
        rows.append([f"first error: {errors[0]!r:.80}", "", "", "", "", "", ""])
    return table(
        f"Scale ({machine()})",
        [
            "sessions",
            "errors",
            "pool limit",
            "turn p50",
            "turn p99",
            "turn alone (baseline)",
            "sessions done",
        ],
        rows,
    )


if __name__ == "__main__":
    print(asyncio.run(main()))
