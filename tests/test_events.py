"""ADK events become typed events; keys in either case; new kinds never crash; errors raise."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemo_sync import AgentError
from nemo_sync._events import (
    HeartbeatEvent,
    StateDeltaEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnCompleteEvent,
    UnknownEvent,
    clean_message,
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
    # ADK 2.13 puts these empty deltas on every event it streams.
    empty = {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}}
    assert parse_adk_event({"actions": empty}) == []
    assert parse_adk_event({"actions": {"artifactDelta": {"clip.mp4": 1}}}) == []
    assert parse_adk_event({"content": {"parts": [{"text": "", "thought": True}]}}) == []


@pytest.mark.parametrize("key", ["stateDelta", "state_delta"])
def test_a_state_delta_is_an_event(key: str) -> None:
    raw = {"author": "nemo_agent", "actions": {key: {"draft_version": 2, "bgm": None}}}
    events = parse_adk_event(raw)
    assert events == [StateDeltaEvent({"draft_version": 2, "bgm": None})]
    assert isinstance(events[0], StateDeltaEvent)
    assert events[0].raw is raw


def test_a_state_delta_comes_after_the_parts_and_before_turn_complete() -> None:
    raw = {
        "content": {"parts": [{"text": "Saved."}]},
        "actions": {"stateDelta": {"v": 3}},
        "turnComplete": True,
    }
    assert parse_adk_event(raw) == [
        TextEvent("Saved."),
        StateDeltaEvent({"v": 3}),
        TurnCompleteEvent(),
    ]


@pytest.mark.parametrize("delta", [{}, None, [], "v=3", 3])
def test_an_empty_or_malformed_state_delta_is_no_event(delta: object) -> None:
    assert parse_adk_event(
        {"content": {"parts": [{"text": "ok"}]}, "actions": {"stateDelta": delta}}
    ) == [TextEvent("ok")]
    assert parse_adk_event({"actions": "odd"}) == []


# ADK 2.13's API server, when the agent raises (api_server.py, run_agent_sse): json.dumps, so
# ", " separators and ASCII escapes, unlike the events themselves.
ADK_CRASH = (
    '{"error": "RuntimeError: tool \\u5931\\u8d25 failed", "error_details": {"error_type": '
    '"RuntimeError", "error_message": "tool \\u5931\\u8d25 failed", "timestamp": 1795977186.7}}'
)


def test_adk_crash_frame_raises_agent_error() -> None:
    with pytest.raises(AgentError) as caught:
        from_sse(ServerSentEvent(ADK_CRASH))
    message = str(caught.value)
    assert "The agent crashed: RuntimeError: tool 失败 failed." in message
    assert "not sent again" in message
    assert caught.value.endpoint == "POST /run_sse"
    assert caught.value.code is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"error": "ValueError: bad"}, "ValueError: bad"),
        ({"error": {"error_type": "KeyError", "error_message": "'x'"}}, "KeyError: 'x'"),
        ({"error": True, "error_details": {"error_type": "OSError"}}, "OSError"),
        ({"error": True, "errorDetails": {"message": "disk full"}}, "disk full"),
        ({"error": {"code": 7}}, '{"code": 7}'),
        # A crash beats whatever else the frame holds.
        ({"error": "E: x", "content": {"parts": [{"text": "half"}]}}, "E: x"),
    ],
)
def test_crash_frame_shapes(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(AgentError) as caught:
        parse_adk_event(raw)
    assert f"The agent crashed: {named}." in str(caught.value)


@pytest.mark.parametrize("error", [None, "", 0, False, {}])
def test_an_empty_error_field_is_no_crash(error: object) -> None:
    assert parse_adk_event({"error": error, "content": {"parts": [{"text": "ok"}]}}) == [
        TextEvent("ok")
    ]


def test_a_crash_message_is_cleaned() -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIzNDU2Nzg5"
    frame = {
        "error": f"HTTPError: 401 for Authorization: Bearer {secret}\x1b[2J\r\nretry" + "!" * 900,
        "error_details": {},
    }
    with pytest.raises(AgentError) as caught:
        parse_adk_event(frame)
    message = str(caught.value)
    assert secret not in message
    assert "eyJ" not in message
    assert "\x1b" not in message
    assert "\r" not in message
    assert "\n" not in message
    assert "HTTPError: 401 for Authorization:" in message
    assert "[redacted]" in message
    assert "!" * 300 not in message
    assert len(message) < 600


def test_an_error_code_message_is_cleaned_too() -> None:
    with pytest.raises(AgentError) as caught:
        parse_adk_event({"errorCode": "INTERNAL", "errorMessage": "api_key=AIzaSyA1b2C3d4E5f6\x07"})
    assert "AIzaSyA1b2C3d4E5f6" not in str(caught.value)
    assert "\x07" not in str(caught.value)
    assert "api_key=[redacted]" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("plain words stay", "plain words stay"),
        ("tabs\tand\nnew lines\r\n", "tabs and new lines"),
        ("bidi \u202eevil\u202c zero\u200bwidth", "bidi evil zero width"),
        ("token: abc.def", "token: [redacted]"),
        ('{"password": "hunter2"}', '{"password": "[redacted]"}'),
        ("Bearer tok-1", "Bearer [redacted]"),
        # Ids and paths are useful in a bug report and are not secrets.
        (
            "invocation e-86fba781-039a-4e0b-b813-528f824fd2d0 failed",
            "invocation e-86fba781-039a-4e0b-b813-528f824fd2d0 failed",
        ),
        (
            "in /usr/lib/python3.11/site-packages/google/adk/runners.py",
            "in /usr/lib/python3.11/site-packages/google/adk/runners.py",
        ),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc end", "key [redacted] end"),
        ("a" * 40, "a" * 40),  # letters only: a word, not a key
        ("中文错误 🎬", "中文错误 🎬"),
    ],
)
def test_clean_message(text: str, cleaned: str) -> None:
    assert clean_message(text) == cleaned


def test_clean_message_caps_the_length() -> None:
    assert clean_message("x" * 301) == "x" * 300 + "..."
    assert clean_message("x" * 300) == "x" * 300
    assert clean_message("é" * 50, limit=10) == "é" * 10 + "..."


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


# ---- the reference's simple form [R] ------------------------------------------------------


def test_the_simple_form_gives_the_same_typed_events_as_adk() -> None:
    """[R]: ``{"type": "text" | "tool_call" | "tool_result" | "heartbeat", ...}``."""
    text = {"type": "text", "content": "I'll generate your video now..."}
    call = {"type": "tool_call", "name": "generate_video_with_seedance", "args": {"s": 5}}
    result = {"type": "tool_result", "name": "generate_video_with_seedance", "result": {"ok": 1}}
    assert parse_adk_event(text) == [TextEvent("I'll generate your video now...")]
    assert parse_adk_event(call) == [ToolCallEvent(None, "generate_video_with_seedance", {"s": 5})]
    assert parse_adk_event(result) == [
        ToolResultEvent(None, "generate_video_with_seedance", {"ok": 1})
    ]
    assert parse_adk_event({"type": "heartbeat"}) == [HeartbeatEvent()]
    [event] = parse_adk_event(text)
    assert isinstance(event, TextEvent)
    assert event.raw is text  # the event as sent, as for ADK's


def test_simple_events_read_through_from_sse() -> None:
    assert from_sse(ServerSentEvent('{"type":"text","content":"Done."}')) == [TextEvent("Done.")]
    assert from_sse(ServerSentEvent('{"type": "heartbeat"}')) == [HeartbeatEvent()]


def test_odd_simple_fields_are_made_safe() -> None:
    assert parse_adk_event({"type": "tool_call"}) == [ToolCallEvent(None, "", {})]
    assert parse_adk_event({"type": "tool_call", "name": 3, "args": [1], "id": "c9"}) == [
        ToolCallEvent("c9", "", {})  # an id, should one come, still pairs call and result
    ]
    assert parse_adk_event({"type": "tool_result", "name": "x"}) == [
        ToolResultEvent(None, "x", None)
    ]
    assert parse_adk_event({"type": "text", "content": ""}) == []  # nothing to say
    # Text that is not a string is not words: kept, never shown, never a crash.
    assert parse_adk_event({"type": "text", "content": ["a"]}) == [
        UnknownEvent({"type": "text", "content": ["a"]})
    ]
    assert parse_adk_event({"type": "heartbeat", "at": 12}) == [HeartbeatEvent()]


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "done"},  # [R] has no done event; one would be new, not the end of the turn
        {"type": "progress", "percent": 40},
        {"type": "error", "content": "?"},  # undocumented: kept, the turn goes on
        {"type": 7},
        {"type": None, "x": 1},
    ],
)
def test_unknown_simple_types_are_kept_as_unknown_events(raw: dict[str, Any]) -> None:
    assert parse_adk_event(raw) == [UnknownEvent(raw)]


def test_an_error_in_a_simple_event_still_fails_the_turn() -> None:
    with pytest.raises(AgentError, match="The agent crashed: boom"):
        parse_adk_event({"type": "text", "content": "half", "error": "boom"})


def test_an_error_event_raises() -> None:
    with pytest.raises(AgentError, match="boom"):
        from_sse(ServerSentEvent("boom", event="error"))
    with pytest.raises(AgentError) as caught:
        from_sse(ServerSentEvent("boom\nBearer abc123", event="error"))
    assert "abc123" not in str(caught.value)


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
