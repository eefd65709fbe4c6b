"""ADK events become typed events; new kinds never crash; errors raise."""

from __future__ import annotations

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
from nemo_sync._sse import ServerSentEvent, SSEHeartbeat


def test_text_tool_call_and_result_in_camel_and_snake_case() -> None:
    camel = {
        "author": "nemo_agent",
        "partial": True,
        "content": {
            "parts": [
                {"text": "Syncing"},
                {"functionCall": {"id": "c1", "name": "beat_sync", "args": {"every": 2}}},
                {"functionResponse": {"id": "c1", "name": "beat_sync", "response": {"ok": True}}},
            ]
        },
        "turnComplete": True,
    }
    snake = {
        "author": "nemo_agent",
        "partial": True,
        "content": {
            "parts": [
                {"text": "Syncing"},
                {"function_call": {"id": "c1", "name": "beat_sync", "args": {"every": 2}}},
                {"function_response": {"id": "c1", "name": "beat_sync", "response": {"ok": True}}},
            ]
        },
        "turn_complete": True,
    }
    expected = [
        TextEvent("Syncing", True, "nemo_agent"),
        ToolCallEvent("c1", "beat_sync", {"every": 2}),
        ToolResultEvent("c1", "beat_sync", {"ok": True}),
        TurnCompleteEvent(),
    ]
    assert parse_adk_event(camel) == expected
    assert parse_adk_event(snake) == expected


def test_new_kinds_become_unknown_events() -> None:
    assert parse_adk_event({"content": {"parts": [{"inlineData": {"x": 1}}]}}) == [
        UnknownEvent({"inlineData": {"x": 1}})
    ]
    assert parse_adk_event({"something": "new"}) == [UnknownEvent({"something": "new"})]
    assert from_sse(ServerSentEvent("not json")) == [UnknownEvent("not json")]
    assert parse_adk_event([1]) == [UnknownEvent([1])]


def test_a_state_delta_only_event_is_quiet() -> None:
    assert parse_adk_event({"actions": {"stateDelta": {"draft_version": 2}}}) == []


def test_heartbeats() -> None:
    assert from_sse(SSEHeartbeat("ping")) == [HeartbeatEvent()]


@pytest.mark.parametrize("key", ["errorCode", "error_code"])
def test_an_error_code_raises_a_typed_error(key: str) -> None:
    with pytest.raises(AgentError, match="quota exceeded"):
        parse_adk_event({key: "RESOURCE_EXHAUSTED", "errorMessage": "quota exceeded"})


def test_an_error_event_raises() -> None:
    with pytest.raises(AgentError):
        from_sse(ServerSentEvent("boom", event="error"))
