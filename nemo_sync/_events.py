"""Typed chat events, parsed from the ADK events the agent server streams.

One ADK event (one SSE ``data:`` JSON) may carry several parts; each becomes a typed event.
Keys may come camelCase or snake_case. Anything new becomes an :class:`UnknownEvent`:
a new kind of event never crashes a chat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from nemo_sync._sse import ServerSentEvent, SSEHeartbeat
from nemo_sync.errors import AgentError


@attrs.frozen
class TextEvent:
    """Words from the agent. ``partial`` chunks stream a reply that a final event repeats."""

    text: str
    partial: bool = False
    author: str | None = None


@attrs.frozen
class ToolCallEvent:
    """The agent called a tool (internal: it edits the timeline)."""

    id: str | None
    name: str
    args: Mapping[str, Any]


@attrs.frozen
class ToolResultEvent:
    """A tool's result."""

    id: str | None
    name: str
    response: Any


@attrs.frozen
class HeartbeatEvent:
    """The backend is still working (a comment line or an empty ``data:``)."""


@attrs.frozen
class TurnCompleteEvent:
    """The agent says the turn is over."""


@attrs.frozen
class UnknownEvent:
    """Something this SDK does not know yet, kept whole."""

    raw: Any


ChatEvent: TypeAlias = (
    TextEvent | ToolCallEvent | ToolResultEvent | HeartbeatEvent | TurnCompleteEvent | UnknownEvent
)


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def parse_adk_event(raw: Any) -> list[ChatEvent]:
    """The typed events in one ADK event.

    Raises:
        AgentError: when the event carries an ``errorCode``.
    """
    if not isinstance(raw, Mapping):
        return [UnknownEvent(raw)]
    code = _get(raw, "errorCode", "error_code")
    if code:
        message = _get(raw, "errorMessage", "error_message") or "the agent reported an error"
        raise AgentError(
            f"The agent failed: {message} ({code}). The message was not sent again; "
            "check session.state() before retrying.",
            code=code if isinstance(code, int) else None,
            endpoint="POST /run_sse",
        )
    events: list[ChatEvent] = []
    partial = bool(raw.get("partial"))
    author = raw.get("author") if isinstance(raw.get("author"), str) else None
    content = raw.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping):
            events.append(UnknownEvent(part))
            continue
        call = _get(part, "functionCall", "function_call")
        result = _get(part, "functionResponse", "function_response")
        if isinstance(part.get("text"), str):
            if part.get("thought"):
                continue  # the model's private reasoning is not for the user
            events.append(TextEvent(part["text"], partial, author))
        elif isinstance(call, Mapping):
            args = call.get("args")
            events.append(
                ToolCallEvent(
                    call.get("id"),
                    str(call.get("name", "")),
                    args if isinstance(args, Mapping) else {},
                )
            )
        elif isinstance(result, Mapping):
            events.append(
                ToolResultEvent(
                    result.get("id"), str(result.get("name", "")), result.get("response")
                )
            )
        else:
            events.append(UnknownEvent(dict(part)))
    if _get(raw, "turnComplete", "turn_complete"):
        events.append(TurnCompleteEvent())
    if not events and not parts:
        actions = raw.get("actions")
        if not (isinstance(actions, Mapping) and actions):
            events.append(UnknownEvent(dict(raw)))
    return events


def from_sse(item: ServerSentEvent | SSEHeartbeat) -> list[ChatEvent]:
    """The typed events in one decoded SSE item."""
    if isinstance(item, SSEHeartbeat):
        return [HeartbeatEvent()]
    if item.event == "error":
        raise AgentError(
            f"The agent stream reported an error: {item.data[:300]}", endpoint="POST /run_sse"
        )
    try:
        raw = json.loads(item.data)
    except ValueError:
        return [UnknownEvent(item.data)]
    return parse_adk_event(raw)
