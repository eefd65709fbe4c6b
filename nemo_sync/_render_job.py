"""Export and render jobs: start, poll with a deadline, resume by id, cancel, download.

Replies are read in both documented forms: the API reference's [R] (``{"success": true,
"data": {"status", "outputUrl", "createdAt", ...}}``) and SKILL.md 1.9's [V] (a top-level
``status`` and ``output.url``, with or without the ``{code, message, data}`` envelope).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from yarl import URL

from nemo_sync import _contract
from nemo_sync._download import STALL_WINDOW, ProgressCallback, download, safe_file_name
from nemo_sync._envelope import pick, require_object
from nemo_sync._export_claims import (
    ACCEPTED,
    RESERVE_LEASE,
    RESERVING,
    SENDING,
    check_idempotency_key,
)
from nemo_sync._jobstore import SUBMISSION_DEADLINE, SUBMITTED, UNCONFIRMED, JobRecord
from nemo_sync._notebook import VideoFile, notebook_progress, video_html
from nemo_sync._retry import parse_retry_after
from nemo_sync._session_state import fetch_state
from nemo_sync._store_protocol import JobLeases, JobStore
from nemo_sync.draft import Draft
from nemo_sync.errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    ConfigurationError,
    DownloadError,
    JobStoreUnavailableError,
    NemoError,
    NothingToExportError,
    RenderCancelledError,
    RenderError,
    RenderFailedError,
    RenderTimeoutError,
    RequestRefusedError,
    ServerError,
)

if TYPE_CHECKING:
    from nemo_sync._api import Api

logger = logging.getLogger("nemo_sync")

POLL_INTERVAL = _contract.RENDER_POLL_INTERVAL  # the service: poll every 30 s
# Soon at first, then backing off to the service's 30 s: a render that takes seconds (the
# emulator, a short clip) is seen done in seconds, a long one costs no more polls than before.
POLL_SCHEDULE = (1.0, 2.0, 5.0, 10.0, 20.0, POLL_INTERVAL)
MAX_POLL_HINT = 60.0  # a server's Retry-After on a poll is obeyed up to this
WAIT_TIMEOUT = 900.0
# Polls that may fail in a row (after the transport's own retries) before wait() gives up.
MAX_POLL_FAILURES = 5
_RENDER = _contract.RENDER_PATH

OnResult = Callable[["RenderResult"], "Awaitable[object] | object"]

NEVER_RECEIVED = "the service never received this render; export again"
"""Why a job the service never confirmed, and still does not know after its submission
deadline (``JobRecord.submission_deadline``), is marked failed."""
# A poll of a job the service does not know: HTTP 404 [R] (``{"success": false, ...}``), or
# the envelope's not-found code [V].
_NOT_FOUND_STATUS = 404
_NOT_FOUND_CODES = frozenset({_contract.CODE_SESSION_NOT_FOUND})
# jobs() looks at the service for the jobs it never confirmed; a slow or absent network must
# not hold the listing longer than this, nor send more polls at once than this.
SETTLE_TIMEOUT = 20.0
_SETTLE_AT_ONCE = 4
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _number(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)  # an integer of 400 digits is valid JSON, and no float
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _error_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("message") or value.get("detail") or value.get("code")
    return str(value) if value else None


# A number this large is unix milliseconds ([R]: ``1773423613616``); a smaller one, seconds.
# 1e11 s is the year 5138, 1e11 ms is 1973: no real render time is on the wrong side.
_MS_THRESHOLD = 1e11


def _timestamp(value: Any) -> datetime | None:
    """A reply's time as an aware UTC datetime: unix ms [R], unix seconds, or ISO 8601.

    Unreadable values give None (the time is information, not something to fail a poll on;
    the reply's own value stays in ``raw``).
    """
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return _timestamp(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        # A time without a zone is taken as UTC, the service's.
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    number = _number(value)
    if number is None:
        return None
    seconds = number / 1000 if abs(number) >= _MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _first(objects: tuple[Mapping[str, Any], ...], keys: tuple[str, ...]) -> Any:
    """The first value present (not None) under one of ``keys``, in the first object that
    has one."""
    for obj in objects:
        for key in keys:
            value = obj.get(key)
            if value is not None:
                return value
    return None


def _status_holder(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object a render reply keeps its status in.

    The transport has already unwrapped the envelope ([V]'s ``{code, message, data}``, [R]'s
    ``{"success": true, "data"}``), so the status is usually at the top ([V]: "at top-level
    ``status``"); a body that still holds a ``data`` object with no status beside it (a
    second envelope, say) is read from that ``data`` [R].
    """
    inner = obj.get("data")
    if "status" not in obj and "state" not in obj and isinstance(inner, Mapping):
        return _status_holder(inner)  # as deep as the reply's depth cap allows, no deeper
    return obj


def _status_word(value: str) -> str:
    word = value.strip().lower()
    return _contract.RENDER_STATUS_ALIASES.get(word, word)


@attrs.frozen
class RenderResult:
    """One look at a render job, from either documented reply [R][V].

    Attributes:
        status: ``pending``, ``processing``, ``completed``, ``failed``, ``cancelled`` (also
            read from ``canceled``), or a status this SDK does not know yet (treated as still
            running).
        progress: 0-100 when the service says.
        download_url: Where the MP4 is, once completed: ``outputUrl`` [R] or ``output.url``
            [V].
        duration: The video's length in seconds (``output.duration``), when given.
        size: The file's size in bytes (``output.size``), when given.
        error: Why it failed, once failed.
        raw: The reply (after the transport removed its envelope), unchanged.
        created_at: When the job was created (``createdAt``, unix ms in [R]), as an aware
            UTC ``datetime``; None when the reply does not say.
        completed_at: When it finished (``completedAt``), the same way.
    """

    status: str
    progress: float | None = None
    download_url: str | None = None
    duration: float | None = None
    size: int | None = None
    error: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    # Keyword-only: RenderResult(status, progress, ..., error, raw) keeps working.
    created_at: datetime | None = attrs.field(default=None, kw_only=True)
    completed_at: datetime | None = attrs.field(default=None, kw_only=True)

    @property
    def done(self) -> bool:
        """The job has finished: completed, failed or cancelled."""
        return self.status in _contract.RENDER_DONE

    @property
    def ok(self) -> bool:
        """The job completed."""
        return self.status == _contract.RENDER_COMPLETED

    @property
    def cancelled(self) -> bool:
        """The job was cancelled (:meth:`RenderJob.cancel`)."""
        return self.status == _contract.RENDER_CANCELLED

    def _repr_html_(self) -> str:
        """In a notebook: the finished video as a player (from its URL), else the status."""
        if self.ok and self.download_url:
            return video_html(self.download_url, caption="the render, from the service")
        progress = f", {self.progress:g}%" if self.progress is not None else ""
        error = f": {html.escape(self.error)}" if self.error else ""
        return f"<p>render {html.escape(self.status)}{progress}{error}</p>"

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> RenderResult:
        """Parse a poll reply in any documented form.

        The status is ``status`` at the top [V] or inside ``data`` [R]; the URL is
        ``outputUrl`` [R] or ``output.url`` [V], in either place.

        Raises:
            APIResponseError: naming ``endpoint``, when the reply is not an object or has no
                status.
        """
        top = require_object(data, endpoint)
        obj = _status_holder(top)
        status = _status_word(pick(obj, "status", "state", endpoint=endpoint))
        places = (obj, top) if obj is not top else (obj,)
        outputs = tuple(o["output"] for o in places if isinstance(o.get("output"), Mapping))
        url = _first(outputs, ("url",))
        if not (isinstance(url, str) and url):
            url = _first(places, _contract.RENDER_URL_KEYS)
        size = _number(_first(outputs, ("size",)))
        return cls(
            status=status,
            progress=_number(_first(places, ("progress",))),
            download_url=url if isinstance(url, str) and url else None,
            duration=_number(_first(outputs, ("duration",))),
            size=int(size) if size is not None else None,
            error=_error_text(_first(places, ("error", "error_message"))),
            raw=dict(top),
            created_at=_timestamp(_first(places, _contract.RENDER_CREATED_KEYS)),
            completed_at=_timestamp(_first(places, _contract.RENDER_COMPLETED_KEYS)),
        )


class RenderJob:
    """A render job on the service. It lives server-side: losing this object loses nothing.

    Made by :meth:`Session.export`, or by :meth:`NemoClient.render_job` from an id.
    """

    def __init__(self, api: Api, job_id: str, *, session_id: str | None = None) -> None:
        self._api = api
        self.id = job_id
        self.session_id = session_id
        self.last: RenderResult | None = None
        self._hint: float | None = None  # the last poll's Retry-After, when it had one
        self._said_not_known = False  # "not known to the service yet" is said once per job
        self._said_degraded = False  # "the job store is unreachable" too
        self._fence: str | None = None  # the lease token this object polls under, if any
        self._lost: asyncio.Event | None = None  # set when that lease is found lost

    def __repr__(self) -> str:
        status = self.last.status if self.last else "unknown"
        return f"RenderJob(id={self.id!r}, status={status!r})"

    @property
    def _store(self) -> JobStore:
        return self._api.jobs

    async def status(self) -> RenderResult:
        """Poll once.

        A job this machine recorded but the service never confirmed (a crash between the
        submission and its answer: ``submitting`` or ``submitted`` in :meth:`NemoClient.jobs`)
        is settled by the poll. Found, it goes on as any job. Not found (HTTP 404) before its
        submission deadline (10 minutes after it was recorded), it is not known to the
        service yet: the result keeps the recorded status (still running, for :meth:`wait`),
        and one warning line says so. Not found after it, the submission never arrived: the
        result, and the job store, say ``failed`` with the reason :data:`NEVER_RECEIVED`.

        Raises:
            APIError: the service's refusal; HTTP 404 for an id this machine never recorded
                (or that the service had confirmed).
        """
        path = _contract.render_status_path(self.id)
        headers: dict[str, str] = {}
        try:
            data = await self._api.request("GET", path, reply_headers=headers)
        except APIError as exc:
            if not (exc.status == _NOT_FOUND_STATUS or exc.code in _NOT_FOUND_CODES):
                raise
            result = await self._not_known(exc)
        else:
            result = RenderResult.from_data(data, f"GET {path}")
        self._hint = parse_retry_after(headers)
        await self._seen(result)
        return result

    async def _not_known(self, exc: APIError) -> RenderResult:
        """What a "not found" means for this job, by the job store; ``exc`` when it is just
        an unknown id."""
        record = await self._store.get(self.id)
        if record is None or not same_service(record.base_url, self._api.base_url):
            raise exc
        if record.status == _contract.RENDER_FAILED and record.error == NEVER_RECEIVED:
            return _never_received(self.id)  # settled by an earlier look
        if not record.unconfirmed:
            raise exc  # the service confirmed it once: its 404 is news, not ours to explain
        now = time.time()
        if now < record.submission_deadline:
            if not self._said_not_known:
                self._said_not_known = True
                logger.warning(
                    "render %s (%s in %s since %s) is not known to the service yet; it counts "
                    "as failed if the service still does not know it at %s",
                    self.id,
                    record.status,
                    self._store.where,
                    _utc(record.created_at),
                    _utc(record.submission_deadline),
                )
            return RenderResult(status=record.status, progress=record.progress, raw={"id": self.id})
        settled = await self._store.update(
            self.id,
            when_status=UNCONFIRMED,
            status=_contract.RENDER_FAILED,
            progress=None,
            error=NEVER_RECEIVED,
        )
        if settled is None or settled.status != _contract.RENDER_FAILED:
            raise exc  # another process heard from the service meanwhile
        where = self._store.where
        logger.info("render %s: %s (marked failed in %s)", self.id, NEVER_RECEIVED, where)
        return _never_received(self.id)

    async def _seen(self, result: RenderResult) -> None:
        """Keep ``result`` as the last look, and in the job store when it changed."""
        if self.last is None or (result.status, result.progress) != (
            self.last.status,
            self.last.progress,
        ):
            fields: dict[str, Any] = {
                "status": result.status,
                "progress": result.progress,
                "download_url": result.download_url,
                "error": result.error,
            }
            store = self._store
            try:
                if self._fence is not None and isinstance(store, JobLeases):
                    # Fenced: a host that lost its lease writes nothing, and stops polling
                    # (before its next poll).
                    if not await store.fenced_update(self.id, self._fence, **fields):
                        self._fence = None
                        if self._lost is not None:
                            self._lost.set()
                else:
                    await store.update(self.id, **fields)
            except JobStoreUnavailableError as exc:
                self._degraded(exc)
        self.last = result

    async def cancel(self) -> RenderResult:
        """Ask the service to stop this render [R]: ``POST .../lambda/<id>/cancel``, no body.

        Returns:
            The job as the service then describes it: ``status`` ``cancelled`` when the reply
            says so or says nothing about the status (an empty ``success: true``). When the
            reply cannot be read at all, one poll says what the job is now (possibly still
            running: the cancel may take a moment). The job store records it, so
            ``jobs()`` lists it as cancelled and ``wait()`` on it, in any process, raises
            :class:`RenderCancelledError` at once.

        Cancelling a job that is already cancelled is harmless. Interrupting ``wait()``
        (Ctrl-C, a timeout) never cancels a job: only this does.

        Raises:
            RequestRefusedError, APIError: the service refused, e.g. because the job had
                already completed or failed (its words are in the message).
        """
        path = _contract.render_cancel_path(self.id)
        endpoint = f"POST {path}"
        try:
            data = await self._api.request("POST", path)
        except APIResponseError as exc:
            # A 2xx whose body is not an object (empty, say): accepted, but it does not say
            # what the job is now, so the service is asked.
            logger.debug("render %s: unreadable cancel reply (%s); polling once", self.id, exc)
            return await self.status()
        obj = data if isinstance(data, Mapping) else {}
        holder = _status_holder(obj)
        if "status" in holder or "state" in holder:
            result = RenderResult.from_data(obj, endpoint)
        else:
            # [R] documents no reply for cancel: a success without a status is the cancel
            # accepted. What else the reply holds (progress, times) is still read.
            result = RenderResult.from_data(
                {**holder, "status": _contract.RENDER_CANCELLED}, endpoint
            )
            result = attrs.evolve(result, raw=dict(obj))
        await self._seen(result)
        return result

    async def _known_cancelled(self) -> RenderResult | None:
        """A cancel this machine already saw (this object, or any process via the job store).

        Cancelled is final, so ``wait()`` need not ask: a service whose polls were slow to
        show the cancel would otherwise keep it polling until its timeout.
        """
        if self.last is not None and self.last.cancelled:
            return self.last
        try:
            record = await self._store.get(self.id)
        except JobStoreUnavailableError as exc:
            self._degraded(exc)
            return None
        if (
            record is not None
            and record.status == _contract.RENDER_CANCELLED
            and record.base_url in (None, self._api.base_url)  # the same id on another API
        ):
            return RenderResult(
                status=_contract.RENDER_CANCELLED,
                progress=record.progress,
                raw={"id": self.id, "status": record.status},
            )
        return None

    def _unfinished(self, result: RenderResult) -> RenderError:
        """The error for a job that ended without a video."""
        if result.cancelled:
            return RenderCancelledError(
                f"render {self.id} was cancelled; export again for a new one", job_id=self.id
            )
        reason = result.error or "the service gave no reason"
        return RenderFailedError(
            f"render {self.id} failed: {reason}", job_id=self.id, reason=reason
        )

    async def watch(
        self, *, poll_interval: float | None = None, timeout: float = WAIT_TIMEOUT
    ) -> AsyncIterator[RenderResult]:
        """Yield a result each time the status or progress changes, until the job is done.

        Polls as :meth:`wait` does (``poll_interval=None``: 1, 2, 5, 10, 20, then every 30 s,
        or the server's ``Retry-After``).

        A job already known to be cancelled (see :meth:`cancel`) yields that once, with no
        poll.

        Raises:
            RenderTimeoutError: when ``timeout`` seconds pass first (the job goes on).
            APIError, APIConnectionError: when polling keeps failing.
        """
        if (poll_interval is not None and poll_interval < 0) or timeout <= 0:
            raise ConfigurationError("poll_interval must be >= 0 and timeout > 0 seconds")
        known = await self._known_cancelled()
        if known is not None:
            self.last = known
            yield known
            return
        deadline = asyncio.get_running_loop().time() + timeout
        store = self._store
        # A store shared by hosts (Redis): one host polls, the others follow the store.
        changes = (
            self._shared(store, poll_interval, timeout, deadline)
            if isinstance(store, JobLeases)
            else self._poll(poll_interval, timeout, deadline)
        )
        seen: tuple[str, float | None] | None = None
        async for result in changes:
            if (result.status, result.progress) != seen:
                seen = (result.status, result.progress)
                yield result

    async def _poll(
        self,
        poll_interval: float | None,
        timeout: float,
        deadline: float,
        lost: asyncio.Event | None = None,
    ) -> AsyncIterator[RenderResult]:
        """Poll the service until the job is done, yielding every look; ``lost``: the lease
        this host polls under is gone (then it stops, raising :class:`_LeaseLost`)."""
        polls = 0
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            if lost is not None and lost.is_set():
                raise _LeaseLost
            try:
                # A poll that hangs must not hold the caller past its own deadline.
                result = await asyncio.wait_for(self.status(), max(deadline - loop.time(), 0))
                failures = 0
            except asyncio.TimeoutError:
                raise self._late(timeout) from None
            except (APIConnectionError, ServerError) as exc:
                failures += 1
                logger.debug("poll of render %s failed (%s), %d in a row", self.id, exc, failures)
                if failures >= MAX_POLL_FAILURES:
                    raise
                result = None
            if result is not None:
                yield result
                if result.done:
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._late(timeout)
            polls += 1
            # A plain sleep: an idle wait costs no CPU.
            await asyncio.sleep(min(self._next_wait(poll_interval, polls), remaining))

    async def _shared(
        self, store: JobLeases, poll_interval: float | None, timeout: float, deadline: float
    ) -> AsyncIterator[RenderResult]:
        """Poll under the job's lease when no host holds it, else follow the host that does
        (docs/fleet.md); the store unreachable: poll anyway (degraded)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                token = await store.take_lease(self.id)
                record = None if token is not None else await self._store.get(self.id)
            except JobStoreUnavailableError as exc:
                self._degraded(exc)
                async for result in self._poll(poll_interval, timeout, deadline):
                    yield result
                return
            if token is not None:
                try:
                    async for result in self._owned(store, token, poll_interval, timeout, deadline):
                        yield result
                    return
                except _LeaseLost:
                    logger.info("render %s: another host took its lease; following it", self.id)
                    continue
            if record is None:
                # Not in the store: the owner records nothing, so there is nothing to follow.
                async for result in self._poll(poll_interval, timeout, deadline):
                    yield result
                return
            try:
                async with store.follow(self.id) as next_change:
                    # Read after subscribing: a change made in between is not missed. Each
                    # change after that comes with its record.
                    followed = await self._store.get(self.id)
                    while True:
                        if followed is not None:
                            result = _from_record(followed)
                            self.last = result
                            yield result
                            if followed.finished:
                                return
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            raise self._late(timeout)
                        # Quiet for a third of the TTL: look whether the lease is free.
                        followed = await next_change(min(store.lease_ttl / 3, remaining))
                        if followed is None:
                            break
            except JobStoreUnavailableError as exc:
                self._degraded(exc)
                async for result in self._poll(poll_interval, timeout, deadline):
                    yield result
                return

    async def _owned(
        self,
        store: JobLeases,
        token: str,
        poll_interval: float | None,
        timeout: float,
        deadline: float,
    ) -> AsyncIterator[RenderResult]:
        """Poll while holding the lease ``token``, renewing it every third of its TTL."""
        lost = asyncio.Event()

        async def renew() -> None:
            while True:
                await asyncio.sleep(store.lease_ttl / 3)
                try:
                    if not await store.renew_lease(self.id, token):
                        lost.set()  # another host owns it now: this one stops polling
                        return
                except JobStoreUnavailableError as exc:
                    # Polling goes on; if the lease lapses, another host may poll too: an
                    # overlapping poll costs one idempotent GET, and writes stay fenced.
                    self._degraded(exc)

        renewing = asyncio.create_task(renew())
        self._fence, self._lost = token, lost
        try:
            async for result in self._poll(poll_interval, timeout, deadline, lost):
                yield result
        finally:
            self._fence = self._lost = None
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if not lost.is_set():
                # Done, timed out or cancelled: another host may take over at once.
                with contextlib.suppress(JobStoreUnavailableError):
                    await store.drop_lease(self.id, token)

    def _degraded(self, exc: Exception) -> None:
        if not self._said_degraded:
            self._said_degraded = True
            logger.warning(
                "render %s: the job store is unreachable (%s); this host polls the service "
                "itself (degraded)",
                self.id,
                exc,
            )

    def _next_wait(self, poll_interval: float | None, polls: int) -> float:
        """A fixed cadence when asked for; else the server's hint, else the schedule."""
        if poll_interval is not None:
            return poll_interval
        if self._hint is not None:
            return min(self._hint, MAX_POLL_HINT)
        return POLL_SCHEDULE[min(polls, len(POLL_SCHEDULE)) - 1]

    def _late(self, timeout: float) -> RenderTimeoutError:
        return RenderTimeoutError(
            f"render {self.id} is not done after {timeout:g} s; it goes on server-side: "
            f"pick it up later with nemo.render_job({self.id!r}).wait()",
            job_id=self.id,
        )

    async def wait(
        self,
        *,
        poll_interval: float | None = None,
        timeout: float = WAIT_TIMEOUT,
        on_progress: OnResult | None = None,
    ) -> RenderResult:
        """Poll until the job completes.

        Args:
            poll_interval: Seconds between polls, for a fixed cadence. By default polls come
                soon and back off to the service's 30 s (1, 2, 5, 10, 20, then 30 s), and a
                ``Retry-After`` on a poll reply is obeyed (up to 60 s).
            timeout: Give up waiting after this many seconds (the job is not cancelled).
            on_progress: Called with each new :class:`RenderResult` (sync or async).

        Raises:
            RenderFailedError: the render failed (``reason`` says why).
            RenderCancelledError: the job was cancelled (by :meth:`cancel`, here or in another
                process, or by the service); raised at once, without polling, when this
                machine's job store already says so.
            RenderTimeoutError: the deadline passed first.
        """
        final: RenderResult | None = None
        # In a notebook, with no callback of the caller's, a bar shows the render's progress.
        with notebook_progress(
            None if on_progress is None else _no_display, f"render {self.id}", total=100,
            unit="%",
        ) as bar:  # fmt: skip
            async for result in self.watch(poll_interval=poll_interval, timeout=timeout):
                final = result
                if on_progress is not None:
                    outcome = on_progress(result)
                    if inspect.isawaitable(outcome):
                        await outcome
                elif bar is not None:
                    bar(round(result.progress or 0), 100)
        assert final is not None  # watch() returns only after a done result
        if not final.ok:
            raise self._unfinished(final)
        return final

    async def download(
        self,
        dest: str | Path = ".",
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        stall_timeout: float = STALL_WINDOW,
    ) -> VideoFile:
        """Download the finished MP4 to ``dest`` (a file, or a folder to put it in).

        Returns:
            Where it is: a :class:`pathlib.Path` that a notebook shows as a video player.

        ``timeout`` bounds the download (None: no overall deadline); ``stall_timeout`` fails
        it when less than 64 KB arrive in that many seconds, so a server dripping bytes
        cannot hold it forever.

        The file comes from ``outputUrl`` [R] / ``output.url`` [V] (usually a CDN: the token
        is never sent there). When the reply has no URL, or the URL answers 403, 404 or 410
        (expired, say), it comes from the API host's own download path instead, with the
        token [V]. The file appears at ``dest`` only once complete.

        Raises:
            RenderFailedError: the render failed.
            RenderCancelledError: the job was cancelled.
            DownloadError: the download failed or was incomplete.
        """
        if self.last is not None and self.last.ok:
            result = self.last
        else:
            result = await self._known_cancelled() or await self.status()
        if not result.ok:
            if result.done:
                raise self._unfinished(result)
            result = await self.wait()
        target = Path(dest).expanduser()
        if target.is_dir():
            # Named after the job, not the CDN's name for it: predictable, and the same
            # whichever of the two URLs serves the bytes.
            target = target / video_file_name(self.id)
        with notebook_progress(on_progress, f"download {target.name}", total=None) as shown:
            path = await self._fetch(result, target, shown, timeout, stall_timeout)
        await self._store.update(self.id, output_path=str(path))
        return VideoFile(path)

    async def _fetch(
        self,
        result: RenderResult,
        target: Path,
        on_progress: ProgressCallback | None,
        timeout: float | None,
        stall_timeout: float,
    ) -> Path:
        """The video from its URL, else from the API's download path (see :meth:`download`)."""
        transport = self._api.transport
        fallback = _contract.render_download_path(self.id)
        path: Path | None = None
        if result.download_url is not None:
            try:
                path = await download(
                    transport,
                    result.download_url,
                    target,
                    default_name=target.name,
                    on_progress=on_progress,
                    timeout=timeout,
                    stall_timeout=stall_timeout,
                )
            except DownloadError as exc:
                if exc.status not in _contract.DOWNLOAD_FALLBACK_STATUSES:
                    raise
                logger.info(
                    "render %s: output.url answered HTTP %s; using the API's download path",
                    self.id,
                    exc.status,
                )
        if path is None:
            path = await download(
                transport,
                str(transport.url(fallback)),
                target,
                default_name=target.name,
                on_progress=on_progress,
                timeout=timeout,
                stall_timeout=stall_timeout,
            )
        return path


class _LeaseLost(Exception):
    """This host no longer holds the lease on polling a render: it stops polling."""


def _from_record(record: JobRecord) -> RenderResult:
    """A look at a job as the store recorded it (what a following host sees)."""
    return RenderResult(
        status=record.status,
        progress=record.progress,
        download_url=record.download_url,
        error=record.error,
        raw={"id": record.id, "status": record.status},
    )


def _no_display(_done: int, _total: int | None) -> None:
    """Stands for a caller's own callback: no notebook display is added beside it."""


def _never_received(render_id: str) -> RenderResult:
    return RenderResult(
        status=_contract.RENDER_FAILED,
        error=NEVER_RECEIVED,
        raw={"id": render_id, "status": _contract.RENDER_FAILED, "error": NEVER_RECEIVED},
    )


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def same_service(recorded: str | None, current: str) -> bool:
    """Whether a job recorded on ``recorded`` runs on the API at ``current``.

    A job of another API (staging beside production under one home) is never settled by
    this one's 404. The embedded emulator (``--local``) listens on a new port in every
    process, over the same stored state, so loopback URLs that differ only in the port are
    the same service.
    """
    if recorded is None or recorded == current:
        return True
    old, new = URL(recorded), URL(current)
    return (
        old.host in _LOOPBACK
        and new.host in _LOOPBACK
        and (old.scheme, old.path) == (new.scheme, new.path)
    )


async def settle_unconfirmed(api: Api, records: Sequence[JobRecord]) -> None:
    """One look at the service for each job it never confirmed (see :meth:`RenderJob.status`),
    so a crash between a submission and its answer leaves no job ``submitting`` forever.

    Best effort: a look that fails (no network, a 5xx) leaves its job as it was for the next
    look, and all of them together take at most :data:`SETTLE_TIMEOUT`.
    """
    orphans = [r for r in records if r.unconfirmed and same_service(r.base_url, api.base_url)]
    if not orphans:
        return
    at_once = asyncio.Semaphore(_SETTLE_AT_ONCE)

    async def look(record: JobRecord) -> None:
        async with at_once:
            try:
                await RenderJob(api, record.id, session_id=record.session_id).status()
            except NemoError as exc:
                logger.debug("render %s: left %s (%s)", record.id, record.status, exc)

    try:
        await asyncio.wait_for(asyncio.gather(*(look(r) for r in orphans)), SETTLE_TIMEOUT)
    except asyncio.TimeoutError:
        logger.debug("no answer within %g s; the jobs stay as recorded", SETTLE_TIMEOUT)


def video_file_name(render_id: str) -> str:
    """The file name a render's video is saved under: its id, made safe, and ``.mp4``."""
    return f"{safe_file_name(render_id, 'render', limit=100)}.mp4"


def _wire_draft(draft: Draft | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(draft, Draft):
        return draft.to_wire()
    if isinstance(draft, Mapping):
        return draft
    raise ConfigurationError(f"draft must be a Draft or a dict; got {type(draft).__name__}")


def _nothing_to_export(where: str) -> NothingToExportError:
    return NothingToExportError(
        f"Nothing to export: {where} has no track with segments. Generate or edit first "
        '(for example session.send("sync the music to my clips")), then export.'
    )


async def export(
    api: Api,
    session_id: str,
    draft: Draft | Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> RenderJob:
    """Check the draft, record the job, submit it (``Session.export`` documents this)."""
    if draft is None:
        state = await fetch_state(api, session_id)
        # The exact JSON the service gave goes back: no round trip through the models.
        wire: Mapping[str, Any] = state.draft_wire or {}
        where = "the session's timeline"
    else:
        wire = _wire_draft(draft)
        where = "the draft given"
    if not _contract.is_exportable(wire):
        raise _nothing_to_export(where)
    if idempotency_key is not None:
        return await _export_once(api, session_id, wire, check_idempotency_key(idempotency_key))
    store = api.jobs
    for attempt in (1, 2):
        # Reserved in the store: never one sent before, by this host or (Redis) any other;
        # a retry gets a new one.
        render_id = await store.new_render_id()
        try:
            return await _submit(api, session_id, wire, render_id)
        except (ServerError, APIConnectionError) as exc:
            # A failed submission is retried once, with a NEW id [R][V].
            if attempt == 2:
                raise
            logger.info("render submission failed (%s); retrying once with a new id", exc)
        except APIError as exc:
            if attempt == 2 or not _new_id_may_help(exc):
                raise
            logger.info("render submission refused (%s); retrying once with a new id", exc)
    raise AssertionError("unreachable: the second attempt returns or raises")  # pragma: no cover


async def _submit(api: Api, session_id: str, wire: Mapping[str, Any], render_id: str) -> RenderJob:
    """Record the job, send it once, and record what became of it."""
    store = api.jobs
    # Recorded before the request: a crash between the two cannot lose the job's id.
    await store.put(JobRecord(id=render_id, session_id=session_id, base_url=api.base_url))
    try:
        data = await api.request(
            "POST", _RENDER, json=_contract.export_body(render_id, session_id, wire)
        )
    except (ServerError, APIConnectionError):
        # The job stays recorded as submitted: it may have reached the service.
        await store.update(render_id, status=SUBMITTED)
        raise
    except APIError:
        # The service answered and refused: this id never became a job.
        await store.update(render_id, status=_contract.RENDER_FAILED)
        raise
    except BaseException:
        # Cancelled or timed out: the POST may have reached the service, so the job is
        # kept as submitted (listed by jobs(include_finished=False)) until a poll says.
        await asyncio.shield(store.update(render_id, status=SUBMITTED))
        raise
    return await _accepted(api, data, render_id, session_id, f"POST {_RENDER}")


# A waiting caller looks at the store this often (backing off), and asks the service about a
# reservation that is being sent once it is this old, then this often.
_CLAIM_POLL_FIRST = 0.05
_CLAIM_POLL_MAX = 1.0
_ASK_AFTER = 5.0
_ASK_EVERY = 5.0


async def _export_once(api: Api, session_id: str, wire: Mapping[str, Any], key: str) -> RenderJob:
    """Export for an idempotency key: one render however many callers, on whichever hosts
    (the model is in nemo_sync._export_claims and docs/fleet.md)."""
    store = api.jobs
    loop = asyncio.get_running_loop()
    candidate = await store.new_render_id()  # used only if this caller wins the key
    delay = _CLAIM_POLL_FIRST
    next_ask = 0.0
    while True:
        claim = await store.claim_export(key, candidate, lease=RESERVE_LEASE)
        if claim.won:
            job = await _send_claimed(api, session_id, wire, key, claim.render_id)
            if job is not None:
                return job
            candidate = await store.new_render_id()  # another caller took the key over
            continue
        if claim.state == ACCEPTED and claim.job_id:
            logger.info("export %r: render %s, started before", key, claim.job_id)
            return RenderJob(api, claim.job_id, session_id=session_id)
        if (
            claim.state == SENDING
            and claim.now - claim.reserved_at >= _ASK_AFTER
            and loop.time() >= next_ask
        ):
            next_ask = loop.time() + _ASK_EVERY
            known = await _service_knows(api, claim.render_id)
            if known:
                # The sender died (or failed) after the request arrived: attach to it.
                await store.advance_export(key, claim.render_id, ACCEPTED, job_id=claim.render_id)
                return RenderJob(api, claim.render_id, session_id=session_id)
            if known is False and claim.now >= claim.reserved_at + SUBMISSION_DEADLINE:
                # Never arrived, and now never will: a NEW id, sent once [R][V].
                if await store.retake_export(key, claim.render_id, candidate, lease=RESERVE_LEASE):
                    logger.warning(
                        "export %r: render %s never reached the service; sending %s instead",
                        key,
                        claim.render_id,
                        candidate,
                    )
                    job = await _send_claimed(api, session_id, wire, key, candidate)
                    if job is not None:
                        return job
                    candidate = await store.new_render_id()
                continue
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, _CLAIM_POLL_MAX)


async def _send_claimed(
    api: Api, session_id: str, wire: Mapping[str, Any], key: str, render_id: str
) -> RenderJob | None:
    """Send the render of a key this caller reserved; None when the reservation was lost
    before anything was sent (another caller sends it instead)."""
    store = api.jobs
    for attempt in (1, 2):
        # From reserving to sending, only while the reservation is still this caller's:
        # past this point the request may reach the service, and nobody else may send.
        if not await store.advance_export(key, render_id, SENDING, from_state=RESERVING):
            return None
        try:
            job = await _submit(api, session_id, wire, render_id)
        except APIError as exc:
            if attempt == 1 and (_new_id_may_help(exc) and not isinstance(exc, ServerError)):
                # Refused, so nothing was made: once more with a new id [R][V].
                new_id = await store.new_render_id()
                if not await store.retake_export(key, render_id, new_id, lease=RESERVE_LEASE):
                    return None
                logger.info("render submission refused (%s); retrying once with a new id", exc)
                render_id = new_id
                continue
            if not isinstance(exc, ServerError):
                await store.release_export(key, render_id)  # nothing was made: key free again
            # A 5xx may have made the job: the key stays "sending", and a later call with
            # it asks the service (found: attached; never arrived: a new id).
            raise
        except APIConnectionError as exc:
            if attempt == 1 and not exc.request_sent:
                new_id = await store.new_render_id()
                if not await store.retake_export(key, render_id, new_id, lease=RESERVE_LEASE):
                    return None
                logger.info("render submission failed (%s); retrying once with a new id", exc)
                render_id = new_id
                continue
            raise
        await store.advance_export(key, render_id, ACCEPTED, job_id=job.id)
        return job
    raise AssertionError("unreachable: the second attempt returns or raises")  # pragma: no cover


async def _service_knows(api: Api, render_id: str) -> bool | None:
    """Whether the service has a render of this id; None when it could not say."""
    try:
        await api.request("GET", _contract.render_status_path(render_id))
    except APIError as exc:
        if exc.status == _NOT_FOUND_STATUS or exc.code in _NOT_FOUND_CODES:
            return False
        logger.debug("render %s: the service could not say (%s)", render_id, exc)
        return None
    except APIConnectionError as exc:
        logger.debug("render %s: the service could not say (%s)", render_id, exc)
        return None
    return True


async def _accepted(
    api: Api, data: Any, render_id: str, session_id: str, endpoint: str
) -> RenderJob:
    """The job the submit reply describes: [R] ``data: {id, status, progress}``, [V]
    ``{render_id, status}``, or nothing (then the id sent, pending)."""
    obj = data if isinstance(data, Mapping) else {}
    holder = _status_holder(obj)
    server_id = next(
        (
            str(o[k])
            for o in (holder, obj)
            for k in _contract.RENDER_ID_KEYS
            if isinstance(o.get(k), (str, int)) and not isinstance(o.get(k), bool)
        ),
        render_id,
    )
    _contract.path_segment(server_id, f"the render id in the {endpoint} reply")
    has_status = "status" in holder or "state" in holder
    result = RenderResult.from_data(obj, endpoint) if has_status else None
    record = JobRecord(
        id=server_id,
        session_id=session_id,
        base_url=api.base_url,
        status=result.status if result else _contract.RENDER_PENDING,
        progress=result.progress if result else None,
    )
    await api.jobs.put(record, replaces=render_id if server_id != render_id else None)
    job = RenderJob(api, server_id, session_id=session_id)
    job.last = result
    return job


# [R]: "If a render fails with duplicate id error, generate a new id and retry." The words
# are not documented beyond that, so the usual ones count.
_DUPLICATE_ID = re.compile(
    r"duplicate|already (exists?|used|in use|taken)|not unique", re.IGNORECASE
)


def _new_id_may_help(exc: APIError) -> bool:
    """Whether a refused submission is worth one more try with a new id [R][contract v3]:
    ``success: false``, or a duplicate id (HTTP 409, or words that say so). Anything else
    (a 400 about the body, 402, a bad token) would only be refused again."""
    if isinstance(exc, RequestRefusedError) or exc.status == _DUPLICATE_STATUS:
        return True
    return bool(_DUPLICATE_ID.search(exc.message))


_DUPLICATE_STATUS = 409
_id_lock = threading.Lock()
_last_id_ms = 0


def fresh_render_id() -> str:
    """``render_<unix ms>`` [V], never one this process made before.

    Two exports in one millisecond (``asyncio.gather``, threads) or a quick retry would
    otherwise send the same id, which the service refuses [R] and the job store would
    overwrite: the milliseconds only move forward here.
    """
    global _last_id_ms  # noqa: PLW0603 - one counter for the process, by design
    with _id_lock:
        now_ms = time.time_ns() // 1_000_000
        _last_id_ms = max(now_ms, _last_id_ms + 1)
        return f"{_contract.RENDER_ID_PREFIX}{_last_id_ms}"
