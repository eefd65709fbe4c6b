"""One chat turn over SSE: tool calls, streamed text, heartbeats.

The events are ADK's [A] by default, or the API reference's simple ones [R] with
``Config.chat_events == "simple"``. Errors take ADK's shapes in both forms: the reference
documents no error event, and ADK's API server writes its crash frame whatever the agent's
events look like.

A turn runs to the end on the server even when the client leaves or a fault cuts the stream:
the state endpoint then shows the edit, which is how clients reconcile a dropped stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
from aiohttp import web

from nemo_sync.emulator import _replies
from nemo_sync.emulator._api_errors import ApiError
from nemo_sync.emulator._clock import FakeClock
from nemo_sync.emulator._config import Config
from nemo_sync.emulator._edits import EditResult, apply_edits, commit, describe, needs_beats
from nemo_sync.emulator._fastapi import DetailError, missing, read_json_body, refuse, wrong_type
from nemo_sync.emulator._faults import Fault
from nemo_sync.emulator._intent import parse
from nemo_sync.emulator._local import BeatInfo, analyse_beats
from nemo_sync.emulator._sse_writer import SseWriter
from nemo_sync.emulator._state import Account, MediaRecord, SessionRecord
from nemo_sync.emulator._store import Changes
from nemo_sync.emulator._user_paths import name_files

AUTHOR = "nemo_agent"

# ADK 2.13's ``RunAgentRequest`` [A]: (field, camelCase alias, kind, required). Its models
# take either name and report errors under the alias; unknown keys (``streaming``, ``role``)
# are ignored. ``app_name`` is optional there only when the server has a default app.
_CHAT_FIELDS = (
    ("app_name", "appName", "str", False),
    ("user_id", "userId", "str", True),
    ("session_id", "sessionId", "str", True),
    ("new_message", "newMessage", "model", False),
)
NO_APP_NAME = "app_name is required when ADK_DEFAULT_APP_NAME is not set"


@attrs.frozen
class ChatRequest:
    """A ``/run_sse`` body that passed the checks."""

    app_name: str
    user_id: str
    session_id: str
    text: str


async def read_chat_request(request: web.Request) -> ChatRequest:
    """The ``/run_sse`` body, checked as ADK's FastAPI model checks it.

    Raises:
        DetailError: 422 listing missing or mistyped fields; 400 without ``app_name`` (ADK's
            own words). A message with no text is a 422 too: ADK would accept a body without
            ``new_message``, but the NemoVideo agent has nothing to do without one (the
            emulator's choice).
    """
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise refuse([wrong_type(["body"], "model", body)])
    values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, alias, kind, required in _CHAT_FIELDS:
        if alias not in body and name not in body:
            if required:
                problems.append(missing(["body", alias], body))
            continue
        value = body[alias] if alias in body else body[name]
        if value is None and not required:
            continue
        if not isinstance(value, dict if kind == "model" else str):
            problems.append(wrong_type(["body", alias], kind, value))
            continue
        values[name] = value
    if problems:
        raise refuse(problems)
    if not values.get("app_name"):
        raise DetailError(NO_APP_NAME, status=400)
    text = _message_text(values.get("new_message"))
    if text is None:
        raise refuse([missing(["body", "newMessage", "parts", 0, "text"], None)])
    return ChatRequest(values["app_name"], values["user_id"], values["session_id"], text)


def _message_text(message: Any) -> str | None:
    """The text of the message's first part, when there is a non-blank one."""
    parts = message.get("parts") if isinstance(message, dict) else None
    first = parts[0] if isinstance(parts, list) and parts else None
    text = first.get("text") if isinstance(first, dict) else None
    return text if isinstance(text, str) and text.strip() else None


class _Events:
    """Builds ADK events (camelCase keys, as the ADK API server sends them)."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.invocation_id = f"e-{uuid.uuid4()}"

    def make(
        self,
        parts: list[dict[str, Any]] | None = None,
        *,
        role: str = "model",
        state_delta: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "invocationId": self.invocation_id,
            "author": AUTHOR,
            "actions": {
                "stateDelta": state_delta or {},
                "artifactDelta": {},
                "requestedAuthConfigs": {},
            },
            "id": str(uuid.uuid4()),
            "timestamp": self._clock.now(),
        }
        if parts is not None:
            event["content"] = {"parts": parts, "role": role}
        event.update(extra)
        return event


def _chunks(text: str, chinese: bool, pieces: int = 3) -> list[str]:
    """``text`` in a few streamed pieces that join back to it exactly."""
    if chinese:
        size = max(1, -(-len(text) // pieces))
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    size = max(1, -(-len(words) // pieces))
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g + (" " if i < len(groups) - 1 else "") for i, g in enumerate(groups)]


async def _beats_for(music: MediaRecord) -> BeatInfo:
    if music.beats is None:
        music.beats = await asyncio.to_thread(analyse_beats, music.path, music.duration_ms or 0)
    assert isinstance(music.beats, BeatInfo)
    return music.beats


async def run_turn(
    request: web.Request,
    session: SessionRecord,
    text: str,
    *,
    config: Config,
    clock: FakeClock,
    fault: Fault | None,
    no_credits: Callable[[Account, int], ApiError],
    transaction: Callable[[], AbstractAsyncContextManager[Changes]],
) -> web.StreamResponse:
    """Answer ``POST /run_sse`` for one message.

    Raises:
        ApiError: 2001 (made by ``no_credits``) before the stream starts, when an edit
            cannot be paid for.
    """
    intent = parse(text)
    account = session.account
    if intent.edits and account.available < config.chat_cost:
        raise no_credits(account, config.chat_cost)
    async with session.lock:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        writer = SseWriter(
            request,
            response,
            cut_after=fault.sse_cut_after if fault else None,
            drop=bool(fault and fault.drop),
            heartbeat_interval=config.heartbeat_interval,
            form=config.chat_events,
        )
        events = _Events(clock)
        await writer.heartbeat()  # the stream is open: the agent is thinking
        async with transaction() as changes:
            session.turns += 1
            changes.mark(session)
        if fault is not None and fault.agent_crash is not None:
            await writer.adk_error(RuntimeError(fault.agent_crash), clock.now())
            await _finish(writer, response)
            return response
        music = needs_beats(intent, session, text)
        beats: BeatInfo | None = None
        try:
            if music is not None:
                beats = await writer.keep_alive(_beats_for(music), at_least=config.chat_latency)
            else:
                await writer.keep_alive(asyncio.sleep(0), at_least=config.chat_latency)
        except Exception as exc:  # any analysis failure is reported in-stream
            await writer.event(
                events.make(
                    errorCode="TOOL_ERROR",
                    errorMessage=f"beat analysis of {music.name if music else 'the music'} "
                    f"failed: {name_files(str(exc), [music] if music else [])}",
                )
            )
            await _finish(writer, response)
            return response
        # One transaction for the edit: with a shared data folder, another process's turn on
        # this session lands before or after it, never half over it.
        async with transaction() as changes:
            result = apply_edits(session, intent, text, beats)
            delta: dict[str, Any] = {}
            if result.edited:
                commit(session, result)
                account.available -= min(config.chat_cost, account.available)
                delta = {"draft_version": session.version}
            # Drawn here, in the transaction: the session's generator is part of its state.
            reply = _reply_text(session, result, intent.chinese, config)
            changes.mark(session, account, *([music] if music is not None else []))
        if config.chat_events == "simple":
            await _stream_simple(writer, result, reply=reply, chinese=intent.chinese)
        else:
            await _stream_adk(
                writer, events, result, delta=delta, reply=reply, chinese=intent.chinese
            )
        await _finish(writer, response)
        return response


async def _stream_adk(
    writer: SseWriter,
    events: _Events,
    result: EditResult,
    *,
    delta: dict[str, Any],
    reply: str | None,
    chinese: bool,
) -> None:
    """The turn's work as ADK events [A]: each call then its response, paired by id (the last
    response carries the state delta); the reply in partial chunks, then whole, then
    ``turnComplete``. A silent turn just ends: no text, no ``turnComplete`` (the client
    checks the state)."""
    for index, call in enumerate(result.calls):
        call_id = f"adk-{uuid.uuid4()}"
        await writer.event(
            events.make([{"functionCall": {"id": call_id, "name": call.name, "args": call.args}}])
        )
        last = index == len(result.calls) - 1
        await writer.event(
            events.make(
                [
                    {
                        "functionResponse": {
                            "id": call_id,
                            "name": call.name,
                            "response": call.response,
                        }
                    }
                ],
                role="user",
                state_delta=delta if last else None,
            )
        )
    if reply is not None:
        for piece in _chunks(reply, chinese):
            await writer.event(events.make([{"text": piece}], partial=True))
        await writer.event(events.make([{"text": reply}], partial=False))
        await writer.event(events.make(turnComplete=True))


async def _stream_simple(
    writer: SseWriter, result: EditResult, *, reply: str | None, chinese: bool
) -> None:
    """The turn's work as the API reference's simple events [R]: ``tool_call`` (name, args)
    then ``tool_result`` (name, result), with no ids; the reply as ``text`` events whose
    contents join to it (the reference does not say whether text comes whole or in pieces,
    so pieces, the harder case for a client); no done event: the end of the stream ends the
    turn."""
    for call in result.calls:
        await writer.event({"type": "tool_call", "name": call.name, "args": call.args})
        await writer.event({"type": "tool_result", "name": call.name, "result": call.response})
    if reply is not None:
        for piece in _chunks(reply, chinese):
            await writer.event({"type": "text", "content": piece})


def _reply_text(
    session: SessionRecord, result: EditResult, chinese: bool, config: Config
) -> str | None:
    """The turn's reply, or ``None`` for a silent turn."""
    if result.edited and session.rng.random() < config.silent_ratio:
        return None
    if not result.notes:
        return _replies.help_text(chinese)
    reply = describe(result.notes, chinese)
    if result.edited and session.rng.random() < config.gui_phrase_ratio:
        reply += _replies.gui_hint(session.rng, chinese)
    return reply


async def _finish(writer: SseWriter, response: web.StreamResponse) -> None:
    if writer.open:
        try:
            await response.write_eof()
        except ConnectionError:
            writer.open = False
