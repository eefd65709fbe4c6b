"""NemoClient from the user's side: credits, sessions, settings, lifecycle."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import nemo_sync
from nemo_sync import NemoClient
from tests.scripted import ScriptedServer, credits_reply, envelope


async def test_credits_on_a_fresh_machine_gets_and_saves_an_anonymous_token(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.reply("GET", "/api/credits/balance/simple", lambda: credits_reply(100))

    async with NemoClient(base_url=api.url) as nemo:
        credits = await nemo.credits()

    assert credits == nemo_sync.Credits(available=100, frozen=0, total=100)
    token_call, credits_call = api.seen
    assert token_call.path == "/api/auth/anonymous-token"
    assert "Authorization" not in token_call.headers
    client_id = token_call.headers["X-Client-Id"]
    assert len(client_id) == 36  # a UUID
    assert credits_call.headers["Authorization"] == "Bearer tok-1"
    stored = tmp_path / "nemo-home" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    saved = json.loads(stored.read_text())
    assert saved["client_id"] == client_id
    assert saved["token"] == "tok-1"
    assert saved["expires_at"] > 0


async def test_every_request_carries_attribution_and_user_agent(api: ScriptedServer) -> None:
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url, platform="cursor") as nemo:
        await nemo.credits()
    for seen in api.seen:
        assert seen.headers["X-Skill-Source"] == "music-cog-online"
        assert seen.headers["X-Skill-Version"] == "1.0.0"
        assert seen.headers["X-Skill-Platform"] == "cursor"
        assert seen.headers["User-Agent"].startswith(f"nemo-sync/{nemo_sync.__version__} aiohttp/")
        assert " python/" in seen.headers["User-Agent"]


async def test_a_second_client_reuses_the_saved_token(api: ScriptedServer) -> None:
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert api.count("POST", "/api/auth/anonymous-token") == 1
    assert [s.headers.get("Authorization") for s in api.seen[1:]] == ["Bearer tok-1"] * 2


async def test_concurrent_first_calls_fetch_one_token(api: ScriptedServer) -> None:
    import asyncio

    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await asyncio.gather(*(nemo.credits() for _ in range(20)))
    assert api.count("POST", "/api/auth/anonymous-token") == 1


async def test_a_token_near_expiry_is_refreshed_before_use(
    api: ScriptedServer, tmp_path: Path
) -> None:
    import time

    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_text(
        json.dumps({"client_id": "cid-1", "token": "old", "expires_at": time.time() + 60})
    )
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    token_call, credits_call = api.seen
    assert token_call.headers["X-Client-Id"] == "cid-1"  # same identity, new token
    assert credits_call.headers["Authorization"] == "Bearer tok-1"


async def test_an_early_refresh_that_is_rate_limited_keeps_the_valid_token(
    api: ScriptedServer, tmp_path: Path
) -> None:
    import time

    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_text(
        json.dumps({"client_id": "cid-1", "token": "still-good", "expires_at": time.time() + 60})
    )
    api.clear("POST", "/api/auth/anonymous-token")
    api.reply(
        "POST",
        "/api/auth/anonymous-token",
        lambda: envelope(
            None, code=429, message="one token per 7 days", status=429, headers={"Retry-After": "1"}
        ),
    )
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert api.seen[-1].headers["Authorization"] == "Bearer still-good"


async def test_a_given_token_is_used_as_is(api: ScriptedServer) -> None:
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url, token="user-token") as nemo:
        await nemo.credits()
    assert [s.path for s in api.seen] == ["/api/credits/balance/simple"]
    assert api.seen[0].headers["Authorization"] == "Bearer user-token"


async def test_environment_settings_apply_and_arguments_win(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    monkeypatch.setenv("NEMO_BASE_URL", api.url)
    monkeypatch.setenv("NEMO_TOKEN", "env-token")
    async with NemoClient() as nemo:
        await nemo.credits()
    async with NemoClient(token="arg-token") as nemo:
        await nemo.credits()
    assert [s.headers["Authorization"] for s in api.seen] == [
        "Bearer env-token",
        "Bearer arg-token",
    ]
    with pytest.raises(nemo_sync.ConfigurationError, match="base_url"):
        NemoClient(base_url="ftp://example.com")


async def test_create_session_returns_its_id(api: ScriptedServer) -> None:
    api.reply(
        "POST",
        "/api/tasks/me/with-session/nemo_agent",
        lambda: envelope({"session_id": "s-1"}),
        lambda: envelope({"sessionId": "s-2", "bind_url": "https://x/?bind=abc"}),
        lambda: envelope({"id": 33}),
    )
    async with NemoClient(base_url=api.url) as nemo:
        first = await nemo.create_session()
        second = await nemo.create_session(language="zh")
        third = await nemo.create_session()
        attached = nemo.session("s-1")
    assert (first.id, second.id, third.id) == ("s-1", "s-2", "33")
    assert second.bind_url == "https://x/?bind=abc"
    assert attached == first
    bodies = [json.loads(s.body) for s in api.seen if s.path.endswith("nemo_agent")]
    assert bodies[0] == {"task_name": "project", "language": "en"}
    assert bodies[1]["language"] == "zh"
    assert api.count("POST", "/api/tasks/me/with-session/nemo_agent") == 3  # session() sent none


async def test_a_reply_without_a_session_id_names_the_endpoint(api: ScriptedServer) -> None:
    api.reply("POST", "/api/tasks/me/with-session/nemo_agent", lambda: envelope({"task": 1}))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.APIResponseError) as caught:
            await nemo.create_session()
    assert "POST /api/tasks/me/with-session/nemo_agent" in str(caught.value)
    assert "session_id" in str(caught.value)


async def test_credits_with_a_wrong_type_is_a_typed_error(api: ScriptedServer) -> None:
    api.reply("GET", "/api/credits/balance/simple", lambda: envelope({"available": "lots"}))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.APIResponseError, match=r"data\.available"):
            await nemo.credits()


async def test_a_closed_client_fails_loudly(api: ScriptedServer) -> None:
    nemo = NemoClient(base_url=api.url)
    await nemo.aclose()
    assert nemo.is_closed
    with pytest.raises(nemo_sync.ClientClosedError, match="closed"):
        await nemo.credits()
    with pytest.raises(nemo_sync.ClientClosedError):
        nemo.session("s-1")


def test_repr_and_errors_never_show_the_token() -> None:
    nemo = NemoClient(token="secret-token-value", home=os.devnull + "-unused")
    assert "secret-token-value" not in repr(nemo)
    assert "secret-token-value" not in repr(nemo._auth)
