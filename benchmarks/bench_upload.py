"""Upload throughput and peak memory: Session.upload() vs raw aiohttp vs reading into memory.

Three ways to send one file as multipart to the same local server, which drains and counts
the file part:

- ``raw aiohttp``: an open file in ``aiohttp.FormData`` (aiohttp streams it itself);
- ``read into memory``: ``open(...).read()`` first, then the bytes in ``FormData``;
- ``Session.upload()``: nemo-sync, checks included (stat, sniffing the first bytes).

Each client runs in its own process (so one's memory cannot skew another's RSS), the server in
this one. Peak RSS growth is sampled from /proc/self/statm every 5 ms during the upload.

    python benchmarks/bench_upload.py                 # 500 MB, 3 rounds
    python benchmarks/bench_upload.py --quick         # 20 MB
    python benchmarks/bench_upload.py --size-mb 200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, machine, serve, table

MB = 1024 * 1024
PATH = "/api/upload-video/nemo_agent/me/bench"
MODES = {
    "raw": "raw aiohttp (file in FormData)",
    "memory": "read into memory, then send",
    "sdk": "Session.upload()",
}


# -- the server (this process) -----------------------------------------------------------------


async def drain(request: web.Request) -> web.Response:
    """Read the multipart body, count the file part's bytes, answer a media object."""
    reader = await request.multipart()
    received = 0
    name = ""
    while (part := await reader.next()) is not None:
        assert isinstance(part, aiohttp.BodyPartReader)
        name = part.filename or name
        while chunk := await part.read_chunk(256 * 1024):
            received += len(chunk)
    data = {"media_id": "med_bench", "name": name, "size": received}
    return web.json_response({"code": 0, "message": "ok", "data": data})


def make_file(path: Path, size: int) -> None:
    """Random-looking content (a random MiB, each copy stamped with its index)."""
    block = os.urandom(MB)
    with path.open("wb") as f:
        f.write(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")  # an MP4's first box
        written = 24
        index = 0
        while written < size:
            chunk = (index.to_bytes(8, "big") + block[8:])[: size - written]
            f.write(chunk)
            written += len(chunk)
            index += 1


async def run_child(mode: str, url: str, path: Path) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        mode,
        "--url",
        url,
        "--file",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} client failed:\n{err.decode()[-2000:]}")
    result: dict[str, float] = json.loads(out)
    return result


# -- the clients (child processes) -------------------------------------------------------------


async def client(mode: str, url: str, path: Path) -> dict[str, float]:
    size = path.stat().st_size
    headers = {"Authorization": "Bearer t"}
    if mode == "sdk":
        from nemo_sync import NemoClient

        with tempfile.TemporaryDirectory() as home:
            async with NemoClient(base_url=url, token="t", home=home) as nemo:
                session = nemo.session("bench")
                async with PeakRSS(every=0.005) as rss:
                    started = time.perf_counter()
                    media = await session.upload(path)
                    took = time.perf_counter() - started
                received = media.size
    else:
        async with aiohttp.ClientSession() as http, PeakRSS(every=0.005) as rss:
            started = time.perf_counter()
            form = aiohttp.FormData()
            with path.open("rb") as f:
                value = f.read() if mode == "memory" else f
                form.add_field("file", value, filename=path.name, content_type="video/mp4")
                async with http.post(url + PATH, data=form, headers=headers) as resp:
                    received = (await resp.json())["data"]["size"]
            took = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"{mode}: the server got {received} bytes of {size}")
    return {"seconds": took, "rss_growth": rss.growth}


# -- main ----------------------------------------------------------------------------------------


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 MB instead of 500 MB")
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return json.dumps(await client(args.child, args.url, args.file))

    size = (20 if args.quick else args.size_mb) * MB
    rounds = 1 if args.quick else args.rounds
    app = web.Application(client_max_size=size * 2)
    app.router.add_post(PATH, drain)
    runner, url = await serve(app)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.mp4"
            make_file(path, size)
            for _ in range(rounds):
                # Interleaved, so a noisy neighbour hurts every mode alike.
                for mode in MODES:
                    results[mode].append(await run_child(mode, url, path))
    finally:
        await runner.cleanup()

    def speed(mode: str) -> float:  # MB/s, median of the rounds
        return statistics.median(size / MB / r["seconds"] for r in results[mode])

    rows = [
        [
            label,
            f"{speed(mode):,.0f}",
            f"{speed(mode) / speed('raw'):.2f}x",
            f"{max(r['rss_growth'] for r in results[mode]) / MB:,.1f}",
        ]
        for mode, label in MODES.items()
    ]
    return table(
        f"Upload of {size // MB} MB to a local server ({rounds} round(s), median speed, "
        f"worst memory; {machine()})",
        ["client", "MB/s", "vs raw aiohttp", "peak RSS growth (MB)"],
        rows,
    )


if __name__ == "__main__":
    print(asyncio.run(main()))
