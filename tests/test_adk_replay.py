"""Real google-adk 2.13 ``/run_sse`` output, replayed byte for byte through ``Session.chat``.

The recordings in ``tests/adk_recordings/`` were made by ``scripts/record_adk_streams.py``
against ADK's own API server (see the README there), so these tests check the SDK against
bytes this project did not write. Each stream is served whole, and also cut into 1-byte and
7-byte writes, so event and UTF-8 boundaries fall everywhere. The values the agent was told
to produce come from the manifest (written from the recording script's own inputs) or are
spelled out here; the test never derives them from the recording it checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import (
    AgentError,
    ChatResult,
    NemoClient,
    StateDeltaEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
)

RECORDINGS = Path(__file__).parent / "adk_recordings"
MANIFEST: dict[str, Any] = json.loads((RECORDINGS / "manifest.json").read_text("utf-8"))
SID = "s-replay"
# Both places the state may put the draft (contract v1 and v2), so the test holds across
# the SDK's move from one to the other.
STATE_BODY = {"code": 0, "data": {"state": {"draft": {"t": []}}, "draft": {"t": []}}}
# None: the whole recording in one write.
CHUNKINGS = [None, 1, 7]

TOOL_ARGS = {"track": 1, "volume": 0.35, "label": "Lo-fi 低保真"}
TOOL_RESPONSE = {"ok": True, "track": 1, "volume": 0.35}


def recording(name: str) -> bytes:
    return (RECORDINGS / f"{name}.sse").read_bytes()


class ReplayServer:
    """Answers ``/run_sse`` with one recording's exact bytes, and the state with an empty draft."""

    def __init__(self, name: str, chunk: int | None) -> None:
        self.body = recording(name)
        self.content_type = MANIFEST["files"][f"{name}.sse"]["headers"]["content-type"]
        self.chunk = chunk
        self.posts = 0
        self.state_reads = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _run_sse(self, request: web.Request) -> web.StreamResponse:
        self.posts += 1
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": self.content_type})
        await response.prepare(request)
        step = self.chunk or len(self.body)
        for start in range(0, len(self.body), step):
            await response.write(self.body[start : start + step])
        await response.write_eof()
        return response

    async def _state(self, request: web.Request) -> web.StreamResponse:
        self.state_reads += 1
        return web.json_response(STATE_BODY)

    async def __aenter__(self) -> ReplayServer:
        app = web.Application()
        app.router.add_post("/run_sse", self._run_sse)
        app.router.add_get(f"/api/state/nemo_agent/me/{SID}/latest", self._state)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture(params=CHUNKINGS, ids=lambda c: "whole" if c is None else f"{c}-byte")
def chunk(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


async def replay(name: str, chunk: int | None) -> tuple[list[nemo_sync.ChatEvent], ChatResult]:
    """The events the SDK yields for a recording, and the turn's result."""
    async with (
        ReplayServer(name, chunk) as server,
        NemoClient(base_url=server.url, token="t") as client,
    ):
        async with client.session(SID).chat(name, track_changes=False) as turn:
            events = [event async for event in turn]
        result = await turn.result()
        assert server.posts == 1
        return events, result


async def replay_error(name: str, chunk: int | None) -> tuple[list[Any], AgentError]:
    """The events before the error, and the error."""
    events: list[Any] = []
    async with (
        ReplayServer(name, chunk) as server,
        NemoClient(base_url=server.url, token="t") as client,
    ):
        with pytest.raises(AgentError) as caught:
            async with client.session(SID).chat(name, track_changes=False) as turn:
                async for event in turn:
                    events.append(event)
        assert server.posts == 1
    return events, caught.value


def texts(events: list[nemo_sync.ChatEvent]) -> list[tuple[str, bool]]:
    return [(e.text, e.partial) for e in events if isinstance(e, TextEvent)]


def test_the_recordings_are_the_bytes_adk_sent() -> None:
    """Every recording matches its manifest: no line-end normalisation, no hand edits."""
    assert MANIFEST["google_adk"] == "2.13.0"
    on_disk = {p.name for p in RECORDINGS.glob("*.sse")}
    assert on_disk == set(MANIFEST["files"])
    for name, meta in MANIFEST["files"].items():
        body = (RECORDINGS / name).read_bytes()
        assert meta["status"] == 200, name
        assert len(body) == meta["bytes"], name
        assert hashlib.sha256(body).hexdigest() == meta["sha256"], name


def test_adk_frames_every_event_as_one_data_line() -> None:
    """What docs/streaming.md says ADK sends: ``data: <json>`` + blank line, LF, nothing else.

    The crash frame is the exception in style only: ``json.dumps`` (", " separators, ASCII
    escapes) where events are pydantic's compact UTF-8.
    """
    for name in MANIFEST["files"]:
        body = (RECORDINGS / name).read_bytes()
        assert b"\r" not in body, name
        assert body.endswith(b"\n\n"), name
        for block in body[:-2].split(b"\n\n"):
            assert block.startswith(b"data: "), (name, block[:40])
            assert b"\n" not in block, name
            event = json.loads(block[len(b"data: ") :])
            if "error" in event:
                assert block.startswith(b'data: {"error": "AgentCrashError: '), name
                assert set(event) == {"error", "error_details"}
                assert set(event["error_details"]) == {"error_type", "error_message", "timestamp"}
            else:
                # Every real event carries its actions, stateDelta included (empty unless
                # the agent set something): why only a non-empty one is a StateDeltaEvent.
                assert "stateDelta" in event["actions"], name
                assert {"id", "invocationId", "author", "timestamp"} <= set(event), name


def test_every_recording_is_replayed_here() -> None:
    replayed = {
        "plain_text",
        "partial_then_final",
        "tool_call",
        "tool_only",
        "non_ascii",
        "large_reply",
        "error_code",
        "state_delta",
        "agent_raises",
        "agent_raises_after_tool",
    }
    assert {n.removesuffix(".sse") for n in MANIFEST["files"]} == replayed


async def test_plain_text(chunk: int | None) -> None:
    events, result = await replay("plain_text", chunk)
    assert events == [TextEvent("Synced the music to your cuts.", False, "nemo_agent")]
    # ADK puts an empty stateDelta on every event: that is not a state change.
    assert events[0].raw["actions"]["stateDelta"] == {}
    assert result.text == "Synced the music to your cuts."
    assert not result.silent


async def test_partial_chunks_then_the_final_text(chunk: int | None) -> None:
    events, result = await replay("partial_then_final", chunk)
    assert texts(events) == [
        ("Synced ", True),
        ("the music ", True),
        ("to your cuts.", True),
        ("Synced the music to your cuts.", False),
    ]
    assert len(events) == 4
    assert result.text == "Synced the music to your cuts."


async def test_a_tool_call_and_its_response(chunk: int | None) -> None:
    events, result = await replay("tool_call", chunk)
    assert events == [
        ToolCallEvent("call-1", "set_volume", TOOL_ARGS),
        ToolResultEvent("call-1", "set_volume", TOOL_RESPONSE),
        TextEvent("Set the music to 35%.", False, "nemo_agent"),
    ]
    assert result.tool_calls == (ToolCallEvent("call-1", "set_volume", TOOL_ARGS),)
    assert result.text == "Set the music to 35%."


async def test_a_tool_only_turn_is_silent_and_reads_the_state(chunk: int | None) -> None:
    async with (
        ReplayServer("tool_only", chunk) as server,
        NemoClient(base_url=server.url, token="t") as client,
    ):
        async with client.session(SID).chat("tool_only", track_changes=False) as turn:
            events = [event async for event in turn]
        result = await turn.result()
        assert server.state_reads == 1
    assert events == [
        ToolCallEvent("call-1", "set_volume", TOOL_ARGS),
        ToolResultEvent("call-1", "set_volume", TOOL_RESPONSE),
    ]
    assert result.silent
    assert result.changes == ()


async def test_non_ascii_text_arrives_intact(chunk: int | None) -> None:
    expected = MANIFEST["files"]["non_ascii.sse"]["expected"]["text"]
    assert expected == "已把背景音乐对齐到剪辑点 🎵✨ — 标题「城市之梦」现在 0–3 秒。👍🏽"
    events, result = await replay("non_ascii", chunk)
    assert texts(events) == [(expected[:9], True), (expected, False)]
    assert result.text == expected


@pytest.mark.parametrize("chunk", [None, 7, 4093], ids=["whole", "7-byte", "4093-byte"])
async def test_a_300_kb_reply_arrives_intact(chunk: int | None) -> None:
    # 1-byte writes of 300 KB would be 300 000 HTTP chunks: minutes of test time for a
    # boundary case the small recordings already cover.
    expected = MANIFEST["files"]["large_reply.sse"]["expected"]
    events, result = await replay("large_reply", chunk)
    assert len(events) == 1
    assert isinstance(events[0], TextEvent)
    assert len(events[0].text) == expected["text_chars"] > 250_000
    assert hashlib.sha256(events[0].text.encode()).hexdigest() == expected["text_sha256"]
    assert result.text == events[0].text


async def test_an_error_code_raises_agent_error(chunk: int | None) -> None:
    events, error = await replay_error("error_code", chunk)
    assert events == []
    assert "MALFORMED_FUNCTION_CALL" in str(error)
    assert "The model produced a malformed tool call." in str(error)


async def test_a_state_delta_is_visible_on_its_event(chunk: int | None) -> None:
    events, result = await replay("state_delta", chunk)
    assert events == [
        StateDeltaEvent({"draft_version": 7, "last_edit": "set_volume"}),
        TextEvent("Saved.", False, "nemo_agent"),
    ]
    assert result.text == "Saved."


async def test_an_agent_that_raises_is_an_agent_error(chunk: int | None) -> None:
    # ADK ends this stream with HTTP 200 and nothing but its error event: before the fix
    # the SDK reported a clean silent turn ("finished without a reply").
    events, error = await replay_error("agent_raises", chunk)
    assert events == []
    assert "AgentCrashError" in str(error)
    assert "the scripted agent crashed on purpose" in str(error)
    assert error.endpoint == "POST /run_sse"


async def test_an_agent_that_raises_after_a_tool_call_is_an_agent_error(
    chunk: int | None,
) -> None:
    events, error = await replay_error("agent_raises_after_tool", chunk)
    assert events == [
        ToolCallEvent("call-1", "set_volume", TOOL_ARGS),
        ToolResultEvent("call-1", "set_volume", TOOL_RESPONSE),
    ]
    assert "AgentCrashError: the scripted agent crashed on purpose" in str(error)


async def test_agent_error_from_send_as_well() -> None:
    """``send()`` is the other way in; a crashed agent must not come back as a ChatResult."""
    async with (
        ReplayServer("agent_raises", None) as server,
        NemoClient(base_url=server.url, token="t") as client,
    ):
        with pytest.raises(AgentError, match="AgentCrashError"):
            await client.session(SID).send("agent_raises")
        assert server.posts == 1
