"""SSE decoding throughput: nemo-sync's decoder vs aiohttp-sse-client vs httpx-sse.

Targets: >= 2x aiohttp-sse-client events/s and >= httpx-sse events/s, for both workloads:

- ``small``: 100,000 ADK-shaped events of ~110 bytes each (a streamed reply, chunk by chunk);
- ``large``: 20 events of ~1 MB each (a tool result carrying a whole draft).

Each client reads the same fixed body from the same local aiohttp server (127.0.0.1) and
counts events and data characters, so a decoder that drops or merges events fails loudly
instead of looking fast. Nothing is JSON-decoded: this measures the SSE layer only.

- ``reads only``: ``resp.content.iter_any()`` with no decoding at all: the ceiling for any
  decoder on aiohttp, shown so the ratios can be read against it.
- ``nemo-sync``: ``aiter_sse(resp.content.iter_any())``.
- ``aiohttp-sse-client``: ``EventSource``; it reconnects (re-sends the request) when a stream
  ends, so we stop after the expected count. Its line reader refuses lines longer than twice
  the session's ``read_bufsize``, so both aiohttp readers get a 4 MB one (with the default,
  it cannot read 1 MB events at all).
- ``httpx-sse``: ``aconnect_sse(...).aiter_sse()`` on an ``httpx.AsyncClient``.

Rounds are interleaved and the best of each is kept, so a noisy neighbour hurts all alike.

    python benchmarks/bench_sse.py            # the full sizes, best of 3
    python benchmarks/bench_sse.py --quick    # 20,000 small and 5 large events, best of 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
from aiohttp import web
from aiohttp_sse_client import client as sse_client
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, serve, table

from nemo_sync._sse import ServerSentEvent, aiter_sse

MB = 1024 * 1024


class Workload:
    """A fixed event-stream body and what a correct decoder must find in it."""

    def __init__(self, name: str, label: str, datas: list[str]) -> None:
        self.name = name
        self.label = label
        self.count = len(datas)
        self.chars = sum(len(d) for d in datas)
        self.body = "".join(f"data: {d}\n\n" for d in datas).encode()


def small(count: int) -> Workload:
    datas = [
        json.dumps(
            {
                "author": "nemo_agent",
                "partial": True,
                "content": {"role": "model", "parts": [{"text": f"beat {i:06d} "}]},
            },
            separators=(",", ":"),
        )
        for i in range(count)
    ]
    return Workload("small", f"{count:,} small events", datas)


def large(count: int) -> Workload:
    # A tool result carrying a whole draft: mostly ASCII JSON, with some Chinese names, so
    # multi-byte characters get cut across read chunks.
    segments: list[dict[str, object]] = []
    size = 0
    while size < MB:
        i = len(segments)
        name = "城市延时 timelapse" if i % 10 == 0 else "city timelapse"
        segment = {"id": f"seg_{i}", "mid": "med_a", "n": name, "st": i * 500, "d": 500}
        segments.append(segment)
        size += len(json.dumps(segment, ensure_ascii=False, separators=(",", ":")).encode())
    event = {
        "author": "nemo_agent",
        "content": {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "adk-1",
                        "name": "get_draft",
                        "response": {"t": [{"id": "trk_v", "tt": 0, "sg": segments}]},
                    }
                }
            ],
        },
    }
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    mb = len(data.encode()) / MB
    return Workload("large", f"{count} events of {mb:.1f} MB", [data] * count)


Reader = Callable[[str, Workload], Awaitable[tuple[int, int]]]


async def read_floor(url: str, work: Workload) -> tuple[int, int]:
    """Only the reads, no decoding: the ceiling any aiohttp-based decoder can reach."""
    size = 0
    async with aiohttp.ClientSession(read_bufsize=4 * MB) as http, http.get(url) as resp:
        async for chunk in resp.content.iter_any():
            size += len(chunk)
    assert size == len(work.body)
    return work.count, work.chars


async def read_nemo(url: str, _work: Workload) -> tuple[int, int]:
    count = chars = 0
    async with aiohttp.ClientSession(read_bufsize=4 * MB) as http, http.get(url) as resp:
        async for item in aiter_sse(resp.content.iter_any()):
            if isinstance(item, ServerSentEvent):
                count += 1
                chars += len(item.data)
    return count, chars


async def read_aiohttp_sse_client(url: str, work: Workload) -> tuple[int, int]:
    count = chars = 0
    async with (
        aiohttp.ClientSession(read_bufsize=4 * MB) as http,
        sse_client.EventSource(url, session=http) as source,
    ):
        async for event in source:
            count += 1
            chars += len(event.data)
            if count == work.count:
                break  # or it reconnects and reads the stream again
    return count, chars


async def read_httpx_sse(url: str, _work: Workload) -> tuple[int, int]:
    count = chars = 0
    async with (
        httpx.AsyncClient(timeout=None) as http,
        aconnect_sse(http, "GET", url) as source,
    ):
        async for event in source.aiter_sse():
            count += 1
            chars += len(event.data)
    return count, chars


READERS: dict[str, Reader] = {
    "reads only": read_floor,
    "nemo-sync": read_nemo,
    "aiohttp-sse-client": read_aiohttp_sse_client,
    "httpx-sse": read_httpx_sse,
}


async def measure(reader: Reader, url: str, work: Workload) -> float:
    """Events per second for one full read of the body; checks what was decoded."""
    started = time.perf_counter()
    count, chars = await reader(url, work)
    took = time.perf_counter() - started
    if (count, chars) != (work.count, work.chars):
        raise AssertionError(
            f"{reader.__name__}: {count} events / {chars} chars, "
            f"expected {work.count} / {work.chars}"
        )
    return count / took


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--rounds", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args(argv)
    rounds = args.rounds
    works = [small(20_000 if args.quick else 100_000), large(5 if args.quick else 20)]

    app = web.Application()
    for work in works:

        async def handler(_request: web.Request, body: bytes = work.body) -> web.Response:
            return web.Response(body=body, content_type="text/event-stream")

        app.router.add_get(f"/{work.name}", handler)
    runner, base = await serve(app)
    rows = []
    try:
        for work in works:
            best = dict.fromkeys(READERS, 0.0)
            for _ in range(rounds):
                for name, reader in READERS.items():
                    rate = await measure(reader, f"{base}/{work.name}", work)
                    best[name] = max(best[name], rate)
            ours = best["nemo-sync"]
            rows.append(
                [
                    work.label,
                    *(f"{rate:,.0f}" for rate in best.values()),
                    f"{ours / best['aiohttp-sse-client']:.2f}x (>= 2x)",
                    f"{ours / best['httpx-sse']:.2f}x (>= 1x)",
                ]
            )
    finally:
        await runner.cleanup()
    return table(
        f"SSE decoding, events/s, best of {rounds} ({machine()})",
        [
            "workload",
            *(f"{name} ev/s" for name in READERS),
            "vs aiohttp-sse-client",
            "vs httpx-sse",
        ],
        rows,
    )


if __name__ == "__main__":
    print(asyncio.run(main()))
