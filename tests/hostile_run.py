"""Run one hostile-server scenario in this process and print what happened, as JSON.

Run as ``python -m tests.hostile_run NAME`` (tests/test_hostile.py does): each scenario gets
a fresh process, so the peak resident memory it reports (``VmHWM`` growth, read from
``/proc/self/status``) is the SDK's alone. The hostile server runs in the same event loop and
generates its bytes as it sends them, so it holds no more than a chunk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nemo_sync import NemoClient
from nemo_sync.testing import disable_waits

MB = 1024 * 1024
SID = "s-1"
Scenario = Callable[[web.Application], Callable[[NemoClient], Awaitable[Any]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def _state(_request: web.Request) -> web.Response:
    return web.json_response({"code": 0, "data": {"state": {"draft": {"t": []}}}})


def _stream_handler(head: bytes, body: Callable[[int], bytes], total: int) -> Any:
    """An event stream: ``head``, then ``total`` bytes made by ``body(i)`` a chunk at a time."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(head)
            sent, i = 0, 0
            while sent < total:
                chunk = body(i)
                await response.write(chunk)
                sent += len(chunk)
                i += 1
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: that is the point
        return response

    return handler


def _chat(app: web.Application, handler: Any) -> Callable[[NemoClient], Awaitable[Any]]:
    app.router.add_get(f"/api/state/nemo_agent/me/{SID}/latest", _state)
    app.router.add_post("/run_sse", handler)

    async def call(nemo: NemoClient) -> Any:
        result = await nemo.session(SID).send("sync", recover=False)
        return {"text_chars": len(result.text), "events": len(result.events)}

    return call


@scenario
def sse_line_without_end(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 1: ``data: `` and 1 GB with no newline."""
    block = b"x" * MB
    return _chat(app, _stream_handler(b"data: ", lambda _i: block, 1024 * MB))


@scenario
def sse_data_never_dispatched(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 2: 512 MB of data lines and no blank line to dispatch them."""
    block = (b"data: " + b"y" * 1000 + b"\n") * 1000
    return _chat(app, _stream_handler(b"", lambda _i: block, 512 * MB))


@scenario
def sse_many_heartbeats(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 4: 256 MB of small events (as measured: 280k of them), heartbeats and unknown ones."""
    event = b": ping\n\n" + b'data: {"x": "' + b"k" * 900 + b'"}\n\n'
    return _chat(app, _stream_handler(b"", lambda _i: event * 1000, 256 * MB))


@scenario
def sse_endless_partial_text(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 4, text: 256 MB of small partial text chunks."""
    event = b'data: {"content": {"parts": [{"text": "' + b"z" * 200 + b'"}]}, "partial": true}\n\n'
    block = event * 2000
    return _chat(app, _stream_handler(b"", lambda _i: block, 256 * MB))


def _json_flood(total: int, status: int = 200, content_type: str = "application/json") -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            await response.write(b'{"code": 0, "data": {"available": 1, "pad": "')
            block = b"p" * MB
            for _ in range(total // MB):
                await response.write(block)
            await response.write(b'"}}')
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return response

    return handler


@scenario
def credits_huge_json(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 3: ``credits()`` answered with a 500 MB JSON body (chunked: no length given)."""
    app.router.add_get("/api/credits/balance/simple", _json_flood(500 * MB))
    return lambda nemo: nemo.credits()


@scenario
def poll_huge_json(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 3: a render poll answered with a 500 MB JSON body."""
    app.router.add_get("/api/render/proxy/lambda/r1", _json_flood(500 * MB))
    return lambda nemo: nemo.render_job("r1").status()


@scenario
def bad_gateway_huge_page(app: web.Application) -> Callable[[NemoClient], Awaitable[Any]]:
    """Row 5: 502 with a 50 MB HTML body (a GET: retried, as transient faults are)."""
    app.router.add_get("/api/credits/balance/simple", _json_flood(50 * MB, 502, "text/html"))
    return lambda nemo: nemo.credits()


async def run(name: str) -> dict[str, Any]:
    app = web.Application()
    call = SCENARIOS[name](app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    outcome: dict[str, Any] = {}
    try:
        async with NemoClient(base_url=f"http://127.0.0.1:{port}", token="t") as nemo:
            before = peak_rss_mb()
            started = time.perf_counter()
            with disable_waits():
                try:
                    outcome["value"] = repr(await call(nemo))[:200]
                    outcome["error"] = None
                except Exception as exc:
                    outcome["error"] = type(exc).__name__
                    outcome["message"] = str(exc)[:500]
            outcome["seconds"] = time.perf_counter() - started
            outcome["rss_growth_mb"] = peak_rss_mb() - before
    finally:
        await runner.cleanup()
    return outcome


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1]))))
