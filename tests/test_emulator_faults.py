"""Emulator: injected faults (forced errors, Retry-After, latency, dropped connections)."""

from __future__ import annotations

import time

import aiohttp
import pytest

from nemo_sync.emulator import Emulator, FaultSet
from tests.emulator_raw import Raw, raw_client

CREDITS = "/api/credits/balance/simple"


@pytest.mark.parametrize(
    ("route", "method", "path", "hit"),
    [
        ("GET /api/credits/balance/simple", "GET", CREDITS, True),
        ("GET /api/credits/balance/simple", "POST", CREDITS, False),
        ("/api/credits/balance/simple", "POST", CREDITS, True),
        ("* /api/credits/balance/simple", "GET", CREDITS, True),
        (
            "GET /api/state/nemo_agent/me/{sid}/latest",
            "GET",
            "/api/state/nemo_agent/me/x/latest",
            True,
        ),
        (
            "GET /api/state/nemo_agent/me/{sid}/latest",
            "GET",
            "/api/state/nemo_agent/me/x/y/latest",
            False,
        ),
        ("POST /api/upload-video/*", "POST", "/api/upload-video/nemo_agent/me/abc", True),
        ("POST /api/upload-video/*", "POST", "/api/upload", False),
        ("GET /api/credits", "GET", CREDITS, False),
        ("get /downloads/{name}", "GET", "/downloads/r.mp4", True),
    ],
)
def test_route_patterns(route: str, method: str, path: str, hit: bool) -> None:
    faults = FaultSet()
    faults.add(route, status=500)
    assert (faults.take(method, path) is not None) is hit


def test_times_and_removal() -> None:
    faults = FaultSet()
    twice = faults.add("GET /a", status=500, times=2)
    always = faults.add("GET /b", status=500, times=None)
    assert faults.take("GET", "/a") is twice
    assert twice.remaining == 1
    assert faults.take("GET", "/a") is twice
    assert faults.take("GET", "/a") is None
    assert twice.hits == 2
    for _ in range(5):
        assert faults.take("GET", "/b") is always
    faults.remove(always)
    faults.remove(always)  # already gone: fine
    assert faults.take("GET", "/b") is None
    assert len(faults) == 0


def test_first_added_wins() -> None:
    faults = FaultSet()
    first = faults.add("GET /a", status=500)
    faults.add("GET /*", status=503)
    assert faults.take("GET", "/a") is first


@pytest.mark.parametrize(
    ("route", "options", "message"),
    [
        ("FETCH /a", {"status": 500}, "route should look like"),
        ("GET", {"status": 500}, "must start with"),
        ("GET api/x", {"status": 500}, "must start with '/'"),
        ("GET /a", {}, "needs an effect"),
        ("GET /a", {"status": 500, "times": 0}, "times"),
        ("GET /a", {"status": 99}, "HTTP status"),
        ("GET /a", {"latency": -1}, "latency"),
        ("POST /run_sse", {"sse_cut_after": -1}, "sse_cut_after"),
    ],
)
def test_bad_faults_are_refused(route: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSet().add(route, **options)  # type: ignore[arg-type]


async def test_forced_status_with_retry_after_once(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", status=429, retry_after=1, times=1)
    limited = await raw.call("GET", CREDITS)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.code == 429
    assert limited.message == "too many requests"
    assert (await raw.call("GET", CREDITS)).status == 200


async def test_retry_after_alone_means_429(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", retry_after=2.5)
    limited = await raw.call("GET", CREDITS)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "2.5"


async def test_forced_codes_use_their_usual_status(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    state_route = "GET /api/state/nemo_agent/me/{session_id}/latest"
    expected = {1001: 401, 1002: 404, 2001: 200, 4001: 400, 4002: 413}
    for code, status in expected.items():
        emu.faults.add(state_route, code=code)
        reply = await raw.state(session_id)
        assert (reply.status, reply.code) == (status, code)
        assert reply.message
    emu.faults.add(state_route, code=1001, status=200, message="custom words")
    both = await raw.state(session_id)
    assert (both.status, both.code, both.message) == (200, 1001, "custom words")


async def test_forced_2001_carries_the_registration_link(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", code=2001)
    reply = await raw.call("GET", CREDITS)
    assert reply.data == {"user_id": emu.account(raw.token or "").id}
    async with Emulator(reply_style="skill") as skill, raw_client(skill) as raw_skill:
        await raw_skill.login()
        skill.faults.add(f"GET {CREDITS}", code=2001)
        reply = await raw_skill.call("GET", CREDITS)
        user_id = skill.account(raw_skill.token or "").id
        assert reply.data == {
            "user_id": user_id,
            "bind_url": f"{skill.url}/register?bind={user_id}",
        }


async def test_forced_errors_apply_before_auth(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", status=503)
    reply = await raw.call("GET", CREDITS, auth=False)
    assert reply.status == 503


async def test_latency(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", latency=0.05)
    started = time.monotonic()
    reply = await raw.call("GET", CREDITS)
    assert reply.status == 200
    assert time.monotonic() - started >= 0.05


async def test_latency_beyond_a_client_timeout(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", latency=0.2)
    with pytest.raises(TimeoutError):
        await raw.http.get(
            emu.url + CREDITS, headers=raw.headers(), timeout=aiohttp.ClientTimeout(total=0.02)
        )


async def test_drop_sends_half_a_reply_and_keeps_the_effect(raw: Raw, emu: Emulator) -> None:
    emu.faults.add("POST /api/tasks/me/with-session/nemo_agent", drop=True)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with raw.http.post(
            emu.url + "/api/tasks/me/with-session/nemo_agent", json={}, headers=raw.headers()
        ) as resp:
            assert resp.status == 200
            await resp.read()
    assert len(emu.sessions) == 1  # the session was made; only the reply was lost
    assert emu.requests[-1].status == 200


async def test_reset_clears_faults(raw: Raw, emu: Emulator) -> None:
    emu.faults.add(f"GET {CREDITS}", status=500, times=None)
    emu.reset()
    await raw.login()
    assert (await raw.call("GET", CREDITS)).status == 200
