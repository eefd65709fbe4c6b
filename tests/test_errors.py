"""Every row of the contract's error table, over real sockets: typed error or transparent retry."""

from __future__ import annotations

import pytest

import nemo_sync
from nemo_sync import NemoClient
from tests.scripted import ScriptedServer, credits_reply, envelope, raw

CREDITS = ("GET", "/api/credits/balance/simple")
SESSION = ("POST", "/api/tasks/me/with-session/nemo_agent")
TOKEN = ("POST", "/api/auth/anonymous-token")


@pytest.mark.parametrize(
    ("code", "status", "error", "words"),
    [
        (1002, 404, nemo_sync.SessionNotFoundError, "create_session"),
        (2001, 200, nemo_sync.InsufficientCreditsError, "credits"),
        (4001, 400, nemo_sync.UnsupportedFileError, "mp4, mov, avi"),
        (4002, 413, nemo_sync.FileTooLargeError, "Compress it or trim it"),
    ],
)
async def test_codes_that_are_never_retried(
    api: ScriptedServer, code: int, status: int, error: type[nemo_sync.APIError], words: str
) -> None:
    api.reply(
        *SESSION,
        lambda: envelope(
            None, code=code, message="nope", status=status, headers={"X-Request-Id": "req-9"}
        ),
    )
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(error) as caught:
            await nemo.create_session()
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.request_id == "req-9"
    assert caught.value.endpoint == "POST /api/tasks/me/with-session/nemo_agent"
    assert words in str(caught.value)
    assert api.count(*SESSION) == 1


async def test_no_credits_carries_the_registration_url(api: ScriptedServer) -> None:
    api.reply(
        *CREDITS,
        lambda: envelope(
            {"bind_url": "https://nemo.example/r?bind=XYZ"},
            code=2001,
            message="insufficient credits",
        ),
    )
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    assert caught.value.bind_url == "https://nemo.example/r?bind=XYZ"
    assert "https://nemo.example/r?bind=XYZ" in str(caught.value)


async def test_bind_url_is_found_in_the_message_too(api: ScriptedServer) -> None:
    api.reply(
        *CREDITS,
        lambda: envelope(
            None, code=2001, message="no credits, register at https://n.example/?bind=Q1"
        ),
    )
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    assert caught.value.bind_url == "https://n.example/?bind=Q1"


async def test_402_means_the_plan_blocks_export(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=402, message="payment required", status=402))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(
            nemo_sync.ExportBlockedError, match="Register or upgrade your plan to unlock export"
        ):
            await nemo.credits()
    assert api.count(*CREDITS) == 1


async def test_429_waits_retry_after_and_retries_once(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.reply(
        *CREDITS, raw(429, b"slow down", "text/plain", headers={"Retry-After": "2"}), credits_reply
    )
    async with NemoClient(base_url=api.url) as nemo:
        assert (await nemo.credits()).available == 100
    assert waits == [2.0]
    assert api.count(*CREDITS) == 2


async def test_429_twice_raises_with_retry_after(api: ScriptedServer, waits: list[float]) -> None:
    api.reply(
        *CREDITS,
        lambda: envelope(
            None, code=429, message="rate", status=429, headers={"retry-after-ms": "1500"}
        ),
    )
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.RateLimitError) as caught:
            await nemo.credits()
    assert caught.value.retry_after == 1.5
    assert waits == [1.5]
    assert api.count(*CREDITS) == 2


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({}, 30.0),  # the contract's default
        ({"Retry-After": "60"}, 60.0),  # the cap; longer fails at once (test_retry.py)
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
    ],
)
async def test_429_wait_default_cap_and_date(
    api: ScriptedServer, waits: list[float], headers: dict[str, str], expected_wait: float
) -> None:
    api.reply(*CREDITS, raw(429, b"", "text/plain", headers=headers), credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert waits == [expected_wait]


async def test_1001_with_the_sdks_token_gets_a_new_one_and_replays_once(
    api: ScriptedServer,
) -> None:
    api.reply(
        *CREDITS,
        lambda: envelope(None, code=1001, message="token expired", status=401),
        credits_reply,
    )
    async with NemoClient(base_url=api.url) as nemo:
        assert (await nemo.credits()).total == 100
    auths = [s.headers.get("Authorization") for s in api.seen if s.path == CREDITS[1]]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]
    token_calls = [s for s in api.seen if s.path == TOKEN[1]]
    # Same client id: a new token for the same identity, not a new identity.
    assert token_calls[0].headers["X-Client-Id"] == token_calls[1].headers["X-Client-Id"]


async def test_1001_twice_raises(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="bad token", status=200))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.AuthenticationError):
            await nemo.credits()
    assert api.count(*CREDITS) == 2


async def test_1001_with_a_users_token_is_raised_not_swapped(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="expired", status=401))
    async with NemoClient(base_url=api.url, token="users-own") as nemo:
        with pytest.raises(nemo_sync.AuthenticationError, match="NEMO_TOKEN") as caught:
            await nemo.credits()
    assert "users-own" not in str(caught.value)
    assert api.count(*CREDITS) == 1
    assert api.count(*TOKEN) == 0


async def test_400_missing_client_id_makes_a_new_one_and_retries(api: ScriptedServer) -> None:
    api.clear(*TOKEN)
    api.reply(
        *TOKEN,
        lambda: envelope(None, code=400, message="missing X-Client-Id", status=400),
        lambda: envelope({"token": "tok-after-400"}),
    )
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, client_id="rejected-id") as nemo:
        await nemo.credits()
    first, second = (s for s in api.seen if s.path == TOKEN[1])
    assert first.headers["X-Client-Id"] == "rejected-id"
    assert second.headers["X-Client-Id"] not in ("", "rejected-id")
    assert api.seen[-1].headers["Authorization"] == "Bearer tok-after-400"


async def test_400_missing_client_id_twice_raises(api: ScriptedServer) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: envelope(None, message="missing X-Client-Id", status=400))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.MissingClientIdError):
            await nemo.credits()
    assert api.count(*TOKEN) == 2


async def test_an_html_502_on_get_is_retried_with_backoff(
    api: ScriptedServer, waits: list[float]
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    api.reply(*CREDITS, raw(502, page), raw(502, page), credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert len(waits) == 2
    # Backoff with jitter: the n-th wait lies in [cap/2, cap] for caps 0.5 s, 1 s.
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0


async def test_an_html_502_past_the_retries_names_the_page(api: ScriptedServer) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head></html>"
    api.reply(*CREDITS, raw(502, page))
    async with NemoClient(base_url=api.url, max_retries=1) as nemo:
        with pytest.raises(nemo_sync.ServerError, match="502 Bad Gateway") as caught:
            await nemo.credits()
    assert caught.value.status == 502
    assert api.count(*CREDITS) == 2


async def test_a_5xx_on_post_is_not_retried(api: ScriptedServer) -> None:
    api.reply(*SESSION, raw(503, b""), lambda: envelope({"session_id": "s"}))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.ServerError):
            await nemo.create_session()
    assert api.count(*SESSION) == 1


async def test_a_refused_connection_is_retried_even_for_post(waits: list[float]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with NemoClient(base_url=f"http://127.0.0.1:{port}", token="t") as nemo:
        with pytest.raises(nemo_sync.APIConnectionError, match="could not connect") as caught:
            await nemo.create_session()
    assert caught.value.request_sent is False
    assert len(waits) == 2  # max_retries


async def test_a_connection_dropped_mid_reply_is_retried_on_get(api: ScriptedServer) -> None:
    from aiohttp import web

    async def drop(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"code": 0, "da')
        assert request.transport is not None
        request.transport.close()
        return response

    api.on(*CREDITS, drop)
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        assert (await nemo.credits()).available == 100
    assert api.count(*CREDITS) == 2


async def test_a_slow_reply_times_out_with_a_typed_error(api: ScriptedServer) -> None:
    import asyncio

    from aiohttp import web

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return credits_reply()

    api.on(*CREDITS, slow)
    async with NemoClient(base_url=api.url, timeout=0.2, max_retries=0) as nemo:
        with pytest.raises(nemo_sync.APITimeoutError, match="timed out"):
            await nemo.credits()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>maintenance</html>", "text/html"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
    ],
)
async def test_a_2xx_reply_that_breaks_the_contract(
    api: ScriptedServer, body: bytes, content_type: str
) -> None:
    api.reply(*CREDITS, raw(200, body, content_type))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.APIResponseError, match="GET /api/credits/balance/simple"):
            await nemo.credits()


async def test_an_unknown_error_code_is_an_api_error_with_the_message(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: envelope(None, code=7777, message="the moon is full"))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.APIError, match="the moon is full") as caught:
            await nemo.credits()
    assert type(caught.value) is nemo_sync.APIError
    assert caught.value.code == 7777
