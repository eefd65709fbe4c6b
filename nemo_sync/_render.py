"""Export and render jobs: start, poll with a deadline, resume by id, download."""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._download import ProgressCallback, download
from nemo_sync._envelope import pick, require_object
from nemo_sync._jobstore import JobRecord, JobStore
from nemo_sync.errors import (
    APIConnectionError,
    ConfigurationError,
    InsufficientCreditsError,
    RenderFailedError,
    RenderTimeoutError,
    ServerError,
)

if TYPE_CHECKING:
    from nemo_sync._client import NemoClient
    from nemo_sync._session import Session
    from nemo_sync.draft import Draft

logger = logging.getLogger("nemo_sync")

RESOLUTIONS = ("720p", "1080p")
ASPECTS = ("9:16", "16:9", "1:1")
POLL_INTERVAL = 30.0  # the seed: poll every 30 s
WAIT_TIMEOUT = 900.0
# Polls that may fail in a row (after the transport's own retries) before wait() gives up.
MAX_POLL_FAILURES = 5
_RENDER = "/api/render/proxy/lambda"

OnResult = Callable[["RenderResult"], "Awaitable[object] | object"]


@attrs.frozen
class RenderResult:
    """One look at a render job.

    Attributes:
        status: ``queued``, ``processing``, ``completed``, ``failed``, or a status this SDK
            does not know yet (treated as still running).
        progress: 0-100 when the service says.
        download_url: Where the MP4 is, once completed.
        error: Why it failed, once failed.
        raw: The reply's ``data``, unchanged.
    """

    status: str
    progress: float | None = None
    download_url: str | None = None
    error: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def done(self) -> bool:
        """The job has finished, well or badly."""
        return self.status in ("completed", "failed")

    @property
    def ok(self) -> bool:
        """The job completed."""
        return self.status == "completed"

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> RenderResult:
        obj = require_object(data, endpoint)
        status = str(pick(obj, "status", "state", endpoint=endpoint)).lower()
        progress = obj.get("progress")
        url = obj.get("download_url") or obj.get("url") or obj.get("output_url")
        error = obj.get("error") or obj.get("error_message")
        return cls(
            status=status,
            progress=float(progress) if isinstance(progress, (int, float)) else None,
            download_url=url if isinstance(url, str) and url else None,
            error=str(error) if error else None,
            raw=dict(obj),
        )


class RenderJob:
    """A render job on the service. It lives server-side: losing this object loses nothing.

    Made by :meth:`Session.export`, or by :meth:`NemoClient.render_job` from an id.
    """

    def __init__(self, client: NemoClient, job_id: str, *, session_id: str | None = None) -> None:
        self._client = client
        self.id = job_id
        self.session_id = session_id
        self.last: RenderResult | None = None

    def __repr__(self) -> str:
        status = self.last.status if self.last else "unknown"
        return f"RenderJob(id={self.id!r}, status={status!r})"

    @property
    def _store(self) -> JobStore:
        return JobStore(self._client.home)

    async def status(self) -> RenderResult:
        """Poll once."""
        path = f"{_RENDER}/{self.id}"
        data = await self._client._request("GET", path)
        result = RenderResult.from_data(data, f"GET {path}")
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
        self, *, poll_interval: float = POLL_INTERVAL, timeout: float = WAIT_TIMEOUT
    ) -> AsyncIterator[RenderResult]:
        """Yield a result each time the status or progress changes, until the job is done.

        Raises:
            RenderTimeoutError: when ``timeout`` seconds pass first (the job goes on).
            APIError, APIConnectionError: when polling keeps failing.
        """
        if poll_interval < 0 or timeout <= 0:
            raise ConfigurationError("poll_interval must be >= 0 and timeout > 0 seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: tuple[str, float | None] | None = None
        failures = 0
        while True:
            try:
                result = await self.status()
                failures = 0
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
                raise RenderTimeoutError(
                    f"render {self.id} is not done after {timeout:.0f} s; it goes on "
                    f"server-side: pick it up later with nemo.render_job({self.id!r}).wait()",
                    job_id=self.id,
                )
            # A plain sleep: an idle wait costs no CPU.
            await asyncio.sleep(min(poll_interval, remaining))

    async def wait(
        self,
        *,
        poll_interval: float = POLL_INTERVAL,
        timeout: float = WAIT_TIMEOUT,
        on_progress: OnResult | None = None,
    ) -> RenderResult:
        """Poll until the job completes.

        Args:
            poll_interval: Seconds between polls (the service suggests 30).
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
        self, dest: str | Path = ".", *, on_progress: ProgressCallback | None = None
    ) -> Path:
        """Download the finished MP4 to ``dest`` (a file, or a folder to put it in).

        The token is sent only when the file is on the API's own host. The file appears at
        ``dest`` only once complete.

        Raises:
            RenderFailedError: the render failed.
            DownloadError: the download failed or was incomplete.
        """
        result = self.last if self.last is not None and self.last.ok else await self.status()
        if not result.ok or result.download_url is None:
            if result.status == "failed":
                reason = result.error or "unknown"
                raise RenderFailedError(
                    f"render {self.id} failed: {reason}", job_id=self.id, reason=reason
                )
            result = await self.wait(poll_interval=5.0)
        assert result.download_url is not None
        transport = self._client._ensure_open()
        path = await download(
            transport,
            result.download_url,
            Path(dest),
            default_name=f"render-{self.id}.mp4",
            on_progress=on_progress,
        )
        await self._store.update(self.id, output_path=str(path))
        return path


def _wire_draft(draft: Draft | Mapping[str, Any]) -> dict[str, Any]:
    to_wire = getattr(draft, "to_wire", None)
    if callable(to_wire):
        result: dict[str, Any] = to_wire()
        return result
    if isinstance(draft, Mapping):
        return dict(draft)
    raise ConfigurationError(f"draft must be a Draft or a dict; got {type(draft).__name__}")


async def export(
    session: Session,
    draft: Draft | Mapping[str, Any] | None = None,
    *,
    resolution: str = "1080p",
    aspect: str | None = None,
    ensure_credits: bool = False,
) -> RenderJob:
    """Start rendering (see :meth:`Session.export`)."""
    if resolution not in RESOLUTIONS:
        raise ConfigurationError(
            f"resolution must be one of {', '.join(RESOLUTIONS)}; got {resolution!r}"
        )
    if aspect is not None and aspect not in ASPECTS:
        raise ConfigurationError(f"aspect must be one of {', '.join(ASPECTS)}; got {aspect!r}")
    client = session.client
    if ensure_credits:
        credits = await client.credits()
        if credits.available <= 0:
            raise InsufficientCreditsError(
                f"No credits left ({credits.available} available): top up, or register an "
                "anonymous account, before exporting.",
                bind_url=session.bind_url,
            )
    wire = _wire_draft(draft if draft is not None else (await session.state()).draft)
    render_id = uuid.uuid4().hex
    store = JobStore(client.home)
    # Recorded before the request: a crash between the two cannot lose the job's id.
    await store.put(JobRecord(id=render_id, session_id=session.id, base_url=client.base_url))
    body: dict[str, Any] = {
        "render_id": render_id,
        "session_id": session.id,
        "draft": wire,
        "resolution": resolution,
    }
    if aspect is not None:
        body["aspect"] = aspect
    try:
        data = await client._request("POST", _RENDER, json=body)
    except BaseException:
        await store.update(render_id, status="failed")
        raise
    obj = require_object(data, f"POST {_RENDER}")
    server_id = str(
        pick(obj, "render_id", "renderId", "id", endpoint=f"POST {_RENDER}", kind=(str, int))
    )
    result = RenderResult.from_data(obj, f"POST {_RENDER}") if "status" in obj else None
    record = JobRecord(
        id=server_id,
        session_id=session.id,
        base_url=client.base_url,
        status=result.status if result else "queued",
    )
    await store.put(record, replaces=render_id if server_id != render_id else None)
    job = RenderJob(client, server_id, session_id=session.id)
    job.last = result
    return job
