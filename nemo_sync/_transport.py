"""The one path every request takes: headers, auth, timeouts, envelope, errors, retries, logs."""

from __future__ import annotations

import asyncio
import logging
import platform as _platform
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never
from yarl import URL

from nemo_sync._auth import Auth
from nemo_sync._contract import SKILL_SOURCE, SKILL_VERSION
from nemo_sync._envelope import parse_reply
from nemo_sync._retry import RetryBudget, sleep
from nemo_sync._version import __version__
from nemo_sync.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    NemoError,
    ResponseTooLargeError,
)

logger = logging.getLogger("nemo_sync")

USER_AGENT = (
    f"nemo-sync/{__version__} aiohttp/{aiohttp.__version__} python/{_platform.python_version()}"
)

# Builds a fresh request body for each attempt (a retried upload reopens its file).
BodyFactory = Callable[[], Any]

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest JSON reply read (settable: ``NemoClient(max_response_bytes=...)``)."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error reply is read: enough for any message, never a 50 MB error page."""


async def read_capped(
    resp: aiohttp.ClientResponse, limit: int, endpoint: str, *, truncate: bool = False
) -> bytes:
    """The body, read up to ``limit`` bytes (decompressed); never the rest.

    Raises:
        ResponseTooLargeError: when the body is larger (unless ``truncate``, which returns the
            first ``limit`` bytes instead: for error pages, whose start is all that matters).
    """
    declared = resp.content_length
    if declared is not None and declared > limit and not truncate:
        raise _too_large(endpoint, limit, f"it announces {declared} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            if truncate:
                parts.append(chunk[: len(chunk) - (size - limit)])
                break
            raise _too_large(endpoint, limit, f"{size} bytes so far")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(endpoint: str, limit: int, how: str) -> ResponseTooLargeError:
    cap = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return ResponseTooLargeError(
        f"the reply is over the {cap} cap ({how}); nothing more was read. Raise "
        "NemoClient(max_response_bytes=...) if a reply this large is expected.",
        endpoint=endpoint,
        limit=limit,
    )


def _connection_error(exc: BaseException, endpoint: str) -> APIConnectionError:
    """Our error for an aiohttp/asyncio failure; ``request_sent`` says if it may have arrived."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return APITimeoutError(
            f"{endpoint} timed out. The service may be slow; try again, or raise the timeout.",
            endpoint=endpoint,
        )
    sent = not isinstance(exc, aiohttp.ClientConnectorError)
    what = "could not connect" if not sent else "lost the connection"
    return APIConnectionError(
        f"{endpoint}: {what} ({type(exc).__name__}: {exc}). Check the network and base_url; "
        "the emulator (nemo-sync --local) works offline.",
        endpoint=endpoint,
        request_sent=sent,
    )


class Transport:
    """Sends requests to the API. Owns the aiohttp session (and so the connection pool)."""

    def __init__(
        self,
        *,
        base_url: URL,
        platform: str,
        timeout: aiohttp.ClientTimeout,
        max_retries: int,
        auth: Auth | None = None,
        max_connections: int = 100,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = base_url
        self.max_response_bytes = max_response_bytes
        self.platform = platform
        self.timeout = timeout
        self.max_retries = max_retries
        self.auth: Auth | None = auth
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        self._base_headers = {
            "X-Skill-Source": SKILL_SOURCE,
            "X-Skill-Version": SKILL_VERSION,
            "X-Skill-Platform": platform,
            "User-Agent": USER_AGENT,
        }

    @property
    def http(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use (it must be made inside a running loop)."""
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                # Redirects are followed by hand nowhere; never forward the bearer elsewhere.
                auto_decompress=True,
            )
        return self._http

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    def url(self, path: str) -> URL:
        """The absolute URL of an API path (cached: building yarl URLs is not free)."""
        url = self._urls.get(path)
        if url is None:
            url = self.base_url.with_path(self.base_url.path.rstrip("/") + path)
            if len(self._urls) < 1024:  # bounded: session ids make paths unbounded
                self._urls[path] = url
        return url

    def base_headers(self) -> dict[str, str]:
        """Attribution headers and User-Agent, sent on every request (a fresh copy)."""
        return dict(self._base_headers)

    def is_api_host(self, url: URL) -> bool:
        """Whether ``url`` is on the API's own origin (where the token may go)."""
        return (
            url.scheme == self.base_url.scheme
            and url.host == self.base_url.host
            and url.port == self.base_url.port
        )

    async def _before_retry(
        self, budget: RetryBudget, exc: BaseException | None, attempt_number: int
    ) -> None:
        logger.debug(
            "retrying %s in %.2f s after %s (attempt %d)",
            budget.method,
            budget.next_wait,
            type(exc).__name__,
            attempt_number + 1,
        )
        if isinstance(exc, AuthenticationError) and self.auth and budget.token_used:
            await self.auth.invalidate(budget.token_used)

    async def _replacement_rejected(
        self, budget: RetryBudget, exc: AuthenticationError
    ) -> AuthenticationError:
        """The error for a 1001 on the token that replaced a rejected one; the auth stops."""
        assert self.auth is not None
        assert budget.token_used is not None
        message = await self.auth.replacement_rejected(budget.token_used)
        return AuthenticationError(
            message,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
            endpoint=exc.endpoint,
        )

    def _retrying(self, budget: RetryBudget) -> AsyncRetrying:
        async def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            # tenacity counts from the second attempt (the first ran outside it).
            await self._before_retry(budget, exc, attempt_number=state.attempt_number + 1)

        return AsyncRetrying(
            retry=retry_if_exception(budget.should_retry),
            wait=lambda _state: budget.next_wait,
            stop=stop_never,  # the budget decides when to stop
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: BodyFactory | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        timeout: aiohttp.ClientTimeout | None = None,
        replayable: bool = True,
    ) -> Any:
        """Make one API call (retried as its failure allows) and return the envelope's data.

        Raises:
            APIError: (a subclass) for errors the service reported.
            APIConnectionError: when the request could not complete.
            APIResponseError: when the reply breaks the contract.
        """
        budget = RetryBudget(
            method=method,
            max_retries=self.max_retries,
            anonymous_auth=bool(self.auth and self.auth.anonymous),
            replayable=replayable,
        )

        async def attempt_once() -> Any:
            return await self._once(
                method,
                path,
                budget,
                json=json,
                body=body,
                params=params,
                headers=headers,
                authenticated=authenticated,
                timeout=timeout,
            )

        return await self._with_retries(budget, attempt_once)

    async def _with_retries(self, budget: RetryBudget, attempt: Callable[[], Any]) -> Any:
        """Run ``attempt``; after a retryable failure, let tenacity drive the retries.

        The first attempt runs outside tenacity: most calls succeed, and setting up the
        retry machinery for each of them cost a quarter of the per-call time.
        """
        try:
            try:
                return await attempt()
            except NemoError as exc:
                if not budget.should_retry(exc):
                    raise
                await self._before_retry(budget, exc, attempt_number=1)
            await sleep(budget.next_wait)
            async for retry in self._retrying(budget):
                with retry:
                    return await attempt()
        except AuthenticationError as exc:
            # A 1001 after the one re-auth: the fresh token was rejected too. Without this,
            # every later call would invalidate it and fetch yet another token, forever.
            if budget.reauthed and budget.token_used and not budget.token_fetch_failed:
                raise await self._replacement_rejected(budget, exc) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _headers(
        self, budget: RetryBudget, extra: Mapping[str, str] | None, authenticated: bool
    ) -> dict[str, str]:
        headers = _SentHeaders(self._base_headers)
        if extra:
            headers.update(extra)
        if authenticated:
            if self.auth is None:
                raise NemoError("internal: an authenticated call without an auth source")
            # The synchronous look-up skips a coroutine per call when the token is at hand.
            token = self.auth.cached_token()
            if token is None:
                try:
                    token = await self.auth.token()
                except NemoError:
                    # The token call had its own retries; this call's must not repeat it.
                    budget.token_fetch_failed = True
                    raise
            budget.token_used = token
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _once(
        self,
        method: str,
        path: str,
        budget: RetryBudget,
        *,
        json: Any,
        body: BodyFactory | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        authenticated: bool,
        timeout: aiohttp.ClientTimeout | None,
    ) -> Any:
        endpoint = f"{method} {path}"
        sent_headers = await self._headers(budget, headers, authenticated)
        started = time.perf_counter()
        status = 0
        try:
            async with self.http.request(
                method,
                self.url(path),
                json=json,
                data=body() if body is not None else None,
                params=params,
                headers=sent_headers,
                timeout=timeout or self.timeout,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                reply_headers = resp.headers
                if status >= 400:
                    raw = await read_capped(resp, ERROR_BODY_BYTES, endpoint, truncate=True)
                else:
                    raw = await read_capped(resp, self.max_response_bytes, endpoint)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            logger.debug("%s failed after %.0f ms: %s", endpoint, _ms(started), type(exc).__name__)
            raise _connection_error(exc, endpoint) from _without_frames(exc, sent_headers)
        if logger.isEnabledFor(logging.DEBUG):  # skip building the arguments on the hot path
            logger.debug(
                "%s -> %d in %.0f ms (request id %s)",
                endpoint,
                status,
                _ms(started),
                reply_headers.get("X-Request-Id"),
            )
        return parse_reply(status=status, headers=reply_headers, body=raw, endpoint=endpoint)

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Open a streaming reply (Server-Sent Events). The caller must release it.

        Only failures that prove the request was not processed are retried (connect failure,
        429, a rejected anonymous token): a chat message is never sent twice.

        Raises:
            APIError: when the service answers with an error instead of a stream.
        """
        budget = RetryBudget(
            method=method,
            max_retries=self.max_retries,
            anonymous_auth=bool(self.auth and self.auth.anonymous),
        )

        async def attempt_once() -> aiohttp.ClientResponse:
            return await self._open_stream_once(
                method, path, budget, json=json, headers=headers, timeout=timeout
            )

        response: aiohttp.ClientResponse = await self._with_retries(budget, attempt_once)
        return response

    async def _open_stream_once(
        self,
        method: str,
        path: str,
        budget: RetryBudget,
        *,
        json: Any,
        headers: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        endpoint = f"{method} {path}"
        sent_headers = await self._headers(budget, headers, authenticated=True)
        started = time.perf_counter()
        try:
            resp = await self.http.request(
                method,
                self.url(path),
                json=json,
                headers=sent_headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _connection_error(exc, endpoint) from _without_frames(exc, sent_headers)
        content_type = resp.headers.get("Content-Type", "")
        logger.debug(
            "%s -> %d (%s) in %.0f ms (request id %s)",
            endpoint,
            resp.status,
            content_type.split(";")[0] or "no type",
            _ms(started),
            resp.headers.get("X-Request-Id"),
        )
        if resp.status < 400 and content_type.startswith("text/event-stream"):
            return resp
        try:
            if resp.status >= 400:
                raw = await read_capped(resp, ERROR_BODY_BYTES, endpoint, truncate=True)
            else:
                raw = await read_capped(resp, self.max_response_bytes, endpoint)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _connection_error(exc, endpoint) from exc
        finally:
            resp.release()
        data = parse_reply(status=resp.status, headers=resp.headers, body=raw, endpoint=endpoint)
        raise APIResponseError(
            f"expected an event stream (text/event-stream), got {content_type or 'no type'}"
            f" with data of type {type(data).__name__}",
            endpoint=endpoint,
        )


class _SentHeaders(dict[str, str]):
    """Request headers whose repr hides the bearer: they sit in the frames of failed calls."""

    def __repr__(self) -> str:
        shown = {k: ("Bearer ***" if k == "Authorization" else v) for k, v in self.items()}
        return repr(shown)


def _without_frames(exc: BaseException, sent: Mapping[str, str]) -> BaseException:
    """``exc`` (and what it chains) without tracebacks when the request carried a token.

    aiohttp's frames hold the request headers in plain dicts, so a traceback rendered with
    locals (rich, ``--showlocals``, Sentry) would print the bearer; the types and messages
    stay for debugging.
    """
    if "Authorization" in sent:
        seen: set[int] = set()
        link: BaseException | None = exc
        while link is not None and id(link) not in seen:
            seen.add(id(link))
            link.__traceback__ = None
            link = link.__cause__ or link.__context__
    return exc


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
