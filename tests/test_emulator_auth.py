"""Emulator: anonymous tokens, user-given tokens, expiry on the fake clock, the 7-day limit."""

from __future__ import annotations

import pytest

from nemo_sync.emulator import Emulator
from tests.emulator_raw import Raw, raw_client


async def test_anonymous_token_has_100_credits_and_7_days(
    raw_anonymous: Raw, emu: Emulator
) -> None:
    reply = await raw_anonymous.call(
        "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": "c-1"}, auth=False
    )
    assert reply.status == 200
    assert reply.code == 0
    # [R]: {"token": "nmv_usr_...", "user_id": "anon_...", "expires_at", "credits": 100}
    assert set(reply.data) == {"token", "user_id", "expires_at", "credits"}
    assert reply.data["token"].startswith("nmv_usr_")
    assert reply.data["user_id"].startswith("anon_")
    assert reply.data["credits"] == 100
    assert reply.data["expires_at"].endswith("Z")
    assert emu.account("c-1").id == reply.data["user_id"]
    raw_anonymous.token = reply.data["token"]
    assert await raw_anonymous.credits() == {"available": 100, "frozen": 0, "total": 100}
    assert emu.account("c-1").client_id == "c-1"


async def test_the_skill_style_token_reply_also_says_when_it_expires() -> None:
    async with Emulator(reply_style="skill") as emu, raw_client(emu) as raw:
        reply = await raw.call(
            "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": "c-1"}, auth=False
        )
    assert reply.data["expires_in"] == 7 * 86400
    assert reply.data["token"].startswith("nmv_usr_")


async def test_missing_client_id_is_http_400(raw_anonymous: Raw) -> None:
    reply = await raw_anonymous.call("POST", "/api/auth/anonymous-token", auth=False)
    assert reply.status == 400
    assert reply.message == "missing X-Client-Id"
    blank = await raw_anonymous.call(
        "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": "  "}, auth=False
    )
    assert blank.status == 400


async def test_one_token_per_client_id_per_7_days(raw_anonymous: Raw, emu: Emulator) -> None:
    first = await raw_anonymous.login("c-1")
    again = await raw_anonymous.call(
        "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": "c-1"}, auth=False
    )
    assert again.status == 429
    retry_after = int(again.headers["Retry-After"])
    assert 7 * 86400 - 5 <= retry_after <= 7 * 86400
    # Another client id is not limited.
    other = await raw_anonymous.call(
        "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": "c-2"}, auth=False
    )
    assert other.status == 200
    emu.clock.advance(days=7)
    renewed = await raw_anonymous.login("c-1")
    assert renewed != first


async def test_unknown_and_missing_tokens_are_1001(raw_anonymous: Raw) -> None:
    raw_anonymous.token = "not-a-token"
    unknown = await raw_anonymous.call("GET", "/api/credits/balance/simple")
    assert (unknown.status, unknown.code) == (401, 1001)
    missing = await raw_anonymous.call("GET", "/api/credits/balance/simple", auth=False)
    assert (missing.status, missing.code) == (401, 1001)
    wrong_scheme = await raw_anonymous.call(
        "GET", "/api/credits/balance/simple", headers={"Authorization": "Basic abc"}, auth=False
    )
    assert wrong_scheme.code == 1001


async def test_tokens_expire_after_7_days_on_the_fake_clock(
    raw_anonymous: Raw, emu: Emulator
) -> None:
    await raw_anonymous.login()
    emu.clock.advance(days=6, hours=23)
    assert (await raw_anonymous.call("GET", "/api/credits/balance/simple")).status == 200
    emu.clock.advance(hours=1)
    expired = await raw_anonymous.call("GET", "/api/credits/balance/simple")
    assert (expired.status, expired.code) == (401, 1001)
    assert "expired" in expired.message


async def test_a_renewed_token_keeps_the_account_and_its_sessions(
    raw_anonymous: Raw, emu: Emulator
) -> None:
    await raw_anonymous.login("c-1")
    session_id = await raw_anonymous.new_session()
    emu.clock.advance(days=8)
    await raw_anonymous.login("c-1")
    assert (await raw_anonymous.state(session_id)).status == 200


async def test_user_given_tokens(raw_anonymous: Raw, emu: Emulator) -> None:
    account = emu.add_token("tok_user", credits=7, registered=True, expires_in=60)
    raw_anonymous.token = "tok_user"
    assert await raw_anonymous.credits() == {"available": 7, "frozen": 0, "total": 7}
    assert emu.account("tok_user") is account
    # A registered account gets no registration link.
    session = await raw_anonymous.call(
        "POST", "/api/tasks/me/with-session/nemo_agent", json_body={}
    )
    assert "bind_url" not in session.data
    emu.clock.advance(seconds=61)
    assert (await raw_anonymous.call("GET", "/api/credits/balance/simple")).code == 1001
    with pytest.raises(ValueError, match="already known"):
        emu.add_token("tok_user")


async def test_set_credits_by_token_or_client_id(raw_anonymous: Raw, emu: Emulator) -> None:
    token = await raw_anonymous.login("c-9")
    emu.set_credits("c-9", available=3)
    assert (await raw_anonymous.credits())["available"] == 3
    emu.set_credits(token, available=5, frozen=2)
    assert await raw_anonymous.credits() == {"available": 5, "frozen": 2, "total": 7}
    with pytest.raises(KeyError):
        emu.set_credits("nobody", available=1)


async def test_strict_attribution_refuses_calls_without_headers() -> None:
    async with Emulator(strict_attribution=True) as emu, raw_client(emu) as raw_anonymous:
        await raw_anonymous.login()
        ok = await raw_anonymous.call("GET", "/api/credits/balance/simple")
        assert ok.status == 200
        bare = await raw_anonymous.call(
            "GET",
            "/api/credits/balance/simple",
            raw_headers={"Authorization": f"Bearer {raw_anonymous.token}"},
        )
        assert bare.status == 400
        assert "X-Skill-Source" in bare.message
