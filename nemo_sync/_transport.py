"""The one path every request takes: headers, auth, timeouts, envelope, errors, retries, logs."""

from __future__ import annotations

import asyncio
import functools
import logging
import platform as _platform
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from yarl import URL

from nemo_sync._auth import Auth
from nemo_sync._contract import SKILL_SOURCE, SKILL_VERSION
from nemo_sync._envelope import parse_reply, with_link
from nemo_sync._retry import RateCooldown, RetryBudget, cooling_down, sleep
from nemo_sync._version import __version__
from nemo_sync.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    InsufficientCreditsError,
    NemoError,
    RateLimitError,
    ResponseTooLargeError,
)

logger = logging.getLogger("nemo_sync")

USER_AGENT = (
    f"nemo-sync/{__version__} aiohttp/{aiohttp.__version__} python/{_platform.python_version()}"
)

# Builds a fresh request body for each attempt (a retried upload reopens its file).
BodyFactory = Callable[[], Any]
_T = TypeVar("_T")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest JSON reply read (settable: ``NemoClient(max_response_bytes=...)``)."""
ERROR_BODY_BYTES = 64 * 1024
"""How much of an error reply is read: enough for any message, never a 50 MB error page."""


def read_capped(
    resp: aiohttp.ClientResponse, limit: int, endpoint: str, *, truncate: bool = False
) -> Awaitable[bytes]:
    """The body, read up to ``limit`` bytes (decompressed); never the rest (await the result).

    Raises:
        ResponseTooLargeError: when the body is larger (unless ``truncate``, which returns the
            first ``limit`` bytes instead: for error pages, whose start is all that matters).
    """
    declared = resp.content_length
    if declared is not None and declared > limit and not truncate:
        raise _too_large(endpoint, limit, f"it announces {declared} bytes")
    if declared is not None and declared <= limit and not resp.headers.get("Content-Encoding"):
        # The common case: an announced, uncompressed length within the cap. aiohttp stops at
        # Content-Length, so one read is bounded and cheaper than a loop of readany(); its
        # coroutine is handed back as it is (no frame of ours around it).
        return resp.read()
    return _read_chunks(resp, limit, endpoint, truncate)


async def _read_chunks(
    resp: aiohttp.ClientResponse, limit: int, endpoint: str, truncate: bool
) -> bytes:
    """The body chunk by chunk, stopping once it passes ``limit`` (see :func:`read_capped`)."""
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


NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
"""What aiohttp raises when a request or its reply could not be completed."""


def _request_failed(exc: BaseException, endpoint: str) -> APIConnectionError:
    """Our error for an aiohttp/asyncio failure; ``request_sent`` says if it may have arrived."""
    logger.debug("%s failed: %s", endpoint, type(exc).__name__)
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
        # The end of the last 429's wait, checked before every API call (fed by the fleet too).
        self.cooldown = RateCooldown()
        # Called once when the connection pool is made: inside the running loop, at first use
        # (the client starts the fleet's background work there; see nemo_sync._fleet_state).
        self.on_open: Callable[[], None] | None = None
        # The registration link for a 2001 the reply gave none for (set by the client's Api).
        self.bind_link: Callable[[], str | None] | None = None
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None
        self._last_headers: _SentHeaders | None = None
        self._closed = False
        self._urls: dict[str, URL] = {}
        self._base_headers = {
            "X-Skill-Source": SKILL_SOURCE,
            "X-Skill-Version": SKILL_VERSION,
            "X-Skill-Platform": platform,
            "User-Agent": USER_AGENT,
        }

    @property
    def http(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use (it must be made inside a running loop).

        Raises:
            ClientClosedError: after :meth:`close` (a closed client never reopens its pool).
        """
        if self._closed:
            raise ClientClosedError(
                "This NemoClient is closed; make a new one (async with NemoClient() as nemo: ...)"
            )
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                # Redirects are followed by hand nowhere; never forward the bearer elsewhere.
                auto_decompress=True,
            )
            if self.on_open is not None:
                self.on_open()
        return self._http

    async def close(self) -> None:
        """Close the connection pool, for good."""
        self._closed = True
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
        if isinstance(exc, RateLimitError):
            self.cooldown.rate_limited(exc)
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

    def _retrying(self, budget: RetryBudget, deadline: float | None) -> AsyncRetrying:
        async def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            # tenacity counts from the second attempt (the first ran outside it).
            await self._before_retry(budget, exc, attempt_number=state.attempt_number + 1)

        return AsyncRetrying(
            retry=retry_if_exception(budget.should_retry),
            wait=lambda _state: budget.next_wait,
            # The budget decides how often; the call's deadline, whether there is time.
            stop=lambda _state: _past(deadline, budget.next_wait),
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )

    async def _with_retries(
        self,
        budget: RetryBudget,
        attempt: Callable[[aiohttp.ClientTimeout | None], Awaitable[_T]],
        *,
        deadline: float | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        failed: NemoError | None = None,
    ) -> _T:
        """The one attempt loop: run ``attempt``; after a retryable failure, retry it.

        ``deadline`` (``time.monotonic()``) bounds the whole call: a retry that could not start
        before it is not made, and a retried attempt gets only the time that is left.
        ``failed`` is the first attempt's failure when the caller made that attempt itself
        (:meth:`request` does, so a call that succeeds never builds a retry closure).
        The first attempt runs outside tenacity: most calls succeed, and setting up the retry
        machinery for each of them cost a quarter of the per-call time.
        """

        try:
            if failed is None:
                try:
                    return await attempt(timeout)
                except NemoError as exc:
                    failed = exc
            if not budget.should_retry(failed) or _past(deadline, budget.next_wait):
                raise failed
            await self._before_retry(budget, failed, attempt_number=1)
            await sleep(budget.next_wait)
            async for retry in self._retrying(budget, deadline):
                with retry:
                    return await attempt(_time_left(deadline, timeout))
        except RateLimitError as exc:
            self.cooldown.rate_limited(exc)  # not retried: still every later call waits
            raise
        except InsufficientCreditsError as exc:
            if exc.bind_url is None and self.bind_link is not None:
                with_link(exc, self.bind_link())
            raise
        except AuthenticationError as exc:
            # A 1001 after the one re-auth: the fresh token was rejected too. Without this,
            # every later call would invalidate it and fetch yet another token, forever.
            if budget.reauthed and budget.token_used and not budget.token_fetch_failed:
                raise await self._replacement_rejected(budget, exc) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _budget(self, method: str, *, replayable: bool = True) -> RetryBudget:
        auth = self.auth
        # Positional: one is made per call, and keywords cost twice as much here.
        anonymous = auth is not None and auth.anonymous
        return RetryBudget(method, self.max_retries, anonymous, replayable)

    def _reused_headers(
        self, budget: RetryBudget, extra: Mapping[str, str] | None, authenticated: bool
    ) -> _SentHeaders | None:
        """The hot path: the headers of the last call with the token at hand, built once.

        aiohttp copies what it is given, and they are read-only, so sharing them between calls
        is safe. None when they do not fit (extra headers, an anonymous call) or there is no
        token at hand or it changed: then :meth:`_build_headers` makes a new set.
        """
        auth = self.auth
        last = self._last_headers
        if extra or not authenticated or auth is None or last is None:
            return None
        token = auth.cached_token()
        if token is None or last.token != token:
            return None
        budget.token_used = token
        return last

    async def _api_headers(
        self, budget: RetryBudget, extra: Mapping[str, str] | None, authenticated: bool
    ) -> _SentHeaders:
        """Headers for the API's own origin: attribution, the caller's, and the bearer."""
        reused = self._reused_headers(budget, extra, authenticated)
        return reused or await self._build_headers(budget, extra, authenticated)

    async def _build_headers(
        self, budget: RetryBudget, extra: Mapping[str, str] | None, authenticated: bool
    ) -> _SentHeaders:
        """A new set of API headers (fetching a token when none is at hand)."""
        headers = {**self._base_headers, **extra} if extra else dict(self._base_headers)
        if not authenticated:
            return _SentHeaders(headers)
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
        if extra:
            return _SentHeaders(headers)
        sent = self._last_headers = _SentHeaders(headers, token)
        return sent

    def _aiohttp_request(
        self,
        method: str,
        url: URL,
        sent: _SentHeaders,
        *,
        timeout: aiohttp.ClientTimeout | None,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Awaitable[aiohttp.ClientResponse]:
        """The one aiohttp call: exactly these headers, redirects not followed.

        Not a coroutine (one fewer object per call for the garbage collector, which was the
        largest share of the per-call overhead): callers await it inside
        ``except NETWORK_ERRORS`` and raise :func:`_request_failed`.
        The awaited response has any status; the caller reads and releases it.
        """
        return self.http.request(
            method,
            url,
            json=json,
            data=data,
            params=params,
            headers=sent.wire,
            timeout=timeout or self.timeout,
            allow_redirects=False,
        )

    async def _get_following(
        self,
        url: URL,
        budget: RetryBudget,
        *,
        endpoint: str,
        timeout: aiohttp.ClientTimeout | None,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        """A GET and its redirects, with the token rules for hops (downloads).

        The token goes only to the API's own origin, and never on a redirect that started at
        another host: once a hop leaves the API host, no later hop gets it back. Another host
        gets the User-Agent and the caller's headers, not the attribution headers.
        """
        if self.is_api_host(url):
            sent = await self._api_headers(budget, headers, authenticated=True)
        else:
            sent = _SentHeaders({"User-Agent": USER_AGENT, **(headers or {})})
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                resp = await self._aiohttp_request("GET", url, sent, timeout=timeout)
            except NETWORK_ERRORS as exc:
                raise _request_failed(exc, endpoint) from _without_frames(exc, sent)
            location = resp.headers.get("Location") if resp.status in _REDIRECTS else None
            if not location:
                return resp
            resp.release()
            url = url.join(URL(location))
            if url.scheme not in ("http", "https"):
                raise APIResponseError(f"redirected to a {url.scheme!r} URL", endpoint=endpoint)
            if not self.is_api_host(url) and "Authorization" in sent:
                sent = _SentHeaders({"User-Agent": USER_AGENT, **(headers or {})})
        raise APIResponseError(f"more than {MAX_REDIRECTS} redirects", endpoint=endpoint)

    def _read_body(self, resp: aiohttp.ClientResponse, endpoint: str) -> Awaitable[bytes]:
        """A reply's body within its cap: a success's whole (or an error), an error's start."""
        # Not a coroutine itself: it hands back read_capped's awaitable, no frame per call.
        if resp.status >= 400:
            return read_capped(resp, ERROR_BODY_BYTES, endpoint, truncate=True)
        return read_capped(resp, self.max_response_bytes, endpoint)

    def request(
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
        reply_headers: dict[str, str] | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Make one API call (retried as its failure allows); await it for the envelope's data.

        The timeout's ``total`` bounds the whole call, retries and their waits included.
        ``reply_headers``, when given, receives the successful reply's headers.

        Raises:
            APIError: (a subclass) for errors the service reported.
            APIConnectionError: when the request could not complete.
            APIResponseError: when the reply breaks the contract.
        """
        # Not a coroutine itself: the call's coroutine is the attempt's, so a call that
        # succeeds leaves one object fewer for the garbage collector (its share of the
        # per-call overhead was the largest).
        budget = self._budget(method, replayable=replayable)
        return self._attempt(
            method, self.url(path), f"{method} {path}", budget, json, body, params, headers,
            authenticated, reply_headers, timeout or self.timeout,
        )  # fmt: skip

    async def _attempt(  # noqa: PLR0917 - positional: it runs on every call
        self,
        method: str,
        url: URL,
        endpoint: str,
        budget: RetryBudget,
        json: Any,
        body: BodyFactory | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        authenticated: bool,
        reply_headers: dict[str, str] | None,
        timeout: aiohttp.ClientTimeout | None,
        *,
        retry: bool = False,
    ) -> Any:
        """One attempt of an API call: send, read within the cap, parse the envelope.

        The first attempt starts the call's clock and, when it fails, hands over to the one
        attempt loop, which makes the retries (``retry=True``) with this method again.
        """
        if not retry and timeout is not None and timeout.total is not None:
            # time.monotonic(), not loop.time(): on Python 3.11, finding the running loop
            # costs a getpid() system call, once per call for nothing.
            deadline: float | None = time.monotonic() + timeout.total
        else:
            deadline = None
        # Two cheap tests when there is no cooldown; the first call also lets the fleet's
        # listener read the cooldown in force.
        if not retry and (self.cooldown.not_before or self._http is None):
            await self._cool_down(endpoint, deadline)
        try:
            debug = logger.isEnabledFor(logging.DEBUG)  # skip the timing and arguments when off
            started = time.perf_counter() if debug else 0.0
            # _api_headers, inlined: reused headers then cost no coroutine on every call.
            reused = self._reused_headers(budget, headers, authenticated)
            sent = reused or await self._build_headers(budget, headers, authenticated)
            data = body() if body is not None else None
            try:
                resp = await self._aiohttp_request(
                    method, url, sent, timeout=timeout, json=json, data=data, params=params
                )
                try:
                    raw = await self._read_body(resp, endpoint)  # one read when the length is known
                finally:
                    resp.release()
            except NETWORK_ERRORS as exc:
                raise _request_failed(exc, endpoint) from _without_frames(exc, sent)
            status, got = resp.status, resp.headers
            if debug:
                logger.debug(
                    "%s -> %d in %.0f ms (request id %s)",
                    endpoint,
                    status,
                    _ms(started),
                    got.get("X-Request-Id"),
                )
            result = parse_reply(status=status, headers=got, body=raw, endpoint=endpoint)
            if reply_headers is not None:
                reply_headers.update(got)
            return result
        except NemoError as exc:
            if retry:
                raise
            failed = exc
        again = functools.partial(
            self._attempt, method, url, endpoint, budget, json, body, params, headers,
            authenticated, reply_headers, retry=True,
        )  # fmt: skip
        return await self._with_retries(
            budget, again, deadline=deadline, timeout=timeout, failed=failed
        )

    async def _cool_down(self, endpoint: str, deadline: float | None) -> None:
        """Wait out the cooldown of a 429 (this host's or the fleet's) before sending.

        Raises:
            RateLimitError: at once, when the wait is over the retry cap or past the call's
                deadline (``time.monotonic()``): nothing is sent.
        """
        if self._http is None:
            self.http  # noqa: B018 - makes the pool, which starts the fleet's listener (on_open)
        joining = self.cooldown.joining
        if joining is not None:
            await joining()
        wait = self.cooldown.left()
        if not wait:
            return
        time_left = None if deadline is None else deadline - time.monotonic()
        refused = cooling_down(wait, endpoint, time_left=time_left)
        if refused is not None:
            raise refused
        logger.debug("%s waits %.2f s: a 429's cooldown", endpoint, wait)
        await sleep(wait)

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
        budget = self._budget(method)
        endpoint = f"{method} {path}"
        url = self.url(path)
        if self.cooldown.not_before or self._http is None:
            total = timeout.total
            await self._cool_down(endpoint, None if total is None else time.monotonic() + total)

        async def attempt(this_timeout: aiohttp.ClientTimeout | None) -> aiohttp.ClientResponse:
            started = time.perf_counter()
            sent = await self._api_headers(budget, headers, authenticated=True)
            try:
                resp = await self._aiohttp_request(
                    method, url, sent, timeout=this_timeout, json=json
                )
            except NETWORK_ERRORS as exc:
                raise _request_failed(exc, endpoint) from _without_frames(exc, sent)
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
                raw = await self._read_body(resp, endpoint)
            except NETWORK_ERRORS as exc:
                raise _request_failed(exc, endpoint) from _without_frames(exc, sent)
            finally:
                resp.release()
            data = parse_reply(
                status=resp.status, headers=resp.headers, body=raw, endpoint=endpoint
            )
            raise APIResponseError(
                f"expected an event stream (text/event-stream), got {content_type or 'no type'}"
                f" with data of type {type(data).__name__}",
                endpoint=endpoint,
            )

        return await self._with_retries(budget, attempt, timeout=timeout)

    async def open_download(
        self, url: URL, *, offset: int, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """GET a file (from ``offset``) through the same attempt loop and redirect rules.

        The token goes only when the download starts on the API host; a connection that
        fails is retried as any GET is. Any status is returned: the caller judges it.

        Raises:
            APIConnectionError: when the request could not complete.
        """
        budget = self._budget("GET")
        endpoint = f"GET {url.with_query(None)}"  # signed query strings stay out of messages
        headers = {"Range": f"bytes={offset}-"} if offset else None

        def attempt(
            this_timeout: aiohttp.ClientTimeout | None,
        ) -> Awaitable[aiohttp.ClientResponse]:
            return self._get_following(
                url, budget, endpoint=endpoint, timeout=this_timeout, headers=headers
            )

        return await self._with_retries(budget, attempt, timeout=timeout)


def _time_left(
    deadline: float | None, timeout: aiohttp.ClientTimeout | None
) -> aiohttp.ClientTimeout | None:
    """A retried attempt's timeout: only the time left before the call's deadline."""
    if deadline is None or timeout is None:
        return timeout
    left = max(deadline - time.monotonic(), 0.001)
    connect = timeout.sock_connect
    return aiohttp.ClientTimeout(
        total=left,
        sock_connect=min(connect, left) if connect else None,
        sock_read=timeout.sock_read,
    )


def _past(deadline: float | None, wait: float) -> bool:
    """Whether a retry after ``wait`` seconds would start past ``deadline``."""
    return deadline is not None and time.monotonic() + wait >= deadline


class _SentHeaders:
    """Request headers as aiohttp takes them, whose repr hides the bearer.

    They sit in the frames of failed calls, so the repr is redacted. ``wire`` is a read-only
    case-insensitive multidict: aiohttp merges it into its defaults as it is, where a plain
    dict would first be copied into one (1.3 us of every call).
    """

    __slots__ = ("token", "wire")

    def __init__(self, headers: Mapping[str, str], token: str | None = None) -> None:
        self.wire = CIMultiDictProxy(CIMultiDict(headers))
        self.token = token  # the bearer in them, when they are reused for later calls

    def __contains__(self, name: str) -> bool:
        return name in self.wire

    def __repr__(self) -> str:
        shown = {
            k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in self.wire.items()
        }
        return f"_SentHeaders({shown!r})"


def _without_frames(exc: BaseException, sent: _SentHeaders) -> BaseException:
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
