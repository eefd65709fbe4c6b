"""Chat turns over real sockets, with a server that sends exact bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
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


def sse(blocks: Sequence[bytes], *, pause: float = 0.0, cut: bool = False) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for block in blocks:
            await response.write(block)
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
