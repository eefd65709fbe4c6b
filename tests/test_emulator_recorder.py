"""Emulator: the request log (redacted tokens, body sizes, hosts, statuses) and the fake clock."""

from __future__ import annotations

import time

import pytest

from nemo_sync.emulator import Emulator, FakeClock, RequestLog
from nemo_sync.emulator._recorder import RecordedRequest, redact_headers
from tests.emulator_raw import Raw

pytestmark = pytest.mark.nemo_emulator(max_recorded_requests=5)


async def test_requests_are_recorded_without_the_token(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    await raw.upload(session_id, "a.mp3", b"\x01" * 1000)
    login, create, upload = emu.requests[-3:]
    assert (login.method, login.path, login.status) == ("POST", "/api/auth/anonymous-token", 200)
    assert not login.has_token
    assert login.headers["x-client-id"] == "client-1"  # case-insensitive
    assert create.has_token
    assert create.headers["Authorization"] == "Bearer ***"
    assert raw.token is not None
    assert all(
        raw.token not in repr(r) and raw.token not in str(dict(r.headers)) for r in emu.requests
    )
    assert upload.body_size > 1000
    assert upload.host == f"127.0.0.1:{emu.port}"
    assert upload.headers["X-Skill-Source"] == "music-cog-online"


async def test_query_and_matching(raw: Raw, emu: Emulator) -> None:
    await raw.call("GET", "/api/credits/balance/simple?verbose=1")
    last = emu.requests[-1]
    assert last.query == {"verbose": "1"}
    assert emu.requests.matching("GET", "/api/credits/*") == [last]
    assert emu.requests.matching(path="/api/credits/balance/simple") == [last]
    assert emu.requests.matching("POST", "/api/credits/balance/simple") == []


async def test_the_log_keeps_the_latest_requests(raw: Raw, emu: Emulator) -> None:
    for _ in range(7):
        await raw.call("GET", "/api/credits/balance/simple")
    assert len(emu.requests) == 5
    assert [r.path for r in emu.requests] == ["/api/credits/balance/simple"] * 5
    assert len(emu.requests[1:3]) == 2
    emu.requests.clear()
    assert len(emu.requests) == 0


def test_redaction_and_repr() -> None:
    headers = redact_headers({"authorization": "Bearer secret", "X-A": "1"})
    assert headers["Authorization"] == "Bearer ***"
    record = RecordedRequest("GET", "/x", {}, headers, 0, "h", "req_1", 200)
    assert "secret" not in repr(record)
    assert repr(RequestLog()) == "RequestLog(0 requests)"


def test_fake_clock() -> None:
    clock = FakeClock()
    assert abs(clock.now() - time.time()) < 1
    clock.advance(days=1, hours=1, minutes=1, seconds=1)
    assert clock.offset == 86400 + 3600 + 61
    assert clock.datetime().tzinfo is not None
    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds=-1)
    clock.reset()
    assert clock.offset == 0
    assert "offset=0s" in repr(clock)
