"""Chat turns over real sockets, with a server that sends exact bytes.

Cases cite their source: [A] Google ADK 2.13's events, [R] the vendor's API reference (its
simple ``{"type": ...}`` events), [V] the vendor's SKILL.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync._contract import RECOVER_FIRST_WAIT
from tests.scripted import ScriptedServer, envelope

SID = "s-1"
STATE = ("GET", f"/api/state/nemo_agent/me/{SID}/latest")
RUN = ("POST", "/run_sse")
BEFORE = {"t": [{"id": "v", "tt": 0, "sg": [{"n": "clip", "st": 0, "d": 10000}]}]}
AFTER = {
    "t": [
        *BEFORE["t"],
        {"id": "a", "tt": 1, "sg": [{"n": "Lo-fi", "st": 0, "d": 10000, "v": 0.35}]},
    ]
}


def adk(*parts: dict[str, Any], partial: bool = False, **extra: Any) -> bytes:
    event = {
        "author": "nemo_agent",
        "content": {"role": "model", "parts": list(parts)},
        "partial": partial,
        **extra,
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def writes(data: bytes, small: bool) -> list[bytes]:
    """``data`` in one write, or in writes of 1, 2, ... 7 bytes (then 1 again), so that line
    ends, event ends and UTF-8 characters are cut everywhere."""
    if not small:
        return [data]
    out, at = [], 0
    while at < len(data):
        step = len(out) % 7 + 1
        out.append(data[at : at + step])
        at += step
    return out


CHUNKINGS = [pytest.param(False, id="one-write"), pytest.param(True, id="1-7-byte-writes")]


def sse(
    blocks: Sequence[bytes], *, pause: float = 0.0, cut: bool = False, small: bool = False
) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for block in blocks:
            for piece in writes(block, small):
                await response.write(piece)
            if pause:
                await asyncio.sleep(pause)
        if cut:
            assert request.transport is not None
            request.transport.close()  # no final chunk: the stream dropped
            return response
        await response.write_eof()
        return response

    return handler


def states(api: ScriptedServer, *drafts: dict[str, Any]) -> None:
    api.reply(*STATE, *(lambda d=d: envelope({"draft": d, "media": []}) for d in drafts))


async def test_a_turn_streams_typed_events_and_posts_once(api: ScriptedServer) -> None:
    states(api, BEFORE, AFTER)
    api.on(
        *RUN,
        sse(
            [
                b": ping\n\n",
                adk({"functionCall": {"id": "c1", "name": "add_bgm", "args": {"media": "m2"}}}),
                adk(
                    {"functionResponse": {"id": "c1", "name": "add_bgm", "response": {"ok": True}}}
                ),
                adk({"text": "Added Lo-fi. "}, partial=True),
                adk({"text": "Click the Export button when ready."}, partial=True),
                adk({"text": "Added Lo-fi. Click the Export button when ready."}),
                adk(turnComplete=True),
            ]
        ),
    )
    async with NemoClient(base_url=api.url) as nemo:
        session = nemo.session(SID)
        async with session.chat("add the lo-fi track as background music") as turn:
            kinds = [type(event).__name__ async for event in turn]
        result = await turn.result()
    assert kinds == [
        "HeartbeatEvent",
        "ToolCallEvent",
        "ToolResultEvent",
        "TextEvent",
        "TextEvent",
        "TextEvent",
        "TurnCompleteEvent",
    ]
    assert result.text == "Added Lo-fi. Click the Export button when ready."
    assert not result.silent
    assert [c.name for c in result.tool_calls] == ["add_bgm"]
    assert [a.kind for a in result.suggested_actions] == [nemo_sync.SuggestedKind.EXPORT]
    assert [c.sentence for c in result.changes] == ["Added audio track 'Lo-fi' (0-10 s, 35%)"]
    assert api.count(*RUN) == 1
    body = json.loads(next(s.body for s in api.seen if s.path == "/run_sse"))
    assert body == {  # exactly the vendor's body [V][A]: no role, no streaming flag
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": SID,
        "new_message": {"parts": [{"text": "add the lo-fi track as background music"}]},
    }
    run_headers = next(s.headers for s in api.seen if s.path == "/run_sse")
    assert run_headers["Accept"] == "text/event-stream"
    assert run_headers["X-Skill-Source"] == "music-cog-online"


async def test_a_silent_turn_is_told_from_the_draft_diff(api: ScriptedServer) -> None:
    states(api, BEFORE, AFTER)
    api.on(*RUN, sse([b": ping\n\n", b"data:\n\n", adk(turnComplete=True)]))
    async with NemoClient(base_url=api.url) as nemo:
        result = await nemo.session(SID).send("add background music")
    assert result.silent
    assert result.text == "Updated the timeline: Added audio track 'Lo-fi' (0-10 s, 35%)."
    assert result.draft_after is not None
    assert result.draft_after.summary().startswith("Timeline (2 tracks)")


async def test_a_dropped_stream_is_reported_not_resent(api: ScriptedServer) -> None:
    states(api, BEFORE, AFTER)
    api.on(*RUN, sse([adk({"text": "Working on it"}, partial=True)], cut=True))
    async with NemoClient(base_url=api.url) as nemo:
        turn = nemo.session(SID).chat("sync the beat")
        with pytest.raises(nemo_sync.StreamInterruptedError) as caught:
            async with turn:
                async for _ in turn:
                    pass
        assert [type(e).__name__ for e in caught.value.events] == ["TextEvent"]
        assert "NOT sent again" in str(caught.value)
        result = await turn.reconcile()
    assert [c.sentence for c in result.changes] == ["Added audio track 'Lo-fi' (0-10 s, 35%)"]
    assert api.count(*RUN) == 1


async def test_still_working_fires_on_heartbeat_only_time_and_the_deadline_holds(
    api: ScriptedServer,
) -> None:
    states(api, BEFORE)
    api.on(*RUN, sse([b": ping\n\n"] * 40, pause=0.02))
    calls: list[float] = []
    async with NemoClient(base_url=api.url) as nemo:
        turn = nemo.session(SID).chat(
            "sync", on_still_working=calls.append, still_working_every=0.2, timeout=0.5
        )
        with pytest.raises(nemo_sync.APITimeoutError, match="not sent again"):
            async with turn:
                async for _ in turn:
                    pass
    assert 1 <= len(calls) <= 3
    assert all(0.15 <= c <= 0.6 for c in calls)
    assert api.count(*RUN) == 1


async def test_an_agent_error_raises_a_typed_error(api: ScriptedServer) -> None:
    states(api, BEFORE)
    api.on(*RUN, sse([b'data: {"errorCode": "INTERNAL", "errorMessage": "model overloaded"}\n\n']))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.AgentError, match="model overloaded"):
            await nemo.session(SID).send("sync")


async def test_an_error_reply_instead_of_a_stream_is_typed(api: ScriptedServer) -> None:
    states(api, BEFORE)
    api.reply(*RUN, lambda: envelope(None, code=1002, message="no session", status=404))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.SessionNotFoundError):
            await nemo.session(SID).send("sync")
    assert api.count(*RUN) == 1


async def test_a_429_before_the_stream_is_retried_once(
    api: ScriptedServer, waits: list[float]
) -> None:
    states(api, BEFORE, BEFORE)
    api.reply(
        *RUN,
        lambda: envelope(None, code=429, message="slow", status=429, headers={"Retry-After": "1"}),
    )
    api.on(*RUN, sse([adk({"text": "ok"})]))
    async with NemoClient(base_url=api.url) as nemo:
        result = await nemo.session(SID).send("sync")
    assert result.text == "ok"
    assert waits == [1.0]


async def test_leaving_the_block_early_closes_the_stream(api: ScriptedServer) -> None:
    states(api, BEFORE)
    api.on(*RUN, sse([adk({"text": "a"}, partial=True)] * 50, pause=0.01))
    async with NemoClient(base_url=api.url) as nemo:
        async with nemo.session(SID).chat("sync") as turn:
            async for event in turn:
                assert isinstance(event, nemo_sync.TextEvent)
                break
        assert "streaming" not in repr(turn) or turn._response is None


def test_an_empty_message_is_refused_before_sending() -> None:
    nemo = NemoClient(token="t", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="empty"):
        nemo.session(SID).chat("   ")


# ---- the reference's simple events, and every form of heartbeat ---------------------------


def simple(**event: Any) -> bytes:
    """One of [R]'s simple events, compact as the reference prints them."""
    return (
        b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


# The four ways the service says "still working" (contract v3, "Chat over SSE").
HEARTBEATS = {
    "comment": b": ping\n\n",  # [V]
    "empty-data": b"data:\n\n",  # [V] "empty data: lines"
    "event-heartbeat": b"event: heartbeat\ndata: {}\n\n",  # [V] "heartbeat events"
    "type-heartbeat": simple(type="heartbeat"),  # [R]
}


def beating(first: bytes, beats: Sequence[bytes], *, small: bool) -> Any:
    """A stream that sends ``first``, then ``beats`` over and over until the client leaves."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for piece in writes(first, small):
                await response.write(piece)
            while True:
                for beat in beats:
                    for piece in writes(beat, small):
                        await response.write(piece)
                await asyncio.sleep(0.02)  # a backend that beats, not one that floods
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: the point of the test
        return response

    return handler


@pytest.mark.parametrize("small", CHUNKINGS)
async def test_the_references_simple_events_give_the_reply_and_typed_tools(
    api: ScriptedServer, small: bool
) -> None:
    """[R]: text, tool_call, tool_result and heartbeat events; no done event: the stream's end
    is the end of the turn."""
    states(api, BEFORE, AFTER)
    prompt = {"prompt": "city at night, 夜景", "duration": 5}
    api.on(
        *RUN,
        sse(
            [
                simple(type="text", content="I'll generate your video now..."),
                simple(type="tool_call", name="generate_video_with_seedance", args=prompt),
                simple(type="heartbeat"),
                simple(
                    type="tool_result",
                    name="generate_video_with_seedance",
                    result={"video_url": "https://cdn.example/v.mp4"},
                ),
                simple(type="text", content=" Done: 5 s of 夜景 are on the timeline."),
            ],
            small=small,
        ),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        async with nemo.session(SID).chat("make a night-city clip") as turn:
            events = [event async for event in turn]
        result = await turn.result()
    assert [type(e).__name__ for e in events] == [
        "TextEvent",
        "ToolCallEvent",
        "HeartbeatEvent",
        "ToolResultEvent",
        "TextEvent",
    ]
    assert result.text == "I'll generate your video now... Done: 5 s of 夜景 are on the timeline."
    assert not result.silent
    [call] = result.tool_calls
    assert (call.id, call.name, call.args) == (None, "generate_video_with_seedance", prompt)
    [answer] = [e for e in result.events if isinstance(e, nemo_sync.ToolResultEvent)]
    assert (answer.name, answer.response) == (
        "generate_video_with_seedance",
        {"video_url": "https://cdn.example/v.mp4"},
    )
    assert turn.heartbeats == 1
    assert [c.sentence for c in result.changes] == ["Added audio track 'Lo-fi' (0-10 s, 35%)"]
    assert api.count(*RUN) == 1


@pytest.mark.parametrize("small", CHUNKINGS)
@pytest.mark.parametrize("form", HEARTBEATS)
async def test_each_heartbeat_form_is_a_heartbeat_event(
    api: ScriptedServer, form: str, small: bool
) -> None:
    """[V][R]: each of the four forms is one HeartbeatEvent, counted, and not the reply."""
    states(api, BEFORE, BEFORE)
    api.on(*RUN, sse([HEARTBEATS[form], simple(type="text", content="ok")], small=small))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        async with nemo.session(SID).chat("hello") as turn:
            kinds = [type(event).__name__ async for event in turn]
        result = await turn.result()
    assert kinds == ["HeartbeatEvent", "TextEvent"]
    assert turn.heartbeats == 1
    assert result.text == "ok"


@pytest.mark.parametrize("small", CHUNKINGS)
@pytest.mark.parametrize(
    "beats",
    [
        pytest.param(
            [HEARTBEATS["event-heartbeat"], HEARTBEATS["type-heartbeat"]], id="named+json"
        ),
        pytest.param(list(HEARTBEATS.values()), id="all-four"),
    ],
)
async def test_heartbeats_only_in_any_form_end_in_the_idle_timeout(
    api: ScriptedServer, beats: list[bytes], small: bool
) -> None:
    """[V]: 10 minutes of heartbeats only -> timed out (idle_timeout scaled down to 0.3 s). A
    heartbeat in any form shows the agent is alive, not that it progressed [R][V]. The turn's
    own deadline (5 s) is far off: a heartbeat that counted as progress would reach it
    instead, with another message."""
    states(api, BEFORE)
    api.on(*RUN, beating(simple(type="text", content="On it."), beats, small=small))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        turn = nemo.session(SID).chat("make a video", idle_timeout=0.3, timeout=5)
        with pytest.raises(nemo_sync.APITimeoutError, match="nothing but heartbeats"):
            async with turn:
                async for _ in turn:
                    pass
    assert turn.heartbeats >= len(beats)  # they came, and were read as heartbeats
    assert [type(e).__name__ for e in turn.events] == ["TextEvent"]
    assert api.count(*RUN) == 1


@pytest.mark.parametrize("small", CHUNKINGS)
async def test_a_mixed_stream_of_both_forms_and_every_heartbeat(
    api: ScriptedServer, small: bool
) -> None:
    """ADK's events [A] and the reference's [R] in one stream, between heartbeats of every
    form [R][V]: each maps to the same typed events, in order."""
    states(api, BEFORE, AFTER)
    api.on(
        *RUN,
        sse(
            [
                HEARTBEATS["comment"],
                adk({"functionCall": {"id": "c1", "name": "add_bgm", "args": {"media": "m2"}}}),
                HEARTBEATS["event-heartbeat"],
                simple(type="tool_result", name="add_bgm", result={"ok": True}),
                HEARTBEATS["empty-data"],
                adk({"text": "Added "}, partial=True),
                adk({"text": "Lo-fi."}, partial=True),
                adk({"text": "Added Lo-fi."}),
                HEARTBEATS["type-heartbeat"],
                simple(type="text", content=" Click the Export button when ready."),
                simple(type="progress", percent=100),  # a type [R] does not list: kept
            ],
            small=small,
        ),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        async with nemo.session(SID).chat("add the lo-fi track") as turn:
            kinds = [type(event).__name__ async for event in turn]
        result = await turn.result()
    assert kinds == [
        "HeartbeatEvent",
        "ToolCallEvent",
        "HeartbeatEvent",
        "ToolResultEvent",
        "HeartbeatEvent",
        "TextEvent",
        "TextEvent",
        "TextEvent",
        "HeartbeatEvent",
        "TextEvent",
        "UnknownEvent",
    ]
    assert turn.heartbeats == 4
    assert result.text == "Added Lo-fi. Click the Export button when ready."
    assert [a.kind for a in result.suggested_actions] == [nemo_sync.SuggestedKind.EXPORT]
    assert [c.name for c in result.tool_calls] == ["add_bgm"]
    assert result.events[-1] == nemo_sync.UnknownEvent({"type": "progress", "percent": 100})
    assert [c.sentence for c in result.changes] == ["Added audio track 'Lo-fi' (0-10 s, 35%)"]


# ---- a stream that never started: recover only when the message may have arrived ----------


class HostileServer:
    """Raw HTTP/1.1 on a socket, so a test decides what happens below aiohttp's level.

    State reads are answered with the next draft in ``drafts`` (the last repeats), each on
    its own connection. ``POST /run_sse`` is read whole and then the connection is closed
    without a word (``"hang-up"``: the message may be in progress at the service); with
    ``"refuse"`` the server stops listening after the first state read, so the POST's
    connection is refused and the message never leaves.
    """

    def __init__(self, mode: Literal["hang-up", "refuse"], *drafts: dict[str, Any]) -> None:
        self.mode = mode
        self.drafts = list(drafts)
        self.seen: list[tuple[str, str]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    def count(self, method: str, path: str) -> int:
        return self.seen.count((method, path))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
            lengths = [v for k, v in fields.items() if k.lower() == "content-length"]
            await reader.readexactly(int(lengths[0]) if lengths else 0)
            self.seen.append((method, path))
            if method != "GET":
                return  # the request was read whole: hang up without answering
            reads = self.count(method, path)
            draft = self.drafts[min(reads, len(self.drafts)) - 1]
            body = json.dumps({"code": 0, "message": "ok", "data": {"state": {"draft": draft}}})
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            await writer.drain()
            if self.mode == "refuse" and self._server is not None:
                self._server.close()  # nobody listens any more: the next connect is refused
        finally:
            writer.close()

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_send_recovers_when_the_connection_drops_before_any_event(
    waits: list[float],
) -> None:
    """The POST was read, then the connection closed before a byte of reply: the agent may be
    working on the message, so send() follows the recovery procedure [V 3.6] (wait 30 s, read
    the state) instead of failing, and never sends the message again."""
    async with HostileServer("hang-up", BEFORE, AFTER) as server:
        async with NemoClient(base_url=server.url, token="t") as nemo:
            result = await nemo.session(SID).send("add background music")
    assert result.recovered
    assert [c.sentence for c in result.changes] == ["Added audio track 'Lo-fi' (0-10 s, 35%)"]
    assert server.count(*RUN) == 1
    assert server.count(*STATE) == 2  # before the turn, then the recovery read
    assert waits == [RECOVER_FIRST_WAIT]


async def test_a_refused_connection_is_raised_without_recovery(waits: list[float]) -> None:
    """The message never left (the connection was refused): there is nothing to recover, so
    the error is raised as it is; opening the stream again is safe and was tried."""
    async with HostileServer("refuse", BEFORE) as server:
        async with NemoClient(base_url=server.url, token="t") as nemo:
            with pytest.raises(nemo_sync.APIConnectionError, match="could not connect") as caught:
                await nemo.session(SID).send("add background music")
    assert not isinstance(caught.value, nemo_sync.StreamInterruptedError)
    assert caught.value.request_sent is False
    assert server.seen == [STATE]  # the state read before the turn, and no POST
    assert RECOVER_FIRST_WAIT not in waits  # recovery never began: its first wait is 30 s
