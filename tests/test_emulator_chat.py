"""Emulator: chat turns over SSE (ADK's events, or the reference's simple ones), silent turns,
heartbeats, credits."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator, FaultSet
from tests.emulator_raw import Raw, raw_client

TITLE = 'add the title "Urban Dreams" for 2 seconds'
# A minimal ISO-BMFF header: enough for the SDK's upload checks (the emulator never decodes it).
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0)


async def session_with_clip(raw: Raw) -> str:
    session_id = await raw.new_session()
    reply = await raw.upload(session_id, "city.mp4", b"\x00" * 64)
    assert reply.status == 200, reply.body
    return session_id


async def test_an_edit_turn_in_adk_format(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, TITLE)
    assert stream.error is None
    assert stream.raw.startswith(": ping\n\n")  # the agent is thinking
    events = stream.events
    assert {e["invocationId"] for e in events} == {events[0]["invocationId"]}
    assert all(e["author"] == "nemo_agent" and e["id"] and e["timestamp"] for e in events)
    calls, responses = stream.calls, stream.responses
    assert [c["name"] for c in calls] == ["add_clips", "add_title"]
    assert [r["id"] for r in responses] == [c["id"] for c in calls]
    assert calls[1]["args"] == {"text": "Urban Dreams", "duration_ms": 2000}
    # Streamed chunks, then the whole text once, then the end of the turn.
    assert len(stream.partial_texts) >= 2
    assert "".join(stream.partial_texts) == stream.texts[0]
    assert "Urban Dreams" in stream.texts[0]
    assert events[-1] == {**events[-1], "turnComplete": True}
    assert "content" not in events[-1]
    version_delta = [e["actions"]["stateDelta"] for e in events if e["actions"]["stateDelta"]]
    assert version_delta == [{"draft_version": 1}]
    state = await raw.state(session_id)
    assert state.data["version"] == 1
    title = next(t for t in state.data["state"]["draft"]["t"] if t["tt"] == 7)
    assert title["sg"][0]["x"] == "Urban Dreams"
    assert emu.sessions[session_id].turns == 1


async def test_silent_turns_edit_without_text(raw: Raw, emu: Emulator) -> None:
    emu.config.silent_ratio = 1.0
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, "make it 16:9")
    assert stream.error is None
    assert stream.texts == []
    assert stream.partial_texts == []
    assert not stream.turn_complete
    assert [c["name"] for c in stream.calls] == ["add_clips", "set_aspect_ratio"]
    assert (await raw.state(session_id)).data["state"]["draft"]["m"]["aspect"] == "16:9"


async def test_unknown_instructions_get_help_not_silence(raw: Raw, emu: Emulator) -> None:
    emu.config.silent_ratio = 1.0
    session_id = await session_with_clip(raw)
    before = await raw.credits()
    stream = await raw.chat(session_id, "what's the weather like?")
    assert stream.calls == []
    assert "sync the background music" in stream.texts[0]
    assert stream.turn_complete
    assert await raw.credits() == before  # nothing edited, nothing charged
    assert (await raw.state(session_id)).data["version"] == 0


async def test_chinese_instructions_get_chinese_replies(raw: Raw) -> None:
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, "改成横屏")
    assert stream.calls[-1]["args"] == {"aspect": "16:9"}
    assert re.search(r"[\u4e00-\u9fff]", stream.texts[0])
    help_stream = await raw.chat(session_id, "你好")
    assert "时间线" in help_stream.texts[0]


async def test_silent_ratio_is_seeded_per_session() -> None:
    async def pattern(seed: int) -> list[bool]:
        async with Emulator(seed=seed) as emu, raw_client(emu) as raw:
            await raw.login()
            session_id = await session_with_clip(raw)
            silent = []
            for n in range(24):
                stream = await raw.chat(session_id, f"make it {'9:16' if n % 2 else '1:1'}")
                silent.append(not stream.texts)
            return silent

    first, again, other = await pattern(7), await pattern(7), await pattern(8)
    assert first == again
    assert first != other
    assert 2 <= sum(first) <= 14  # about 30% of 24


async def test_gui_phrases_appear_in_replies(raw: Raw, emu: Emulator) -> None:
    emu.config.gui_phrase_ratio = 1.0
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, "make it square")
    assert re.search(r"click|open the timeline panel|drag", stream.texts[0], re.IGNORECASE)


async def test_heartbeats_while_thinking() -> None:
    async with Emulator(chat_latency=0.06, heartbeat_interval=0.01) as emu, raw_client(emu) as raw:
        await raw.login()
        session_id = await session_with_clip(raw)
        stream = await raw.chat(session_id, "make it 1:1")
        assert stream.comments >= 2
        assert stream.empty_data >= 2
        assert stream.raw.index("data: \n\n") < stream.raw.index('"functionCall"')


async def test_edit_turns_cost_a_credit_and_2001_without(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    await raw.chat(session_id, "make it 1:1")
    assert (await raw.credits())["available"] == 99
    emu.set_credits(raw.token or "", available=0)
    reply = await raw.call("POST", "/run_sse", json_body=raw.chat_body(session_id, "make it 1:1"))
    assert (reply.status, reply.code) == (200, 2001)
    # What a client builds <web>/register?bind=<user_id> from [R].
    assert reply.data == {"user_id": emu.account(raw.token or "").id}
    # Talking costs nothing.
    assert (await raw.chat(session_id, "hello")).texts


async def test_a_turn_finishes_on_the_server_when_the_client_leaves() -> None:
    async with Emulator(chat_latency=0.05, heartbeat_interval=0.01) as emu, raw_client(emu) as raw:
        await raw.login()
        session_id = await session_with_clip(raw)
        async with raw.http.post(
            emu.url + "/run_sse",
            json=raw.chat_body(session_id, "make it 16:9"),
            headers=raw.headers(),
        ) as resp:
            await resp.content.readline()  # the first heartbeat, then hang up
        for _ in range(100):
            if emu.sessions[session_id].version == 1:
                break
            await asyncio.sleep(0.005)
        assert emu.sessions[session_id].draft["m"]["aspect"] == "16:9"


async def test_turns_on_one_session_run_one_at_a_time(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    streams = await asyncio.gather(
        raw.chat(session_id, "make it 16:9"), raw.chat(session_id, "make it 1:1")
    )
    versions = sorted(
        e["actions"]["stateDelta"]["draft_version"]
        for s in streams
        for e in s.events
        if e["actions"]["stateDelta"]
    )
    assert versions == [1, 2]


async def test_the_stream_cut_fault_keeps_the_edit(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    fault = emu.faults.add("POST /run_sse", sse_cut_after=1)
    stream = await raw.chat(session_id, "make it 16:9")
    assert stream.error is not None
    assert len(stream.events) == 1
    assert fault.hits == 1
    assert (await raw.state(session_id)).data["state"]["draft"]["m"]["aspect"] == "16:9"


async def test_the_drop_fault_cuts_the_first_event_in_half(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    emu.faults.add("POST /run_sse", drop=True)
    stream = await raw.chat(session_id, "make it 16:9")
    assert stream.error is not None
    assert stream.events == []
    assert '"invocationId"' in stream.raw
    assert (await raw.state(session_id)).data["version"] == 1


async def test_events_are_compact_json_as_adk_writes_them(raw: Raw) -> None:
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, 'add the title "城市之梦" for 2 seconds')
    lines = [line for line in stream.raw.split("\n") if line.startswith("data: {")]
    assert lines
    for line in lines:
        body = line.removeprefix("data: ")
        assert json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")) == body
    assert "城市之梦" in stream.raw  # UTF-8 as is, not \\u escapes
    assert all("invocationId" in e for e in stream.events)


async def test_the_agent_crash_fault_streams_adks_error_event(raw: Raw, emu: Emulator) -> None:
    session_id = await session_with_clip(raw)
    emu.faults.add("POST /run_sse", agent_crash="model quota exhausted")
    stream = await raw.chat(session_id, TITLE)  # asserts HTTP 200 and text/event-stream
    assert stream.error is None  # a clean end, as ADK's
    [event] = stream.events
    assert event["error"] == "RuntimeError: model quota exhausted"
    details = event["error_details"]
    assert (details["error_type"], details["error_message"]) == (
        "RuntimeError",
        "model quota exhausted",
    )
    assert details["timestamp"] == pytest.approx(emu.clock.now(), abs=5)
    # The exact form of google-adk 2.13's line: json.dumps defaults after "data: ".
    [line] = [x for x in stream.raw.split("\n") if x.startswith("data: {")]
    assert line == "data: " + json.dumps({"error": event["error"], "error_details": details})
    assert emu.sessions[session_id].version == 0  # the crashed turn changed nothing
    assert (await raw.credits())["available"] == 100
    assert emu.requests[-1].status == 200
    after = await raw.chat(session_id, TITLE)  # once only
    assert after.texts


def test_agent_crash_true_has_a_default_message() -> None:
    fault = FaultSet().add("POST /run_sse", agent_crash=True)
    assert fault.agent_crash == "the agent crashed (injected fault)"
    assert FaultSet().add("GET /x", omit_output_url=True).omit_output_url


# ---- the reference's simple events [R] (Emulator(chat_events="simple")) -------------------


@pytest.mark.nemo_emulator(chat_events="simple", chat_latency=0.03, heartbeat_interval=0.01)
async def test_simple_chat_events_on_the_wire(raw: Raw) -> None:
    """[R]: ``{"type": "text", "content"}``, ``tool_call`` with name and args, ``tool_result``
    with name and result, ``{"type": "heartbeat"}``; no ADK keys and no done event."""
    session_id = await session_with_clip(raw)
    stream = await raw.chat(session_id, TITLE)
    assert stream.error is None
    assert stream.comments == stream.empty_data == 0  # heartbeats are events here
    assert stream.raw.startswith('data: {"type":"heartbeat"}\n\n')
    kinds = [e["type"] for e in stream.events]
    assert kinds[0] == "heartbeat"
    assert set(kinds) == {"heartbeat", "tool_call", "tool_result", "text"}
    assert kinds[-1] == "text"  # the stream just ends: no done, no turnComplete
    work = [e for e in stream.events if e["type"] != "heartbeat"]
    calls = [e for e in work if e["type"] == "tool_call"]
    results = [e for e in work if e["type"] == "tool_result"]
    assert [set(e) for e in calls] == [{"type", "name", "args"}] * 2
    assert [set(e) for e in results] == [{"type", "name", "result"}] * 2
    assert [c["name"] for c in calls] == [r["name"] for r in results] == ["add_clips", "add_title"]
    assert calls[1]["args"] == {"text": "Urban Dreams", "duration_ms": 2000}
    texts = [e["content"] for e in work if e["type"] == "text"]
    assert len(texts) >= 2  # streamed in pieces that join to the reply
    assert "Urban Dreams" in "".join(texts)
    assert all(set(e) == {"type", "content"} for e in work if e["type"] == "text")
    assert (await raw.state(session_id)).data["version"] == 1


@pytest.mark.parametrize(
    "form",
    [
        pytest.param("adk", marks=pytest.mark.nemo_emulator(chat_events="adk")),
        pytest.param("simple", marks=pytest.mark.nemo_emulator(chat_events="simple")),
    ],
)
async def test_a_whole_turn_through_the_sdk_in_either_form(
    nemo_client: NemoClient, nemo_emulator: Emulator, form: str
) -> None:
    """[A][R]: the SDK reads both forms to the same result: the reply, the tool calls, the
    changes."""
    assert nemo_emulator.config.chat_events == form
    session = await nemo_client.create_session()
    await session.upload(CLIP, filename="city.mp4")
    result = await session.send(TITLE)
    assert not result.silent
    assert not result.recovered
    assert "Urban Dreams" in result.text
    assert [c.name for c in result.tool_calls] == ["add_clips", "add_title"]
    assert [c.kind for c in result.changes] == ["track_added", "track_added"]
    assert any("Urban Dreams" in c.sentence for c in result.changes)
    assert nemo_emulator.sessions[session.id].draft == result.draft_after.to_wire()
