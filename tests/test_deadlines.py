"""Deadlines that mean what they say, against servers that hang (issue 14, rows 6, 7 and 18)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from tests.scripted import ScriptedServer, envelope

SID = "s-1"
STATE = ("GET", f"/api/state/nemo_agent/me/{SID}/latest")
DRAFT = {"t": [{"tt": 0, "sg": [{"n": "c", "st": 0, "d": 1000}]}]}


def hang(seconds: float = 60.0) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=204)

    return handler


async def test_wait_returns_on_time_when_a_poll_hangs(api: ScriptedServer) -> None:
    """Row 7: wait(timeout=2) on a hanging poll took 9.8 s."""
    api.on("GET", "/api/render/proxy/lambda/r1", hang())
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.RenderTimeoutError, match=r"render_job\('r1'\)\.wait\(\)"):
            await nemo.render_job("r1").wait(timeout=0.5)
    assert loop.time() - started < 2.0


async def test_a_chat_stream_whose_headers_never_come_times_out(api: ScriptedServer) -> None:
    """Row 6: /run_sse read the request and never answered; chat(timeout=5) still waited."""
    api.on("POST", "/run_sse", hang())
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with NemoClient(base_url=api.url, token="t") as nemo:
        turn = nemo.session(SID).chat("sync", timeout=0.5, track_changes=False)
        with pytest.raises(nemo_sync.APITimeoutError, match="did not start within"):
            async with turn:
                pass
    assert loop.time() - started < 2.0
    assert api.count("POST", "/run_sse") == 1


async def test_a_cancelled_export_stays_resumable(api: ScriptedServer) -> None:
    """Row 18: an export cancelled after the POST went out was stored as failed."""
    api.reply(*STATE, lambda: envelope({"state": {"draft": DRAFT}}))
    api.on("POST", "/api/render/proxy/lambda", hang())
    async with NemoClient(base_url=api.url, token="t") as nemo:
        task = asyncio.create_task(nemo.session(SID).export())
        while api.count("POST", "/api/render/proxy/lambda") == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        pending = await nemo.jobs(include_finished=False)
    assert [r.status for r in pending] == ["submitted"]
    assert pending[0].session_id == SID


async def test_a_refused_export_is_stored_as_failed(api: ScriptedServer) -> None:
    api.reply(*STATE, lambda: envelope({"state": {"draft": DRAFT}}))
    api.reply(
        "POST",
        "/api/render/proxy/lambda",
        lambda: web.json_response({"detail": "bad draft"}, status=422),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIError, match="bad draft"):
            await nemo.session(SID).export()
        assert await nemo.jobs(include_finished=False) == []
        assert [r.status for r in await nemo.jobs()] == ["failed"]


async def test_the_timeout_bounds_the_whole_call_not_each_attempt(api: ScriptedServer) -> None:
    """Row 7: timeout=3 on a hanging GET took 10.3 s (three attempts of 3 s and backoff)."""
    api.on("GET", "/api/credits/balance/simple", hang())
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with NemoClient(base_url=api.url, token="t", timeout=0.6) as nemo:
        with pytest.raises(nemo_sync.APITimeoutError):
            await nemo.credits()
    assert loop.time() - started < 1.5


async def test_a_retry_that_cannot_start_in_time_is_not_made(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.reply(
        "GET",
        "/api/credits/balance/simple",
        lambda: web.json_response(
            {"code": 429, "message": "slow down"}, status=429, headers={"Retry-After": "30"}
        ),
    )
    async with NemoClient(base_url=api.url, token="t", timeout=10) as nemo:
        with pytest.raises(nemo_sync.RateLimitError):
            await nemo.credits()
    assert waits == []
    assert api.count("GET", "/api/credits/balance/simple") == 1


async def test_a_call_without_a_deadline_retries_as_its_budget_allows(api: ScriptedServer) -> None:
    """With no overall deadline (total=None) a call still retries, as often as its budget says."""
    path = "/api/credits/balance/simple"
    api.reply("GET", path, lambda: envelope(None, code=503, message="busy", status=503))
    no_deadline = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with NemoClient(base_url=api.url, token="t", max_retries=2) as nemo:
        with pytest.raises(nemo_sync.ServerError):
            await nemo._api.request("GET", path, timeout=no_deadline)
        assert api.count("GET", path) == 3
        api.clear("GET", path)
        api.reply(
            "GET",
            path,
            lambda: envelope(None, code=503, message="busy", status=503),
            lambda: envelope({"available": 1}),
        )
        assert await nemo._api.request("GET", path, timeout=no_deadline) == {"available": 1}
    assert api.count("GET", path) == 5
