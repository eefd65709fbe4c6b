"""A tiny programmable API server for wire-level tests (real sockets, exact replies).

The emulator is the faithful server; this one lets a test script exact status codes, headers
and bytes, and see every request that arrived.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def envelope(
    data: Any = None,
    *,
    code: int = 0,
    message: str = "ok",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON reply in the API's envelope."""
    return web.json_response(
        {"code": code, "message": message, "data": data}, status=status, headers=headers
    )


class ScriptedServer:
    """Routes answered by queued replies (first in, first out; the last one repeats)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._replies: dict[tuple[str, str], list[Handler]] = {}
        self._tokens = (f"tok-{n}" for n in itertools.count(1))
        self.issued_tokens: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        """Queue replies for a route."""
        self._replies.setdefault((method, path), []).extend(handlers)

    def reply(self, method: str, path: str, *responses: Callable[[], web.StreamResponse]) -> None:
        """Queue fixed replies for a route."""
        for make in responses:

            async def handler(_request: web.Request, make: Any = make) -> web.StreamResponse:
                return make()  # type: ignore[no-any-return]

            self.on(method, path, handler)

    def clear(self, method: str, path: str) -> None:
        """Forget the replies queued for a route."""
        self._replies.pop((method, path), None)

    def count(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.path == path)

    def issue_tokens(self) -> None:
        """Answer the anonymous-token call with a new token each time."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if not request.headers.get("X-Client-Id"):
                return envelope(None, code=400, message="missing X-Client-Id", status=400)
            token = next(self._tokens)
            self.issued_tokens.append(token)
            return envelope({"token": token})

        self._replies[("POST", "/api/auth/anonymous-token")] = [handler]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        queue = self._replies.get((request.method, request.path))
        if not queue:
            return web.json_response({"code": 404, "message": "no such route"}, status=404)
        handler = queue.pop(0) if len(queue) > 1 else queue[0]
        return await handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A handler that hangs on purpose must not hold the test for 60 s at cleanup.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def credits_reply(available: int = 100) -> web.Response:
    return envelope({"available": available, "frozen": 0, "total": available})


def raw(
    status: int,
    body: bytes | str,
    content_type: str = "text/html",
    headers: dict[str, str] | None = None,
) -> Callable[[], web.Response]:
    """A reply with exact bytes."""
    data = body.encode() if isinstance(body, str) else body
    return lambda: web.Response(
        status=status, body=data, content_type=content_type, headers=headers
    )


def as_json(obj: Any) -> bytes:
    return json.dumps(obj).encode()
