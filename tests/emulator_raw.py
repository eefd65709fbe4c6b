"""A raw HTTP client for the emulator's own tests: plain aiohttp, no SDK code on the path.

The emulator must be right on the wire by itself, so its tests speak HTTP directly.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import attrs

from nemo_sync._contract import chat_body, export_body
from nemo_sync.emulator import Emulator

_render_ids = itertools.count(1)

ATTRIBUTION = {
    "X-Skill-Source": "music-cog-online",
    "X-Skill-Version": "1.0.0",
    "X-Skill-Platform": "unknown",
}


@attrs.define
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def code(self) -> Any:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""

    @property
    def payload(self) -> Any:
        """``data`` of an enveloped reply (``code`` [V] or ``success`` [R]), else the body."""
        if isinstance(self.body, dict) and ("code" in self.body or "success" in self.body):
            return self.body.get("data")
        return self.body

    @property
    def detail(self) -> Any:
        """A FastAPI refusal's ``detail``."""
        return self.body.get("detail") if isinstance(self.body, dict) else None

    def missing_fields(self) -> list[str]:
        """The dotted ``loc`` (after ``body``) of each ``missing`` item of a 422 detail."""
        return [
            ".".join(str(p) for p in item["loc"][1:])
            for item in self.detail or []
            if item.get("type") == "missing"
        ]


@attrs.define
class Stream:
    """What a chat turn sent: raw lines, parsed events, and how it ended."""

    raw: str
    events: list[dict[str, Any]]
    comments: int
    empty_data: int
    error: BaseException | None = None

    @property
    def texts(self) -> list[str]:
        return [
            p["text"]
            for e in self.events
            for p in e.get("content", {}).get("parts", [])
            if "text" in p and not e.get("partial")
        ]

    @property
    def partial_texts(self) -> list[str]:
        return [
            p["text"]
            for e in self.events
            for p in e.get("content", {}).get("parts", [])
            if "text" in p and e.get("partial")
        ]

    @property
    def calls(self) -> list[dict[str, Any]]:
        return [
            p["functionCall"]
            for e in self.events
            for p in e.get("content", {}).get("parts", [])
            if "functionCall" in p
        ]

    @property
    def responses(self) -> list[dict[str, Any]]:
        return [
            p["functionResponse"]
            for e in self.events
            for p in e.get("content", {}).get("parts", [])
            if "functionResponse" in p
        ]

    @property
    def turn_complete(self) -> bool:
        return any(e.get("turnComplete") for e in self.events)


def parse_sse(raw: str) -> tuple[list[dict[str, Any]], int, int]:
    """Events, comment lines and empty ``data:`` events in a (possibly cut) stream."""
    events, comments, empty = [], 0, 0
    for block in raw.split("\n\n"):
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
        if not data_lines:
            continue
        data = "\n".join(data_lines)
        if not data:
            empty += 1
            continue
        with contextlib.suppress(ValueError):  # a cut in the middle of an event
            events.append(json.loads(data))
    return events, comments, empty


class Raw:
    """Plain HTTP against an emulator, with the attribution headers and a bearer token."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.http = http
        self.token: str | None = None

    def headers(
        self, extra: Mapping[str, str] | None = None, *, auth: bool = True
    ) -> dict[str, str]:
        headers = dict(ATTRIBUTION)
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        raw_headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; ``raw_headers`` replaces every default header."""
        sent = dict(raw_headers) if raw_headers is not None else self.headers(headers, auth=auth)
        async with self.http.request(
            method, self.emu.url + path, json=json_body, data=data, headers=sent
        ) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = text
            return Reply(resp.status, resp.headers, body)

    async def login(self, client_id: str = "client-1") -> str:
        reply = await self.call(
            "POST", "/api/auth/anonymous-token", headers={"X-Client-Id": client_id}, auth=False
        )
        assert reply.status == 200, reply.body
        self.token = reply.data["token"]
        return self.token

    async def new_session(self) -> str:
        reply = await self.call(
            "POST", "/api/tasks/me/with-session/nemo_agent", json_body={"task_name": "project"}
        )
        assert reply.status == 200, reply.body
        return str(reply.data["session_id"])

    async def upload(self, session_id: str, name: str, content: bytes) -> Reply:
        form = aiohttp.FormData()
        form.add_field("files", content, filename=name)
        return await self.call("POST", f"/api/upload-video/nemo_agent/me/{session_id}", data=form)

    async def state(self, session_id: str) -> Reply:
        return await self.call("GET", f"/api/state/nemo_agent/me/{session_id}/latest")

    async def credits(self) -> dict[str, int]:
        reply = await self.call("GET", "/api/credits/balance/simple")
        assert reply.status == 200, reply.body
        return dict(reply.data)

    def chat_body(self, session_id: str, text: str) -> dict[str, Any]:
        return chat_body(session_id, text)

    async def chat(self, session_id: str, text: str) -> Stream:
        """One turn; a stream cut short is returned with ``error`` set, not raised."""
        chunks: list[bytes] = []
        error: BaseException | None = None
        async with self.http.post(
            self.emu.url + "/run_sse",
            json=self.chat_body(session_id, text),
            headers=self.headers({"Accept": "text/event-stream"}),
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.content_type == "text/event-stream"
            try:
                async for chunk in resp.content.iter_any():
                    chunks.append(chunk)
            except aiohttp.ClientPayloadError as exc:
                error = exc
        raw = b"".join(chunks).decode()
        events, comments, empty = parse_sse(raw)
        return Stream(raw, events, comments, empty, error)

    async def render(
        self,
        session_id: str,
        *,
        draft: Any = None,
        render_id: str | None = None,
    ) -> Reply:
        """An export in the v2 shape; the draft is the session's own unless given."""
        if draft is None:
            draft = self.emu.sessions[session_id].draft if session_id in self.emu.sessions else {}
        body = export_body(render_id or f"render_{next(_render_ids)}", session_id, draft)
        return await self.call("POST", "/api/render/proxy/lambda", json_body=body)

    async def render_status(self, render_id: str) -> Reply:
        return await self.call("GET", f"/api/render/proxy/lambda/{render_id}")


@asynccontextmanager
async def raw_client(emu: Emulator) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession() as http:
        yield Raw(emu, http)
