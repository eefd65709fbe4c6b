"""Export and render jobs: start, poll with a deadline, resume by id, cancel, download.

Replies are read in both documented forms: the API reference's [R] (``{"success": true,
"data": {"status", "outputUrl", "createdAt", ...}}``) and SKILL.md 1.9's [V] (a top-level
``status`` and ``output.url``, with or without the ``{code, message, data}`` envelope).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync import _contract
from nemo_sync._download import STALL_WINDOW, ProgressCallback, download, safe_file_name
from nemo_sync._envelope import pick, require_object
from nemo_sync._jobstore import JobRecord, JobStore
from nemo_sync._retry import parse_retry_after
from nemo_sync._session_state import fetch_state
from nemo_sync.draft import Draft
from nemo_sync.errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    ConfigurationError,
    DownloadError,
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

SUBMITTED = "submitted"  # the job store's status for a POST that may have arrived
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

    def __repr__(self) -> str:
        status = self.last.status if self.last else "unknown"
        return f"RenderJob(id={self.id!r}, status={status!r})"

    @property
    def _store(self) -> JobStore:
        return self._api.jobs

    async def status(self) -> RenderResult:
        """Poll once."""
        path = _contract.render_status_path(self.id)
        headers: dict[str, str] = {}
        data = await self._api.request("GET", path, reply_headers=headers)
        result = RenderResult.from_data(data, f"GET {path}")
        self._hint = parse_retry_after(headers)
        await self._seen(result)
        return result

    async def _seen(self, result: RenderResult) -> None:
        """Keep ``result`` as the last look, and in the job store when it changed."""
        if self.last is None or (result.status, result.progress) != (
            self.last.status,
            self.last.progress,
        ):
            await self._store.update(
                self.id,
                status=result.status,
                progress=result.progress,
                download_url=result.download_url,
            )
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
        record = await self._store.get(self.id)
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
        polls = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: tuple[str, float | None] | None = None
        failures = 0
        while True:
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
                if (result.status, result.progress) != seen:
                    seen = (result.status, result.progress)
                    yield result
                if result.done:
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._late(timeout)
            polls += 1
            # A plain sleep: an idle wait costs no CPU.
            await asyncio.sleep(min(self._next_wait(poll_interval, polls), remaining))

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
        async for result in self.watch(poll_interval=poll_interval, timeout=timeout):
            final = result
            if on_progress is not None:
                outcome = on_progress(result)
                if inspect.isawaitable(outcome):
                    await outcome
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
    ) -> Path:
        """Download the finished MP4 to ``dest`` (a file, or a folder to put it in).

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
        transport = self._api.transport
        fallback = _contract.render_download_path(self.id)
        target = Path(dest).expanduser()
        if target.is_dir():
            # Named after the job, not the CDN's name for it: predictable, and the same
            # whichever of the two URLs serves the bytes.
            target = target / video_file_name(self.id)
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
        await self._store.update(self.id, output_path=str(path))
        return path


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
    api: Api, session_id: str, draft: Draft | Mapping[str, Any] | None = None
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
    store = api.jobs
    endpoint = f"POST {_RENDER}"
    for attempt in (1, 2):
        render_id = fresh_render_id()  # never one sent before: a retry gets a new one
        # Recorded before the request: a crash between the two cannot lose the job's id.
        await store.put(JobRecord(id=render_id, session_id=session_id, base_url=api.base_url))
        try:
            data = await api.request(
                "POST", _RENDER, json=_contract.export_body(render_id, session_id, wire)
            )
        except (ServerError, APIConnectionError) as exc:
            # A failed submission is retried once, with a NEW id [R][V]. The job stays
            # recorded as submitted: it may have reached the service.
            await store.update(render_id, status=SUBMITTED)
            if attempt == 2:
                raise
            logger.info("render submission failed (%s); retrying once with a new id", exc)
            continue
        except APIError as exc:
            # The service answered and refused: this id never became a job.
            await store.update(render_id, status=_contract.RENDER_FAILED)
            if attempt == 2 or not _new_id_may_help(exc):
                raise
            logger.info("render submission refused (%s); retrying once with a new id", exc)
            continue
        except BaseException:
            # Cancelled or timed out: the POST may have reached the service, so the job is
            # kept as submitted (listed by jobs(include_finished=False)) until a poll says.
            await asyncio.shield(store.update(render_id, status=SUBMITTED))
            raise
        return await _accepted(api, data, render_id, session_id, endpoint)
    raise AssertionError("unreachable: the second attempt returns or raises")  # pragma: no cover


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
