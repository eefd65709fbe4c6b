"""Chat stream bodies (``POST /run_sse``) byte for byte, in both documented forms.

Google ADK's events [A] (what the service runs: camelCase, ``content.parts[]``) and the API
reference's simple events [R] (``{"type": "text", "content"}``...) both map onto the SDK's
typed events; a mocked body may mix them. Join events with :func:`sse_body`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

HeartbeatForm = Literal["comment", "empty", "named", "json"]

_AUTHOR = "nemo_agent"


def _frame(event: Mapping[str, Any]) -> bytes:
    # Compact, as ADK's model_dump_json and the reference's examples print them.
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def adk_text(text: str, *, partial: bool = False, turn_complete: bool = False) -> bytes:
    """An ADK event with one text part [A] (``partial=True``: a streamed piece)."""
    event: dict[str, Any] = {
        "author": _AUTHOR,
        "content": {"role": "model", "parts": [{"text": text}]},
    }
    if partial:
        event["partial"] = True
    if turn_complete:
        event["turnComplete"] = True
    return _frame(event)


def adk_tool_call(name: str, args: Mapping[str, Any], *, call_id: str = "call-1") -> bytes:
    """An ADK ``functionCall`` part [A]: the agent using a tool (kept internal by clients)."""
    part = {"functionCall": {"id": call_id, "name": name, "args": dict(args)}}
    return _frame({"author": _AUTHOR, "content": {"role": "model", "parts": [part]}})


def adk_tool_result(name: str, response: Mapping[str, Any], *, call_id: str = "call-1") -> bytes:
    """An ADK ``functionResponse`` part [A]."""
    part = {"functionResponse": {"id": call_id, "name": name, "response": dict(response)}}
    return _frame({"author": _AUTHOR, "content": {"role": "user", "parts": [part]}})


def adk_error(message: str, error_type: str = "RuntimeError") -> bytes:
    """ADK's own frame when the agent raises [A]: the stream then ends with HTTP 200, and the
    SDK raises ``AgentError``."""
    return _frame(
        {
            "error": f"{error_type}: {message}",
            "error_details": {"error_type": error_type, "error_message": message},
        }
    )


def simple_text(text: str) -> bytes:
    """``{"type": "text", "content": ...}`` [R]."""
    return _frame({"type": "text", "content": text})


def simple_tool_call(name: str, args: Mapping[str, Any]) -> bytes:
    """``{"type": "tool_call", "name", "args"}`` [R]."""
    return _frame({"type": "tool_call", "name": name, "args": dict(args)})


def simple_tool_result(name: str, result: Mapping[str, Any]) -> bytes:
    """``{"type": "tool_result", "name", "result"}`` [R]."""
    return _frame({"type": "tool_result", "name": name, "result": dict(result)})


def heartbeat(form: HeartbeatForm = "comment") -> bytes:
    """A keep-alive in one of its four forms [V][R]: an SSE comment, an empty ``data:``, an
    ``event: heartbeat`` frame, or ``{"type": "heartbeat"}``. None of them is progress."""
    if form == "comment":
        return b": ping\n\n"
    if form == "empty":
        return b"data: \n\n"
    if form == "named":
        return b"event: heartbeat\ndata: {}\n\n"
    return _frame({"type": "heartbeat"})


def sse_body(*events: bytes) -> bytes:
    """The events as one ``text/event-stream`` body (the end of the body ends the turn)."""
    return b"".join(events)
