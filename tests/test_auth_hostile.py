"""Auth against a hostile token endpoint: every case ends, with counted requests and waits.

Issue 14, row 12: a 429 `Retry-After: 60` on the token call made 4 token POSTs and 180 s of
waits; a hanging token POST was sent 3 times; 1001 forever made a new token on every call.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from tests.scripted import ScriptedServer, credits_reply, envelope, raw

CREDITS = ("GET", "/api/credits/balance/simple")
TOKEN = ("POST", "/api/auth/anonymous-token")
TOKEN_ENDPOINT = "POST /api/auth/anonymous-token"


def _rate_limited(retry_after: str | None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return envelope(None, code=429, message="one token per 7 days", status=429, headers=headers)


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("60", 60.0), (None, 30.0)],
    ids=["retry-after-60", "no-retry-after"],
)
async def test_a_rate_limited_token_call_waits_once_then_raises(
    api: ScriptedServer, waits: list[float], retry_after: str | None, expected_wait: float
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited(retry_after))
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.RateLimitError) as caught:
            await nemo.credits()
    # The token call is tried twice (the contract's "wait, retry once"); the call that needed
    # the token does not start the whole dance again.
    assert api.count(*TOKEN) == 2
    assert waits == [expected_wait]
    assert api.count(*CREDITS) == 0
    assert caught.value.endpoint == "POST /api/auth/anonymous-token"


async def test_a_token_call_rate_limited_past_the_cap_is_not_waited_for(
    api: ScriptedServer, waits: list[float]
) -> None:
    """Issue 24: Retry-After 604800 was cut to a silent 60 s wait, then the same 429."""
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited("604800"))
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.RateLimitError, match="in 7 days") as caught:
            await nemo.credits()
    assert (api.count(*TOKEN), api.count(*CREDITS), waits) == (1, 0, [])
    assert caught.value.endpoint == TOKEN_ENDPOINT


async def test_a_token_call_rate_limited_once_goes_on(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited("60"), lambda: envelope({"token": "tok-late"}))
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        assert (await nemo.credits()).total == 100
    assert (api.count(*TOKEN), api.count(*CREDITS), waits) == (2, 1, [60.0])
    assert api.seen[-1].headers["Authorization"] == "Bearer tok-late"


async def test_a_rate_limited_token_call_during_re_auth_is_not_repeated(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: envelope({"token": "tok-first"}), lambda: _rate_limited("60"))
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="expired", status=401))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.RateLimitError):
            await nemo.credits()
    # One token, one 1001 (re-auth at once: 0 s), then the replacement's call: 429, one
    # wait, 429, raised; the credits call is not replayed for the 429.
    assert (api.count(*TOKEN), api.count(*CREDITS), waits) == (3, 1, [0.0, 60.0])


@pytest.fixture
async def hanging_token(api: ScriptedServer) -> AsyncIterator[ScriptedServer]:
    """The token endpoint reads the request and never answers (until the test ends)."""
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return envelope({"token": "tok-too-late"})

    api.clear(*TOKEN)
    api.on(*TOKEN, hang)
    yield api
    release.set()


async def test_a_hanging_token_call_is_sent_once_and_times_out(
    hanging_token: ScriptedServer, waits: list[float]
) -> None:
    api = hanging_token
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, timeout=0.3) as nemo:
        with pytest.raises(nemo_sync.APITimeoutError) as caught:
            await nemo.credits()
    assert api.count(*TOKEN) == 1
    assert api.count(*CREDITS) == 0
    assert waits == []
    assert "anonymous-token" in str(caught.value)


async def test_a_fresh_token_rejected_again_stops_asking_for_tokens(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="bad token", status=401))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.AuthenticationError, match="freshly issued") as first:
            await nemo.credits()
        assert (api.count(*TOKEN), api.count(*CREDITS)) == (2, 2)
        assert first.value.status == 401
        assert first.value.code == 1001
        assert first.value.endpoint == "GET /api/credits/balance/simple"
        # Before: every later call invalidated the token and fetched another, forever.
        for _ in range(3):
            with pytest.raises(nemo_sync.AuthenticationError, match="freshly issued"):
                await nemo.credits()
    assert (api.count(*TOKEN), api.count(*CREDITS)) == (2, 2)


async def test_a_new_client_tries_again_after_a_refusal(api: ScriptedServer) -> None:
    api.reply(
        *CREDITS,
        lambda: envelope(None, code=1001, message="bad token", status=401),
        lambda: envelope(None, code=1001, message="bad token", status=401),
        credits_reply,
    )
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.AuthenticationError):
            await nemo.credits()
    async with NemoClient(base_url=api.url) as nemo:
        assert (await nemo.credits()).total == 100
    # The rejected token was not kept on disk: the new client asked for a third one.
    assert api.issued_tokens == ["tok-1", "tok-2", "tok-3"]
    assert api.seen[-1].headers["Authorization"] == "Bearer tok-3"


async def test_a_refused_stream_open_stops_too(api: ScriptedServer) -> None:
    api.reply("POST", "/run_sse", lambda: envelope(None, code=1001, message="bad", status=401))
    async with NemoClient(base_url=api.url) as nemo:
        transport = nemo._transport
        for _ in range(2):
            with pytest.raises(nemo_sync.AuthenticationError, match="freshly issued"):
                await transport.open_stream("POST", "/run_sse", json={}, timeout=transport.timeout)
    assert (api.count(*TOKEN), api.count("POST", "/run_sse")) == (2, 2)


async def test_an_auth_failure_traceback_with_locals_shows_no_token(api: ScriptedServer) -> None:
    api.clear(*TOKEN)
    api.reply(
        *TOKEN,
        lambda: envelope({"token": "nmv_usr_first-secret"}),
        lambda: envelope({"token": "nmv_usr_second-secret"}),
    )
    api.reply(*CREDITS, raw(401, b'{"code":1001,"message":"expired"}', "application/json"))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.AuthenticationError) as caught:
            await nemo.credits()
        assert "Bearer nmv_usr_second-secret" in api.seen[-1].headers["Authorization"]
        shown = "".join(
            traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
        )
    assert "transport" in shown.lower()  # the frames (and their locals) are really there
    assert "nmv_usr" not in shown
    assert "first-secret" not in shown
    assert "second-secret" not in shown


async def test_a_users_token_is_not_in_a_traceback_with_locals(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="expired", status=401))
    async with NemoClient(base_url=api.url, token="users-own-secret") as nemo:
        with pytest.raises(nemo_sync.AuthenticationError) as caught:
            await nemo.credits()
    shown = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert "users-own-secret" not in shown


async def test_a_timed_out_call_traceback_with_locals_shows_no_token(api: ScriptedServer) -> None:
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return credits_reply()

    api.on(*CREDITS, hang)
    try:
        async with NemoClient(
            base_url=api.url, token="users-own-secret", timeout=0.3, max_retries=0
        ) as nemo:
            with pytest.raises(nemo_sync.APITimeoutError) as caught:
                await nemo.credits()
    finally:
        release.set()
    shown = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    # aiohttp's own frames held the request headers in a plain dict; the cause stays named.
    assert "TimeoutError" in shown
    assert "users-own-secret" not in shown


async def test_calls_waiting_for_a_failing_token_call_share_its_failure(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited("60"))
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        results = await asyncio.gather(*(nemo.credits() for _ in range(5)), return_exceptions=True)
        limited = (r for r in results if isinstance(r, nemo_sync.RateLimitError))
        shared = [(r.endpoint, r.status) for r in limited]
        assert shared == [(TOKEN_ENDPOINT, 429)] * 5
        # Before: each waiting call ran the token call again in turn (10 requests, 5 waits).
        assert (api.count(*TOKEN), waits) == (2, [60.0])
        # A call made afterwards asks again: the failure is shared, not remembered.
        with pytest.raises(nemo_sync.RateLimitError):
            await nemo.credits()
    assert (api.count(*TOKEN), api.count(*CREDITS), waits) == (4, 0, [60.0, 60.0])
