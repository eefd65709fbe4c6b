"""Per-call overhead: NemoClient.credits() vs raw aiohttp requests to the same local server.

Target: >= 0.9x the raw requests/s, sequential and 64-concurrent. Both sides parse the JSON.
The server runs in its own process, so the client's CPU time per call (``time.process_time``
of this process) is the client's alone: it is reported beside the rate, and it is the steadier
of the two on a shared machine. Where the OS allows, the server and the client each run on a
CPU of their own (the same for both sides), which takes the scheduler's moves out of the
comparison.

    python benchmarks/bench_overhead.py [--quick] [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, serve, table

from nemo_sync import NemoClient

BODY = b'{"code": 0, "message": "ok", "data": {"available": 100, "frozen": 0, "total": 100}}'


async def credits(_request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def run_raw(url: str, calls: int, concurrency: int) -> float:
    # The same request the SDK makes: the contract's attribution headers and a bearer token.
    headers = {
        "Authorization": "Bearer t",
        "X-Skill-Source": "music-cog-online",
        "X-Skill-Version": "1.0.0",
        "X-Skill-Platform": "unknown",
        "User-Agent": "bench",
    }
    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            async with http.get(url + "/api/credits/balance/simple", headers=headers) as resp:
                data = await resp.json()
                assert data["data"]["available"] == 100

        return await _drive(one, calls, concurrency)


async def run_sdk(url: str, calls: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        async with NemoClient(base_url=url, token="t", home=home) as nemo:

            async def one() -> None:
                assert (await nemo.credits()).available == 100

            return await _drive(one, calls, concurrency)


LAST_CPU: list[float] = []  # CPU seconds per call of the last _drive, for the report


async def _drive(one: object, calls: int, concurrency: int) -> float:
    call = one  # an async callable
    sem = asyncio.Semaphore(concurrency)

    async def guarded() -> None:
        async with sem:
            await call()  # type: ignore[operator]

    for _ in range(min(50, calls)):  # warm the pool
        await guarded()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(guarded() for _ in range(calls)))
    LAST_CPU[:] = [(time.process_time() - cpu) / calls]
    return calls / (time.perf_counter() - started)


def _cpus() -> tuple[set[int], set[int]] | None:
    """One CPU for the server and another for the client, where the OS lets us choose.

    With both processes free to move, the scheduler's choices moved the client's CPU time
    per call by +-15% between identical runs on a 2-core VM; pinned, both sides pay the same
    cache and migration costs every round. None where affinity cannot be set (macOS, 1 CPU).
    """
    get = getattr(os, "sched_getaffinity", None)
    cpus = sorted(get(0)) if get is not None else []
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, {cpus[0]}


def _serve_forever(port: multiprocessing.Queue, cpu: set[int] | None = None) -> None:  # type: ignore[type-arg]
    """The server, in its own process: it reports its port, then serves until killed."""
    if cpu is not None:
        os.sched_setaffinity(0, cpu)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/credits/balance/simple", credits)
        _runner, url = await serve(app)
        port.put(url)
        await asyncio.Event().wait()

    asyncio.run(main())


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few hundred calls only")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    calls = 300 if args.quick else args.calls
    rounds = 1 if args.quick else args.rounds
    pinned = _cpus()
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(
        target=_serve_forever, args=(ports, pinned[0] if pinned else None), daemon=True
    )
    server.start()
    url = ports.get(timeout=30)
    before = os.sched_getaffinity(0) if pinned else None
    if pinned:
        os.sched_setaffinity(0, pinned[1])
    rows = []
    try:
        for concurrency in (1, 64):
            # Interleaved rounds, best of each side, so a noisy neighbour hurts both alike.
            raw = sdk = 0.0
            raw_cpu = sdk_cpu = float("inf")
            for _ in range(rounds):
                raw = max(raw, await run_raw(url, calls, concurrency))
                raw_cpu = min(raw_cpu, LAST_CPU[0])
                sdk = max(sdk, await run_sdk(url, calls, concurrency))
                sdk_cpu = min(sdk_cpu, LAST_CPU[0])
            rows.append(
                [
                    "sequential" if concurrency == 1 else f"{concurrency}-concurrent",
                    f"{raw:,.0f}",
                    f"{sdk:,.0f}",
                    f"{sdk / raw:.2f}x",
                    f"{raw_cpu * 1e6:.0f} / {sdk_cpu * 1e6:.0f}",
                    f"{raw_cpu / sdk_cpu:.2f}x",
                    ">= 0.90x",
                ]
            )
    finally:
        server.kill()
        server.join()
        if before is not None:
            os.sched_setaffinity(0, before)
    return table(
        f"Per-call overhead ({calls} calls x {rounds} rounds, server in its own process"
        f"{', client and server each pinned to its own CPU' if pinned else ''}, {machine()})",
        [
            "mode",
            "raw aiohttp req/s",
            "NemoClient.credits() req/s",
            "rate ratio",
            "client CPU us/call (raw / SDK)",
            "CPU ratio",
            "target",
        ],
        rows,
    )


if __name__ == "__main__":
    print(asyncio.run(main()))
