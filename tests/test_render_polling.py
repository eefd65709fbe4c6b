"""How often wait() polls: soon at first, backing off to 30 s, or as the server says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from nemo_sync import NemoClient
from tests.scripted import ScriptedServer

POLL = ("GET", "/api/render/proxy/lambda/r1")


def poll(status: str, headers: dict[str, str] | None = None) -> Any:
    return lambda: web.json_response({"status": status}, headers=headers)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between polls, recorded instead of slept."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float, *args: Any) -> Any:
        if seconds >= 0.5:  # the poll waits; aiohttp's own tiny sleeps pass through
            recorded.append(seconds)
            return await real_sleep(0)
        return await real_sleep(seconds, *args)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


async def test_polls_come_soon_then_back_off_to_the_services_30_s(
    api: ScriptedServer, slept: list[float]
) -> None:
    api.reply(*POLL, *[poll("processing")] * 8, poll("completed"))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.render_job("r1").wait()
    assert result.ok
    assert slept == [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


async def test_a_retry_after_on_a_poll_is_obeyed(api: ScriptedServer, slept: list[float]) -> None:
    api.reply(
        *POLL,
        poll("processing", {"Retry-After": "7"}),
        poll("processing", {"Retry-After": "600"}),  # capped
        poll("completed"),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.render_job("r1").wait()
    assert slept == [7.0, 60.0]


async def test_a_fixed_cadence_when_asked(api: ScriptedServer, slept: list[float]) -> None:
    api.reply(*POLL, poll("pending"), poll("processing", {"Retry-After": "9"}), poll("completed"))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.render_job("r1").wait(poll_interval=4.0)
    assert slept == [4.0, 4.0]
