"""Typed chat events, parsed from the events the agent server streams, in either of two forms.

Each SSE ``data:`` is one event (JSON). The service is a Google ADK server [A], and most of
this module reads ADK's events; the vendor's API reference [R] documents the same stream in
a simpler form, read too (see :func:`parse_simple_event`), into the same typed events:

- ``{"type": "text", "content": ...}`` -> :class:`TextEvent` (final: nothing repeats it);
- ``{"type": "tool_call", "name", "args"}`` -> :class:`ToolCallEvent` (``id`` None);
- ``{"type": "tool_result", "name", "result"}`` -> :class:`ToolResultEvent` (``id`` None);
- ``{"type": "heartbeat"}`` -> :class:`HeartbeatEvent`;
- any other ``type`` -> :class:`UnknownEvent`, kept, never an error.

One ADK event may carry several parts in ``content.parts``; each part becomes one typed
event, in order:

- ``{"text": ...}`` -> :class:`TextEvent` (``partial`` chunks stream a reply; thoughts and
  empty texts are skipped);
- ``{"functionCall": {id, name, args}}`` -> :class:`ToolCallEvent`;
- ``{"functionResponse": {id, name, response}}`` -> :class:`ToolResultEvent`;
- anything else -> :class:`UnknownEvent`: a new kind of part never crashes a chat.

A non-empty ``actions.stateDelta`` adds a :class:`StateDeltaEvent` after the parts' events
(ADK puts an empty ``stateDelta`` on every event; that is no change and gives nothing).
``turnComplete`` adds a :class:`TurnCompleteEvent`; a comment line, an empty ``data:`` or
an ``event: heartbeat`` block (all three :class:`~nemo_sync._sse.SSEHeartbeat`) is a
:class:`HeartbeatEvent`. Keys may come camelCase or snake_case. Every typed event keeps
the whole event it came from in ``raw`` (``invocationId``, ``timestamp``, ...; left out
of ``==`` and ``repr``), so nothing the server sends is lost.

Errors raise :class:`~nemo_sync.errors.AgentError`: an event with an ``errorCode`` (how an
agent reports a failed model call), an SSE ``event: error``, and the frame ADK's API server
writes when the agent raises, ``{"error": "<Type>: <message>", "error_details": {...}}``.
ADK ends that stream with HTTP 200, so without this the crash would read as a turn that
finished without a reply. The server's text goes into the message cleaned: control
characters removed, anything that looks like a credential redacted, length capped.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from nemo_sync._envelope import loads_strict
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
    """The backend is still working: a comment line, an empty ``data:``, an ``event:
    heartbeat`` block or a ``{"type": "heartbeat"}`` event. It shows the agent is alive, not
    that it made progress."""


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


@attrs.frozen
class StateDeltaEvent:
    """The agent changed its session state (``actions.stateDelta``).

    The delta is the agent's own bookkeeping (which keys it set, to what); the timeline an
    app shows still comes from ``session.state()``. Only a non-empty delta gives this event.

    Attributes:
        delta: The keys and values the event set, as sent.
        raw: The whole ADK event (its parts, if any, became events of their own before this).
    """

    delta: Mapping[str, Any]
    raw: _Raw = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)


ChatEvent: TypeAlias = (
    TextEvent
    | ToolCallEvent
    | ToolResultEvent
    | StateDeltaEvent
    | HeartbeatEvent
    | TurnCompleteEvent
    | UnknownEvent
)


def _get(obj: _Raw, camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# The server's error text is shown to users and logged by apps, so it is cleaned first: a
# crashed tool's exception can quote a request, headers included.
_MESSAGE_LIMIT = 300
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_SECRET_FIELD = re.compile(
    r"(?i)\b((?:access[_-]?|refresh[_-]?|id[_-]?)?token|api[_-]?key|secret|password|passwd"
    r"|authorization|x-api-key|cookie)([\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]+"
)
# Long opaque runs mixing letters and digits: API keys, JWT segments, signatures. ``/`` and
# ``.`` split runs so file paths and dotted names in a traceback's last line survive.
_OPAQUE = re.compile(r"[A-Za-z0-9_\-+=]{32,}")
# UUIDs (and ADK's ``e-<uuid>`` invocation ids) are ids, not secrets, and help a bug report.
_UUID = re.compile(r"(?:[a-z]-)?[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_SPACES = re.compile(r"\s+")
_REDACTED = "[redacted]"


def _redact_opaque(match: re.Match[str]) -> str:
    run = match.group(0)
    if _UUID.fullmatch(run):
        return run
    has_letter = any(c.isalpha() for c in run)
    has_digit = any(c.isdigit() for c in run)
    # Prose and paths are letters only, or have no digits; a secret mixes both.
    return _REDACTED if has_letter and has_digit else run


def clean_message(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """The server's error text, safe to show: no control characters, credentials or floods.

    Args:
        text: What the server said.
        limit: The most characters kept; longer texts end with ``...``.

    Returns:
        One line of at most ``limit`` characters (plus ``...``).
    """
    # Cc (C0/C1 controls, ANSI escapes' ESC) and Cf (bidi overrides, zero-width) can hide or
    # rewrite what a terminal shows; they become spaces, then runs of space become one.
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    text = _OPAQUE.sub(_redact_opaque, text)
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def _crash_text(raw: _Raw) -> str | None:
    """What an ADK crash frame (``{"error", "error_details"}``) says, or None if it is none.

    ``error`` is not a field of ADK's ``Event``: only the API server's crash frame has it.
    """
    error = raw.get("error")
    if not error:
        return None
    if isinstance(error, str):
        return error
    details = _get(raw, "errorDetails", "error_details")
    details = details if isinstance(details, Mapping) else {}
    if isinstance(error, Mapping):
        details = {**details, **error}
    kind = _get(details, "errorType", "error_type")
    message = _get(details, "errorMessage", "error_message") or details.get("message")
    if isinstance(kind, str) and isinstance(message, str):
        return f"{kind}: {message}"
    if isinstance(message, str) or isinstance(kind, str):
        return str(message or kind)
    return json.dumps(error, ensure_ascii=False, default=str)


def _raise_for_error(raw: _Raw) -> None:
    crash = _crash_text(raw)
    if crash is not None:
        raise AgentError(
            f"The agent crashed: {clean_message(crash)}. The turn failed; the message was not "
            "sent again. Check session.state() before retrying: the agent may have changed "
            "the timeline before it crashed.",
            endpoint=_ENDPOINT,
        )
    code = _get(raw, "errorCode", "error_code")
    if not code:
        return
    message = _get(raw, "errorMessage", "error_message")
    message = clean_message(message) if isinstance(message, str) and message else "no message"
    shown = clean_message(str(code), 80)
    raise AgentError(
        f"The agent failed: {message} (error {shown}). The message was not sent again; "
        "check session.state() before retrying.",
        code=code if isinstance(code, int) else None,
        endpoint=_ENDPOINT,
    )


def _state_delta(raw: _Raw) -> StateDeltaEvent | None:
    actions = raw.get("actions")
    if not isinstance(actions, Mapping):
        return None
    delta = _get(actions, "stateDelta", "state_delta")
    if not isinstance(delta, Mapping) or not delta:
        return None  # ADK sends ``{}`` on every event: nothing changed
    return StateDeltaEvent(dict(delta), raw=raw)


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


def _is_simple(raw: _Raw) -> bool:
    # ADK's Event has no ``type`` field, and its ``content`` is an object [A]; [R]'s events
    # have a ``type`` (and a text's ``content`` is a string). Should ADK ever add a ``type``,
    # an event with ADK's content is still read as ADK's, so no reply is lost.
    return isinstance(raw.get("type"), str) and not isinstance(raw.get("content"), Mapping)


def parse_simple_event(raw: _Raw) -> list[ChatEvent]:
    """The typed event in one event of the API reference's simple form [R].

    ``{"type": "text", "content"}``, ``{"type": "tool_call", "name", "args"}``,
    ``{"type": "tool_result", "name", "result"}``, ``{"type": "heartbeat"}``. There is no
    ``done`` event: the end of the stream is the end of the turn. The form has no call ids
    (an ``id``, should one come, is kept); a text event is never a partial chunk, as nothing
    repeats it. Any other ``type`` is kept as an :class:`UnknownEvent`.

    Args:
        raw: The decoded JSON object.

    Returns:
        One typed event, or none for an empty text.
    """
    kind = raw.get("type")
    if kind == "text":
        text = raw.get("content")
        if isinstance(text, str):
            return [TextEvent(text, raw=raw)] if text else []
    elif kind == "tool_call":
        args = raw.get("args")
        name = _opt_str(raw.get("name")) or ""
        args = args if isinstance(args, Mapping) else {}
        return [ToolCallEvent(_opt_str(raw.get("id")), name, args, raw=raw)]
    elif kind == "tool_result":
        name = _opt_str(raw.get("name")) or ""
        return [ToolResultEvent(_opt_str(raw.get("id")), name, raw.get("result"), raw=raw)]
    elif kind == "heartbeat":
        return [HeartbeatEvent()]
    return [UnknownEvent(dict(raw))]


def parse_adk_event(raw: Any) -> list[ChatEvent]:
    """The typed events in one event (an SSE ``data:`` decoded from JSON).

    An event with a non-empty ``actions.stateDelta`` gives a :class:`StateDeltaEvent`; one
    with only other ``actions`` (an empty delta, an artifact delta) gives no typed event: it
    is the agent's bookkeeping. One with nothing recognisable gives an :class:`UnknownEvent`.
    An event in the API reference's simple form (a string ``type``, which ADK's events never
    have) is read by :func:`parse_simple_event`, after the same error checks.

    Args:
        raw: The decoded JSON.

    Returns:
        The typed events: the event's parts in order, then ``StateDeltaEvent``, then
        ``TurnCompleteEvent``.

    Raises:
        AgentError: when the event carries an ``errorCode``, or is ADK's crash frame
            (``{"error": ..., "error_details": ...}``).
    """
    if not isinstance(raw, Mapping):
        return [UnknownEvent(raw)]
    _raise_for_error(raw)
    if _is_simple(raw):
        return parse_simple_event(raw)
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
    delta = _state_delta(raw)
    if delta is not None:
        events.append(delta)
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
        ``[HeartbeatEvent()]`` for a heartbeat; the parsed event otherwise (ADK's form or the
        simple one), or an :class:`UnknownEvent` holding the data when it is not JSON.

    Raises:
        AgentError: for ``event: error``, an ADK event with an ``errorCode``, or ADK's
            crash frame.
    """
    if isinstance(item, SSEHeartbeat):
        return [HeartbeatEvent()]
    if item.event == "error":
        raise AgentError(
            f"The agent stream reported an error: {clean_message(item.data)}. The message "
            "was not sent again; check session.state() before retrying.",
            endpoint=_ENDPOINT,
        )
    try:
        # Strict: no NaN/Infinity, no overflowing numbers, bounded depth (a ValueError).
        raw = loads_strict(item.data)
    except ValueError:
        return [UnknownEvent(item.data)]
    return parse_adk_event(raw)
