"""Writing a Server-Sent Events stream, with heartbeats and the faults that cut it short."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from nemo_sync.emulator._config import ChatEvents

T = TypeVar("T")

# The API reference's keep-alive [R], compact as its examples print it.
_SIMPLE_HEARTBEAT = b'data: {"type":"heartbeat"}\n\n'


class SseWriter:
    """Writes events as ``data:`` lines; after a disconnect or a cut, writes nothing more.

    Args:
        request: The request being answered.
        response: The prepared stream response.
        cut_after: Close the connection abruptly after this many events (a fault).
        drop: Close the connection in the middle of the first event (a fault).
        heartbeat_interval: Seconds between heartbeats while waiting.
        form: The stream's form, which decides what a heartbeat looks like: ``"adk"`` or
            ``"simple"`` (the API reference's events).
    """

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        *,
        cut_after: int | None = None,
        drop: bool = False,
        heartbeat_interval: float = 0.2,
        form: ChatEvents = "adk",
    ) -> None:
        self._request = request
        self._response = response
        self._cut_after = cut_after
        self._drop = drop
        self._interval = heartbeat_interval
        self._form = form
        self._beats = 0
        self.events_sent = 0
        self.open = True

    async def _write(self, data: bytes) -> None:
        if not self.open:
            return
        try:
            await self._response.write(data)
        except ConnectionError:
            self.open = False  # the client left; the turn goes on without it

    def _close_abruptly(self) -> None:
        self.open = False
        transport = self._request.transport
        if transport is not None:
            transport.close()

    async def event(self, payload: dict[str, Any]) -> None:
        """Send one event (or cut the stream here, when a fault says so)."""
        # ADK writes pydantic_core.to_json(event.model_dump(...)): compact, UTF-8 as is.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        await self._send(f"data: {body}\n\n".encode())

    async def adk_error(self, exc: BaseException, now: float) -> None:
        """The event google-adk 2.13 sends when the agent raises [A], byte for byte in form:
        ``json.dumps`` defaults (``", "`` separators, ASCII), ``"data:"`` then one space."""
        name = type(exc).__name__
        details = {"error_type": name, "error_message": str(exc), "timestamp": now}
        body = json.dumps({"error": f"{name}: {exc}", "error_details": details})
        await self._send(f"data: {body}\n\n".encode())

    async def _send(self, data: bytes) -> None:
        if not self.open:
            return
        if self._cut_after is not None and self.events_sent >= self._cut_after:
            self._close_abruptly()
            return
        if self._drop:
            await self._write(data[: len(data) // 2])
            self._close_abruptly()
            return
        await self._write(data)
        self.events_sent += 1

    async def heartbeat(self) -> None:
        """A keep-alive (the cut faults do not count it): in ADK's stream a comment line or an
        empty ``data:`` line, in turn (the backend sends both); in the simple form
        ``{"type":"heartbeat"}`` [R]."""
        self._beats += 1
        if self._form == "simple":
            await self._write(_SIMPLE_HEARTBEAT)
        else:
            await self._write(b": ping\n\n" if self._beats % 2 else b"data: \n\n")

    async def keep_alive(self, work: Awaitable[T], *, at_least: float = 0.0) -> T:
        """Await ``work`` (and at least ``at_least`` seconds), sending heartbeats meanwhile."""
        task = asyncio.ensure_future(work)
        deadline = time.monotonic() + at_least
        try:
            while True:
                remaining = deadline - time.monotonic()
                if task.done():
                    if remaining <= 0:
                        return task.result()
                    await asyncio.sleep(min(self._interval, remaining))
                else:
                    slice_ = self._interval if remaining <= 0 else min(self._interval, remaining)
                    await asyncio.wait([task], timeout=slice_)
                if not task.done() or time.monotonic() < deadline:
                    await self.heartbeat()
        finally:
            if not task.done():
                task.cancel()
