"""Typed chat events, parsed from the ADK events the agent server streams.

Each SSE ``data:`` is one ADK event (JSON). One ADK event may carry several parts in
``content.parts``; each part becomes one typed event, in order:

- ``{"text": ...}`` -> :class:`TextEvent` (``partial`` chunks stream a reply; thoughts and
  empty texts are skipped);
- ``{"functionCall": {id, name, args}}`` -> :class:`ToolCallEvent`;
- ``{"functionResponse": {id, name, response}}`` -> :class:`ToolResultEvent`;
- anything else -> :class:`UnknownEvent`: a new kind of part never crashes a chat.

``turnComplete`` adds a :class:`TurnCompleteEvent`; a comment line or an empty ``data:``
is a :class:`HeartbeatEvent`. Keys may come camelCase or snake_case. Every typed event keeps
the whole ADK event it came from in ``raw`` (``invocationId``, ``timestamp``,
``actions.stateDelta``, ...; left out of ``==`` and ``repr``), so nothing the server sends is
lost. An event with an ``errorCode``, or an SSE ``event: error``, raises
:class:`~nemo_sync.errors.AgentError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from nemo_sync._sse import ServerSentEvent, SSEHeartbeat
from nemo_sync.errors import AgentError

_ENDPOINT = "POST /run_sse"
_Raw = Mapping[str, Any]


@attrs.frozen
class TextEvent:
    """Words from the agent.

    Attributes:
        text: The text of this part.
        partial: True for a streamed chunk; the final (non-partial) event repeats the whole
            reply.
        author: The agent that spoke, when given.
        raw: The whole ADK event this part came from.
    """

    text: str
    partial: bool = False
    author: str | None = None
    raw: _Raw = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


@attrs.frozen
class ToolCallEvent:
    """The agent called a tool (this is how it edits the timeline).

    Attributes:
        id: The call's id (pairs it with its :class:`ToolResultEvent`), when given.
        name: The tool's name.
        args: The call's arguments (empty when the server sent none or not an object).
        raw: The whole ADK event this part came from.
    """

    id: str | None
    name: str
    args: Mapping[str, Any]
    raw: _Raw = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


@attrs.frozen
class ToolResultEvent:
    """A tool's result.

    Attributes:
        id: The id of the call this answers, when given.
        name: The tool's name.
        response: What the tool returned, as sent.
        raw: The whole ADK event this part came from.
    """

    id: str | None
    name: str
    response: Any
    raw: _Raw = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


@attrs.frozen
class HeartbeatEvent:
    """The backend is still working (a comment line or an empty ``data:``)."""


@attrs.frozen
class TurnCompleteEvent:
    """The agent says the turn is over (``turnComplete``).

    Attributes:
        raw: The whole ADK event.
    """

    raw: _Raw = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


@attrs.frozen
class UnknownEvent:
    """Something this SDK does not know yet, kept whole: a part, an event, or non-JSON data."""

    raw: Any


ChatEvent: TypeAlias = (
    TextEvent | ToolCallEvent | ToolResultEvent | HeartbeatEvent | TurnCompleteEvent | UnknownEvent
)


def _get(obj: _Raw, camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _raise_for_error(raw: _Raw) -> None:
    code = _get(raw, "errorCode", "error_code")
    if not code:
        return
    message = _get(raw, "errorMessage", "error_message") or "no message"
    raise AgentError(
        f"The agent failed: {message} (error {code}). The message was not sent again; "
        "check session.state() before retrying.",
        code=code if isinstance(code, int) else None,
        endpoint=_ENDPOINT,
    )


def _part(part: Any, raw: _Raw, partial: bool, author: str | None) -> ChatEvent | None:
    if not isinstance(part, Mapping):
        return UnknownEvent(part)
    text = part.get("text")
    if isinstance(text, str):
        if not text or part.get("thought"):
            return None  # nothing to say, or the model's private reasoning
        return TextEvent(text, partial, author, raw=raw)
    call = _get(part, "functionCall", "function_call")
    if isinstance(call, Mapping):
        args = call.get("args")
        return ToolCallEvent(
            _opt_str(call.get("id")),
            _opt_str(call.get("name")) or "",
            args if isinstance(args, Mapping) else {},
            raw=raw,
        )
    result = _get(part, "functionResponse", "function_response")
    if isinstance(result, Mapping):
        return ToolResultEvent(
            _opt_str(result.get("id")),
            _opt_str(result.get("name")) or "",
            result.get("response"),
            raw=raw,
        )
    return UnknownEvent(dict(part))


def parse_adk_event(raw: Any) -> list[ChatEvent]:
    """The typed events in one ADK event (an SSE ``data:`` decoded from JSON).

    An event with only ``actions`` (a state delta, say) gives no typed event: it is the
    agent's bookkeeping. One with nothing recognisable gives an :class:`UnknownEvent`.

    Args:
        raw: The decoded JSON.

    Returns:
        The typed events, in the order of the event's parts, then ``TurnCompleteEvent``.

    Raises:
        AgentError: when the event carries an ``errorCode``.
    """
    if not isinstance(raw, Mapping):
        return [UnknownEvent(raw)]
    _raise_for_error(raw)
    partial = raw.get("partial") is True
    author = _opt_str(raw.get("author"))
    content = raw.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    events: list[ChatEvent] = []
    if isinstance(parts, list):
        for part in parts:
            event = _part(part, raw, partial, author)
            if event is not None:
                events.append(event)
    if _get(raw, "turnComplete", "turn_complete"):
        events.append(TurnCompleteEvent(raw=raw))
    if not events and not parts and not raw.get("actions"):
        events.append(UnknownEvent(dict(raw)))
    return events


def from_sse(item: ServerSentEvent | SSEHeartbeat) -> list[ChatEvent]:
    """The typed events in one decoded SSE item.

    Args:
        item: What :class:`~nemo_sync._sse.SSEDecoder` produced.

    Returns:
        ``[HeartbeatEvent()]`` for a heartbeat; the parsed ADK event otherwise, or an
        :class:`UnknownEvent` holding the data when it is not JSON.

    Raises:
        AgentError: for ``event: error`` or an ADK event with an ``errorCode``.
    """
    if isinstance(item, SSEHeartbeat):
        return [HeartbeatEvent()]
    if item.event == "error":
        raise AgentError(
            f"The agent stream reported an error: {item.data[:300]}. The message was not "
            "sent again; check session.state() before retrying.",
            endpoint=_ENDPOINT,
        )
    try:
        raw = json.loads(item.data)
    except ValueError:
        return [UnknownEvent(item.data)]
    return parse_adk_event(raw)
