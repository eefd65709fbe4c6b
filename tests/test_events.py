"""ADK events become typed events; keys in either case; new kinds never crash; errors raise."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemo_sync import AgentError
from nemo_sync._events import (
    HeartbeatEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnCompleteEvent,
    UnknownEvent,
    from_sse,
    parse_adk_event,
)
from nemo_sync._sse import ServerSentEvent, SSEDecoder, SSEHeartbeat

CAMEL: dict[str, Any] = {
    "author": "nemo_agent",
    "invocationId": "e-1",
    "partial": True,
    "content": {
        "role": "model",
        "parts": [
            {"text": "Syncing"},
            {"functionCall": {"id": "c1", "name": "beat_sync", "args": {"every": 2}}},
            {"functionResponse": {"id": "c1", "name": "beat_sync", "response": {"ok": True}}},
        ],
    },
    "turnComplete": True,
}
SNAKE: dict[str, Any] = {
    "author": "nemo_agent",
    "invocation_id": "e-1",
    "partial": True,
    "content": {
        "role": "model",
        "parts": [
            {"text": "Syncing"},
            {"function_call": {"id": "c1", "name": "beat_sync", "args": {"every": 2}}},
            {"function_response": {"id": "c1", "name": "beat_sync", "response": {"ok": True}}},
        ],
    },
    "turn_complete": True,
}


@pytest.mark.parametrize("raw", [CAMEL, SNAKE], ids=["camelCase", "snake_case"])
def test_every_part_becomes_a_typed_event_in_order(raw: dict[str, Any]) -> None:
    assert parse_adk_event(raw) == [
        TextEvent("Syncing", True, "nemo_agent"),
        ToolCallEvent("c1", "beat_sync", {"every": 2}),
        ToolResultEvent("c1", "beat_sync", {"ok": True}),
        TurnCompleteEvent(),
    ]


def test_each_event_keeps_the_whole_adk_event_out_of_eq_and_repr() -> None:
    events = parse_adk_event(CAMEL)
    assert all(getattr(e, "raw", None) is CAMEL for e in events)
    assert "invocationId" not in repr(events[0])
    assert TextEvent("a", raw={"x": 1}) == TextEvent("a", raw={"y": 2})


@pytest.mark.parametrize(
    ("partial", "expected"),
    [(True, True), (False, False), (None, False), ("true", False), (1, False)],
)
def test_partial_means_the_json_true(partial: object, expected: bool) -> None:
    raw = {"content": {"parts": [{"text": "hi"}]}, "partial": partial}
    assert parse_adk_event(raw) == [TextEvent("hi", expected)]


def test_thoughts_and_empty_texts_are_not_for_the_user() -> None:
    raw = {"content": {"parts": [{"text": "plan...", "thought": True}, {"text": ""}]}}
    assert parse_adk_event(raw) == []
    assert parse_adk_event({"content": {"parts": [{"text": "ok", "thought": False}]}}) == [
        TextEvent("ok")
    ]


def test_odd_tool_fields_are_made_safe() -> None:
    raw = {
        "author": 7,
        "content": {
            "parts": [
                {"functionCall": {"name": "export"}},
                {"functionCall": {"id": 3, "name": None, "args": "not an object"}},
                {"functionResponse": {"name": "export"}},
            ]
        },
    }
    assert parse_adk_event(raw) == [
        ToolCallEvent(None, "export", {}),
        ToolCallEvent(None, "", {}),
        ToolResultEvent(None, "export", None),
    ]


def test_new_kinds_become_unknown_events() -> None:
    assert parse_adk_event({"content": {"parts": [{"inlineData": {"x": 1}}, "odd", 5]}}) == [
        UnknownEvent({"inlineData": {"x": 1}}),
        UnknownEvent("odd"),
        UnknownEvent(5),
    ]
    assert parse_adk_event({"something": "new"}) == [UnknownEvent({"something": "new"})]
    assert parse_adk_event({"content": {"parts": []}, "actions": {}}) == [
        UnknownEvent({"content": {"parts": []}, "actions": {}})
    ]
    assert parse_adk_event([1]) == [UnknownEvent([1])]
    assert parse_adk_event(None) == [UnknownEvent(None)]


def test_bookkeeping_only_events_are_quiet() -> None:
    assert parse_adk_event({"actions": {"stateDelta": {"draft_version": 2}}}) == []
    assert parse_adk_event({"content": {"parts": [{"text": "", "thought": True}]}}) == []


def test_turn_complete_alone() -> None:
    assert parse_adk_event({"turn_complete": True}) == [TurnCompleteEvent()]
    assert parse_adk_event({"turnComplete": False, "actions": {"stateDelta": {}}}) == []


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"errorCode": "RESOURCE_EXHAUSTED", "errorMessage": "quota exceeded"}, "quota exceeded"),
        ({"error_code": "INTERNAL", "error_message": "model overloaded"}, "model overloaded"),
        ({"errorCode": "SAFETY"}, "error SAFETY"),
        # An error beats the text that came with it: the turn failed.
        ({"errorCode": "X", "content": {"parts": [{"text": "half"}]}}, "error X"),
    ],
)
def test_an_error_code_raises_a_typed_error(raw: dict[str, Any], match: str) -> None:
    with pytest.raises(AgentError, match=match) as caught:
        parse_adk_event(raw)
    assert "not sent again" in str(caught.value)
    assert caught.value.endpoint == "POST /run_sse"


def test_a_numeric_error_code_is_kept_as_the_code() -> None:
    with pytest.raises(AgentError) as caught:
        parse_adk_event({"errorCode": 500, "errorMessage": "boom"})
    assert caught.value.code == 500


@pytest.mark.parametrize("code", [None, "", 0])
def test_an_empty_error_code_is_no_error(code: object) -> None:
    assert parse_adk_event({"errorCode": code, "content": {"parts": [{"text": "ok"}]}}) == [
        TextEvent("ok")
    ]


def test_from_sse() -> None:
    assert from_sse(SSEHeartbeat("ping")) == [HeartbeatEvent()]
    assert from_sse(ServerSentEvent("not json")) == [UnknownEvent("not json")]
    assert from_sse(ServerSentEvent("[1, 2]")) == [UnknownEvent([1, 2])]
    assert from_sse(ServerSentEvent("", "done")) == [UnknownEvent("")]
    assert from_sse(ServerSentEvent(json.dumps(CAMEL)))[0] == TextEvent(
        "Syncing", True, "nemo_agent"
    )


def test_an_error_event_raises() -> None:
    with pytest.raises(AgentError, match="boom"):
        from_sse(ServerSentEvent("boom", event="error"))


def test_a_stream_end_to_end() -> None:
    call = {"functionCall": {"id": "c", "name": "set_volume", "args": {"v": 0.35}}}
    body = (
        b": ping\n\n"
        + b"data: "
        + json.dumps({"content": {"parts": [call]}}).encode()
        + b"\n\ndata:\n\n"
        + 'data: {"partial": true, "content": {"parts": [{"text": "音量"}]}}\r\n\r\n'.encode()
        + b'data: {"turnComplete": true}\n\n'
    )
    decoder = SSEDecoder()
    events = [e for item in decoder.feed(body) + decoder.end() for e in from_sse(item)]
    assert events == [
        HeartbeatEvent(),
        ToolCallEvent("c", "set_volume", {"v": 0.35}),
        HeartbeatEvent(),
        TextEvent("音量", True),
        TurnCompleteEvent(),
    ]
