"""One chat turn over Server-Sent Events: stream typed events, then reconcile with the state."""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from nemo_sync import _contract, _events, _gui, _sse
from nemo_sync._retry import sleep as retry_sleep
from nemo_sync._session_state import fetch_state
from nemo_sync.errors import (
    APIConnectionError,
    APITimeoutError,
    NemoError,
    ResponseTooLargeError,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    from nemo_sync._api import Api
    from nemo_sync._gui import SuggestedAction
    from nemo_sync.draft import Change, Draft

logger = logging.getLogger("nemo_sync")

# The contract's schedules [V]: a turn up to 15 minutes, "still working" every 2 minutes,
# 10 minutes of heartbeats only is a timeout; recovery waits 30 s, then every 60 s, 5 times.
TURN_TIMEOUT = _contract.TURN_TIMEOUT
IDLE_TIMEOUT = _contract.IDLE_TIMEOUT
STILL_WORKING_EVERY = _contract.STILL_WORKING_EVERY
_ENDPOINT = f"POST {_contract.RUN_SSE_PATH}"
# What a turn keeps (unless keep_events=True): the network decides how many events come, so
# memory is bounded here. A real turn has tens of events and a few KB of text.
MAX_REPLY_CHARS = 32 * 1024 * 1024
MAX_KEPT_EVENTS = 10_000
MAX_KEPT_UNKNOWN = 100
# A read blocks at most this long, so deadlines and "still working" fire on time.
_TICK = 1.0

StillWorking = Callable[[float], "Awaitable[object] | object"]


@attrs.frozen
class ChatResult:
    """What one chat turn did.

    Attributes:
        text: The agent's reply (final text parts joined), or a sentence made from the draft
            diff when the turn closed without text.
        events: Every typed event that arrived, in order.
        tool_calls: The tool calls the agent made.
        draft_before: The timeline before the turn.
        draft_after: The timeline after the turn.
        changes: What changed between the two, as ``Change`` objects with sentences.
        suggested_actions: GUI phrases in the reply turned into actions for an API client.
        silent: True when the stream closed with no text (the text was made from ``changes``).
        recovered: True when the stream dropped and the result comes from reading the state
            afterwards (:meth:`ChatTurn.recover`); ``text`` then holds what arrived before the
            drop, or a sentence made from ``changes``.
    """

    text: str
    events: tuple[_events.ChatEvent, ...]
    tool_calls: tuple[_events.ToolCallEvent, ...]
    draft_before: Draft | None
    draft_after: Draft | None
    changes: tuple[Change, ...]
    suggested_actions: tuple[SuggestedAction, ...]
    silent: bool = False
    recovered: bool = False

    def _repr_html_(self) -> str:
        """In a notebook: the reply, what changed, and the timeline drawn."""
        parts = [f"<p>{html.escape(self.text)}</p>" if self.text else ""]
        if self.changes:
            items = "".join(f"<li>{html.escape(c.sentence)}</li>" for c in self.changes)
            parts.append(f"<ul>{items}</ul>")
        if self.suggested_actions:
            said = ", ".join(html.escape(a.phrase) for a in self.suggested_actions)
            parts.append(f"<p><small>GUI phrases turned into actions: {said}</small></p>")
        if self.draft_after is not None:
            parts.append(self.draft_after._repr_html_())
        return "".join(parts)


def _is_temporary_issue(text: str) -> bool:
    return _contract.TEMPORARY_ISSUE_PHRASE.lower() in text.lower()


def _reply_text(events: Sequence[_events.ChatEvent]) -> str:
    """The agent's words: final text parts, or the streamed partial chunks if no final came.

    A trailing "I encountered a temporary issue" after normal text is left out [V]: the work
    was done and the backend's afterthought would only alarm the user. It stays in ``events``.
    """
    finals = [e.text for e in events if isinstance(e, _events.TextEvent) and not e.partial]
    if not finals:
        finals = ["".join(e.text for e in events if isinstance(e, _events.TextEvent))]
    while (
        len(finals) > 1
        and _is_temporary_issue(finals[-1])
        and any(t.strip() and not _is_temporary_issue(t) for t in finals[:-1])
    ):
        finals.pop()
    return "".join(finals)


def _same_draft(before: Draft, after: Draft) -> bool:
    return before.to_wire() == after.to_wire()


def describe_changes(changes: Sequence[Change]) -> str:
    """The sentence a user reads after a turn that closed without text."""
    if not changes:
        return "The agent finished without a reply, and the timeline did not change."
    return "Updated the timeline: " + "; ".join(c.sentence for c in changes) + "."


class ChatTurn:
    """A chat turn: an async context manager and an async iterator of typed events.

    Made by :meth:`Session.chat`. The message is POSTed once when the turn starts (on entering
    the ``async with`` block, or on the first iteration) and never again: a dropped stream
    raises :class:`StreamInterruptedError` (so does a connection lost after the request went
    out but before any event, on entering the block); then :meth:`recover` follows the service's
    recovery procedure (wait, read the state, compare), and :meth:`reconcile` tells at once
    what the turn changed so far.

    Example::

        async with session.chat("sync the music to my cuts") as turn:
            async for event in turn:
                if isinstance(event, nemo_sync.TextEvent):
                    print(event.text, end="")
        result = await turn.result()
    """

    def __init__(
        self,
        api: Api,
        session_id: str,
        text: str,
        *,
        # No defaults here: Session.chat is where the options are described and defaulted.
        on_still_working: StillWorking | None,
        still_working_every: float,
        timeout: float,
        idle_timeout: float,
        track_changes: bool,
        keep_events: bool,
    ) -> None:
        if not text or not text.strip():
            raise ValueError("a chat message must not be empty")
        if timeout <= 0 or still_working_every <= 0 or idle_timeout <= 0:
            raise ValueError(
                "timeout, idle_timeout and still_working_every must be positive seconds"
            )
        self._api = api
        self._session_id = session_id
        self.text = text
        self._on_still_working = on_still_working
        self._still_working_every = still_working_every
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._track_changes = track_changes
        self._keep_all = keep_events
        self._reply_chars = 0
        self._unknown_kept = 0
        self._partial_first: _events.TextEvent | None = None
        self._partial_parts: list[str] = []
        self.heartbeats = 0
        self._response: aiohttp.ClientResponse | None = None
        self._started = False
        self._finished = False
        self._iterating = False
        self._events: list[_events.ChatEvent] = []
        self._draft_before: Draft | None = None
        self._deadline = 0.0
        self._last_words = 0.0
        self._last_activity = 0.0
        self._result: ChatResult | None = None

    def __repr__(self) -> str:
        state = "finished" if self._finished else "streaming" if self._started else "not started"
        return f"ChatTurn(session={self._session_id!r}, {state}, events={len(self._events)})"

    @property
    def events(self) -> list[_events.ChatEvent]:
        """The events kept so far (see ``keep_events`` on :meth:`Session.chat`)."""
        self._flush_partial()
        return list(self._events)

    def _keep(self, event: _events.ChatEvent) -> None:
        """Keep ``event`` for the result, within bounds unless every event was asked for.

        By default heartbeats are counted (``self.heartbeats``), not kept; consecutive partial
        text chunks are kept as one partial :class:`TextEvent` holding their joined text; at
        most ``MAX_KEPT_UNKNOWN`` unknown events are kept. So memory follows the reply, not the
        number of events the server chose to send.
        """
        if isinstance(event, _events.TextEvent):
            self._reply_chars += len(event.text)
            if self._reply_chars > MAX_REPLY_CHARS:
                raise ResponseTooLargeError(
                    f"the agent's reply passed {MAX_REPLY_CHARS} characters; the stream was "
                    "closed to keep memory bounded. The message was not sent again.",
                    endpoint=f"POST {_contract.RUN_SSE_PATH}",
                    limit=MAX_REPLY_CHARS,
                )
        if self._keep_all:
            self._events.append(event)
            return
        if isinstance(event, _events.HeartbeatEvent):
            self.heartbeats += 1
            return
        if isinstance(event, _events.UnknownEvent):
            self._unknown_kept += 1
            if self._unknown_kept > MAX_KEPT_UNKNOWN:
                return
        if isinstance(event, _events.TextEvent) and event.partial:
            first = self._partial_first
            if first is not None and first.author == event.author:
                self._partial_parts.append(event.text)  # joined once, at the flush
                return
            self._flush_partial()
            self._partial_first, self._partial_parts = event, [event.text]
            return
        self._flush_partial()
        self._append_kept(event)

    def _flush_partial(self) -> None:
        first, parts = self._partial_first, self._partial_parts
        if first is None:
            return
        self._partial_first, self._partial_parts = None, []
        text = parts[0] if len(parts) == 1 else "".join(parts)
        self._append_kept(first if text == first.text else attrs.evolve(first, text=text))

    def _append_kept(self, event: _events.ChatEvent) -> None:
        if len(self._events) >= MAX_KEPT_EVENTS:
            raise ResponseTooLargeError(
                f"the chat stream sent more than {MAX_KEPT_EVENTS} events; the stream was "
                "closed to keep memory bounded (pass keep_events=True to keep them all). The "
                "message was not sent again.",
                endpoint=f"POST {_contract.RUN_SSE_PATH}",
                limit=MAX_KEPT_EVENTS,
            )
        self._events.append(event)

    async def __aenter__(self) -> ChatTurn:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream (leaving the block early cancels nothing server-side)."""
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def _body(self) -> dict[str, Any]:
        return _contract.chat_body(self._session_id, self.text)

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._timeout
        if self._track_changes:
            self._draft_before = (await fetch_state(self._api, self._session_id)).draft
        remaining = max(self._deadline - loop.time(), 0.001)
        try:
            self._response = await self._api.open_stream(
                "POST",
                _contract.RUN_SSE_PATH,
                json=self._body(),
                headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
                # sock_read bounds the wait for the response headers by the turn's deadline.
                # It stays armed for the body too, where it can never fire before that
                # deadline; reads there are bounded by ticks below. (Not asyncio.wait_for:
                # its extra task lets aiohttp see a dropped connection before the events
                # that came first, and aiohttp then raises instead of handing them over.)
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(30.0, remaining), sock_read=remaining
                ),
            )
        except APITimeoutError:
            self._finished = True
            raise APITimeoutError(
                f"the chat stream did not start within {self._timeout:g} s; the message was "
                "not sent again. The agent may still act on it: check session.state().",
                endpoint=_ENDPOINT,
            ) from None
        except StreamInterruptedError:
            raise
        except APIConnectionError as exc:
            if not exc.request_sent or isinstance(exc, APITimeoutError):
                raise
            # The message may have arrived: that is a dropped stream, and recover() applies.
            self._finished = True
            raise StreamInterruptedError(
                f"the chat stream dropped before it started ({exc.message}). The message was "
                "NOT sent again; call turn.recover() to see whether the agent acted on it.",
                endpoint=f"POST {_contract.RUN_SSE_PATH}",
            ) from exc
        self._last_activity = loop.time()

    def __aiter__(self) -> AsyncIterator[_events.ChatEvent]:
        if self._iterating or self._finished:
            raise RuntimeError("a chat turn's events can be iterated once; use turn.events")
        self._iterating = True
        return self._stream()

    async def _chunks(self) -> AsyncIterator[bytes]:
        """Raw body chunks, with the deadline and "still working" checked on every tick."""
        assert self._response is not None
        loop = asyncio.get_running_loop()
        content = self._response.content
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                now = loop.time()
                remaining = self._deadline - now
                if remaining <= 0:
                    raise APITimeoutError(
                        f"the chat turn ran past {self._timeout:.0f} s; the message was not "
                        "sent again. The agent may still finish: check session.state().",
                        endpoint="POST /run_sse",
                    )
                if now - self._last_activity >= self._idle_timeout:
                    raise APITimeoutError(
                        f"the agent sent nothing but heartbeats for {self._idle_timeout:.0f} s, "
                        "so the turn is treated as timed out; the message was not sent again. "
                        "The agent may still finish: check session.state().",
                        endpoint="POST /run_sse",
                    )
                remaining = min(remaining, self._last_activity + self._idle_timeout - now)
                if pending is None:
                    pending = asyncio.ensure_future(content.readany())
                done, _ = await asyncio.wait({pending}, timeout=min(_TICK, remaining))
                if not done:
                    await self._check_still_working()
                    continue
                chunk = pending.result()
                pending = None
                if not chunk:
                    return
                yield chunk
        finally:
            if pending is not None:
                pending.cancel()

    async def _check_still_working(self) -> None:
        """Call on_still_working after each ``still_working_every`` s without the agent's words.

        Heartbeats count as silence: they say the backend is alive, not that it said anything.
        """
        now = asyncio.get_running_loop().time()
        if now - self._last_words < self._still_working_every:
            return
        self._last_words = now
        if self._on_still_working is not None:
            elapsed = self._timeout - (self._deadline - now)
            outcome = self._on_still_working(elapsed)
            if inspect.isawaitable(outcome):
                await outcome

    async def _stream(self) -> AsyncIterator[_events.ChatEvent]:
        await self._start()
        loop = asyncio.get_running_loop()
        self._last_words = loop.time()
        try:
            async for item in _sse.aiter_sse(self._chunks(), endpoint=_ENDPOINT):
                for event in _events.from_sse(item):
                    self._keep(event)
                    if isinstance(event, _events.HeartbeatEvent):
                        # Every heartbeat form ends here (a comment, an empty data, an `event:
                        # heartbeat` block, a {"type": "heartbeat"}): the agent is alive, not
                        # progressing, so the heartbeats-only timer runs on [V].
                        await self._check_still_working()
                    else:
                        self._last_words = self._last_activity = loop.time()
                    yield event
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            self._flush_partial()
            raise StreamInterruptedError(
                f"the chat stream dropped after {len(self._events)} events "
                f"({type(exc).__name__}). The message was NOT sent again; "
                "call turn.recover() (or turn.reconcile()) to see what the turn changed.",
                events=self._events,
                endpoint=_ENDPOINT,
            ) from exc
        finally:
            self._flush_partial()
            self._finished = True
            await self.aclose()

    async def result(self) -> ChatResult:
        """Finish the turn (reading what is left) and say what it did.

        When the stream closed without text, the state is fetched and the reply is made from
        what changed in the timeline.

        Raises:
            StreamInterruptedError: the stream dropped; call :meth:`reconcile`.
            AgentError: the agent reported an error.
        """
        if self._result is not None:
            return self._result
        if not self._finished:
            if self._iterating:
                raise RuntimeError("finish iterating the turn before calling result()")
            async for _ in self:
                pass
        self._result = await self._build_result()
        return self._result

    async def reconcile(self) -> ChatResult:
        """What the turn did, from the events that arrived and the state now.

        Use after a :class:`StreamInterruptedError`: the agent may have finished the edit even
        though the stream dropped.
        """
        self._finished = True
        await self.aclose()
        self._result = await self._build_result()
        return self._result

    async def recover(
        self,
        *,
        first_wait: float = _contract.RECOVER_FIRST_WAIT,
        interval: float = _contract.RECOVER_INTERVAL,
        max_unchanged: int = _contract.RECOVER_MAX_UNCHANGED,
    ) -> ChatResult:
        """After a dropped stream, find out what the turn did, as the service prescribes [V].

        The message is never sent again. Waits ``first_wait`` seconds, reads the state and
        compares its timeline with the one before the turn; while unchanged, waits
        ``interval`` seconds and reads again, up to ``max_unchanged`` reads in all (about 5
        minutes with the defaults).

        Returns:
            A :class:`ChatResult` with ``recovered=True`` and the ``changes``.

        Raises:
            StreamInterruptedError: the timeline stayed unchanged through every read (the
                turn probably failed; sending the message again is the user's decision).
            APIError, APIConnectionError: when reading the state fails.
        """
        if first_wait < 0 or interval < 0 or max_unchanged < 1:
            raise ValueError("first_wait and interval must be >= 0 and max_unchanged >= 1")
        self._finished = True
        await self.aclose()
        baseline = self._draft_before
        # The retry sleep: nemo_sync.testing.disable_waits() skips these waits in tests.
        await retry_sleep(first_wait)
        for read in range(1, max_unchanged + 1):
            after = (await fetch_state(self._api, self._session_id)).draft
            if baseline is None:
                # No state from before the turn (track_changes=False): the first read is the
                # baseline, so only changes that land after it can be seen.
                baseline = self._draft_before = after
            elif not _same_draft(baseline, after):
                self._result = self._result_from(after, recovered=True)
                return self._result
            if read < max_unchanged:
                logger.debug("recovery read %d of %d: no change yet", read, max_unchanged)
                await retry_sleep(interval)
        raise StreamInterruptedError(
            f"the chat stream dropped and the timeline did not change in {max_unchanged} "
            "reads: the turn probably failed. The message was NOT sent again; send it again "
            "yourself if you still want it.",
            events=self._events,
            endpoint=f"POST {_contract.RUN_SSE_PATH}",
        )

    async def _build_result(self) -> ChatResult:
        self._flush_partial()
        text = _reply_text(self._events)
        draft_after: Draft | None = None
        if self._track_changes or not text:
            try:
                draft_after = (await fetch_state(self._api, self._session_id)).draft
            except NemoError:
                if text:
                    draft_after = None  # the words still stand; the diff is a bonus
                else:
                    raise
        return self._result_from(draft_after, text=text)

    def _result_from(
        self, draft_after: Draft | None, *, recovered: bool = False, text: str | None = None
    ) -> ChatResult:
        self._flush_partial()
        if text is None:
            text = _reply_text(self._events)
        changes: tuple[Change, ...] = ()
        if self._draft_before is not None and draft_after is not None:
            changes = tuple(self._draft_before.diff(draft_after))
        silent = not text.strip()
        if silent:
            text = describe_changes(changes)
        return ChatResult(
            text=text,
            events=tuple(self._events),
            tool_calls=tuple(e for e in self._events if isinstance(e, _events.ToolCallEvent)),
            draft_before=self._draft_before,
            draft_after=draft_after,
            changes=changes,
            suggested_actions=tuple(_gui.suggested_actions(text)) if not silent else (),
            silent=silent,
            recovered=recovered,
        )
