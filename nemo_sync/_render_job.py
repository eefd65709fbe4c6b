"""Export and render jobs: start, poll with a deadline, resume by id, download."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
    ConfigurationError,
    DownloadError,
    NothingToExportError,
    RenderFailedError,
    RenderTimeoutError,
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
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _error_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("message") or value.get("detail") or value.get("code")
    return str(value) if value else None


@attrs.frozen
class RenderResult:
    """One look at a render job [V][T].

    Attributes:
        status: ``pending``, ``processing``, ``completed``, ``failed``, or a status this SDK
            does not know yet (treated as still running).
        progress: 0-100 when the service says.
        download_url: Where the MP4 is, once completed (``output.url``).
        duration: The video's length in seconds (``output.duration``), when given.
        size: The file's size in bytes (``output.size``), when given.
        error: Why it failed, once failed.
        raw: The reply (its ``data`` when enveloped), unchanged.
    """

    status: str
    progress: float | None = None
    download_url: str | None = None
    duration: float | None = None
    size: int | None = None
    error: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def done(self) -> bool:
        """The job has finished, well or badly."""
        return self.status in _contract.RENDER_DONE

    @property
    def ok(self) -> bool:
        """The job completed."""
        return self.status == _contract.RENDER_COMPLETED

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> RenderResult:
        """Parse a poll reply: top-level ``status``, ``output: {url, duration, size}``."""
        obj = require_object(data, endpoint)
        status = str(pick(obj, "status", "state", endpoint=endpoint)).lower()
        output = obj.get("output")
        output = output if isinstance(output, Mapping) else {}
        url = output.get("url") or obj.get("download_url") or obj.get("url")
        size = _number(output.get("size"))
        return cls(
            status=status,
            progress=_number(obj.get("progress")),
            download_url=url if isinstance(url, str) and url else None,
            duration=_number(output.get("duration")),
            size=int(size) if size is not None else None,
            error=_error_text(obj.get("error") or obj.get("error_message")),
            raw=dict(obj),
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
        return result

    async def watch(
        self, *, poll_interval: float | None = None, timeout: float = WAIT_TIMEOUT
    ) -> AsyncIterator[RenderResult]:
        """Yield a result each time the status or progress changes, until the job is done.

        Polls as :meth:`wait` does (``poll_interval=None``: 1, 2, 5, 10, 20, then every 30 s,
        or the server's ``Retry-After``).

        Raises:
            RenderTimeoutError: when ``timeout`` seconds pass first (the job goes on).
            APIError, APIConnectionError: when polling keeps failing.
        """
        if (poll_interval is not None and poll_interval < 0) or timeout <= 0:
            raise ConfigurationError("poll_interval must be >= 0 and timeout > 0 seconds")
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
            reason = final.error or "the service gave no reason"
            raise RenderFailedError(
                f"render {self.id} failed: {reason}", job_id=self.id, reason=reason
            )
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

        The file comes from ``output.url`` (usually a CDN: the token is never sent there).
        When the reply has no URL, or the URL answers 403, 404 or 410 (expired, say), it
        comes from the API host's own download path instead, with the token [V]. The file
        appears at ``dest`` only once complete.

        Raises:
            RenderFailedError: the render failed.
            DownloadError: the download failed or was incomplete.
        """
        result = self.last if self.last is not None and self.last.ok else await self.status()
        if not result.ok:
            if result.status == _contract.RENDER_FAILED:
                reason = result.error or "unknown"
                raise RenderFailedError(
                    f"render {self.id} failed: {reason}", job_id=self.id, reason=reason
                )
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
    previous: str | None = None
    for attempt in (1, 2):
        render_id = _contract.new_render_id()
        if render_id == previous:  # two ids in one millisecond: never reuse one
            render_id = _contract.new_render_id(time.time() + 0.001)
        previous = render_id
        # Recorded before the request: a crash between the two cannot lose the job's id.
        await store.put(JobRecord(id=render_id, session_id=session_id, base_url=api.base_url))
        try:
            data = await api.request(
                "POST", _RENDER, json=_contract.export_body(render_id, session_id, wire)
            )
        except (ServerError, APIConnectionError) as exc:
            # The service: a failed submission is retried once, with a NEW id. The job
            # stays recorded as submitted: it may have reached the service.
            await store.update(render_id, status=SUBMITTED)
            if attempt == 2:
                raise
            logger.info("render submission failed (%s); retrying once with a new id", exc)
            continue
        except APIError:
            # The service answered and refused: this id never became a job.
            await store.update(render_id, status=_contract.RENDER_FAILED)
            raise
        except BaseException:
            # Cancelled or timed out: the POST may have reached the service, so the job is
            # kept as submitted (listed by jobs(include_finished=False)) until a poll says.
            await asyncio.shield(store.update(render_id, status=SUBMITTED))
            raise
        obj = data if isinstance(data, Mapping) else {}
        server_id = next(
            (
                str(obj[k])
                for k in _contract.RENDER_ID_KEYS
                if isinstance(obj.get(k), (str, int)) and not isinstance(obj.get(k), bool)
            ),
            render_id,
        )
        _contract.path_segment(server_id, f"the render id in the {endpoint} reply")
        result = RenderResult.from_data(obj, endpoint) if "status" in obj else None
        record = JobRecord(
            id=server_id,
            session_id=session_id,
            base_url=api.base_url,
            status=result.status if result else _contract.RENDER_PENDING,
        )
        await store.put(record, replaces=render_id if server_id != render_id else None)
        job = RenderJob(api, server_id, session_id=session_id)
        job.last = result
        return job
    raise AssertionError("unreachable: the second attempt returns or raises")  # pragma: no cover
