"""Render jobs: pending -> processing (progress) -> completed or failed.

Export is free [V]: no credits are held or charged. The blocking render runs in a thread; its
progress comes back through the loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nemo_sync._contract import RENDER_COMPLETED, RENDER_FAILED, RENDER_PROCESSING, is_exportable
from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._state import RenderRecord, SessionRecord

logger = logging.getLogger("nemo_sync.emulator")

NO_RENDERER = "no renderer installed: pip install 'nemo-sync[local]'"
NOTHING_TO_EXPORT = (
    "nothing to render: the draft has no track with segments; "
    "generate or edit the video in this session first"
)
NO_VIDEO = "nothing to render: the timeline has no video segments (only audio or text)"
_TICK = 0.05

SaveJob = Callable[..., Awaitable[None]]


@runtime_checkable
class RenderBackend(Protocol):
    """What renders a draft to an MP4 (``nemo_sync.local.LocalRenderBackend`` is the real one).

    ``render`` blocks (the emulator runs it in a thread) and reports progress 0.0-1.0.
    """

    name: str

    def render(
        self,
        draft: dict[str, Any],
        media: Mapping[str, Path],
        out: Path,
        *,
        width: int,
        height: int,
        on_progress: Callable[[float], None],
    ) -> None:
        """Write the rendered video to ``out``."""
        ...


class Renderer:
    """Runs the render jobs of one emulator.

    Args:
        backend: What renders (``None``: every render fails saying what to install).
        render_seconds: How long a render takes at least.
        out_dir: Where outputs go.
        save: Writes a job for other processes (a persistent emulator): called as
            ``save(job)`` when the status changes and every ``heartbeat`` seconds while it
            runs, and ``save(job, released=True)`` when the emulator stops before the job is
            done, which leaves it for the next one to finish rather than failing it.
        heartbeat: Seconds between progress saves.
    """

    def __init__(
        self,
        backend: RenderBackend | None,
        *,
        render_seconds: Callable[[], float],
        out_dir: Path,
        save: SaveJob | None = None,
        heartbeat: float = 0.5,
    ) -> None:
        self.backend = backend
        self._render_seconds = render_seconds
        self._out_dir = out_dir
        self._save = save
        self._heartbeat = heartbeat
        self._saved_at: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, job: RenderRecord, session: SessionRecord | None) -> None:
        """Run the job in the background."""
        task = asyncio.ensure_future(self._run(job, session))
        job.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: RenderRecord, session: SessionRecord | None) -> None:
        started = time.monotonic()
        total = self._render_seconds()
        try:
            await asyncio.sleep(total * 0.2)
            job.status = RENDER_PROCESSING
            await self._save_now(job)
            out = await self._produce(job, session, started, total)
            remaining = started + total - time.monotonic()
            if remaining > 0:
                await self._tick_until(job, started, total, started + total)
            job.output = out
            job.progress = 100
            job.status = RENDER_COMPLETED
            await self._save_now(job)
        except asyncio.CancelledError:
            if self._save is None:
                self._fail(job, "the emulator shut down")
            else:  # stored: the next emulator on the folder renders it again from its draft
                await self._save_now(job, released=True)
            raise
        except Exception as exc:  # a failed render is a job state, not a crash
            logger.debug("render %s failed", job.id, exc_info=True)
            self._fail(job, str(exc) or type(exc).__name__)
            await self._save_now(job)
        finally:
            self._saved_at.pop(job.key, None)

    async def _save_now(self, job: RenderRecord, *, released: bool = False) -> None:
        if self._save is None:
            return
        self._saved_at[job.key] = time.monotonic()
        try:
            await self._save(job, released=released)
        except Exception:  # the job still runs here; the next save may get through
            logger.warning("could not store render %s", job.id, exc_info=True)

    async def _beat(self, job: RenderRecord) -> None:
        """Save the progress now and then: other processes polling the job see it move, and
        see that its worker is alive."""
        last = self._saved_at.get(job.key, 0.0)
        if self._save is not None and time.monotonic() - last >= self._heartbeat:
            await self._save_now(job)

    def _fail(self, job: RenderRecord, message: str) -> None:
        if job.done:
            return
        job.status = RENDER_FAILED
        job.error = message

    async def _tick_until(
        self, job: RenderRecord, started: float, total: float, until: float
    ) -> None:
        """Advance time-based progress (the floor under the backend's own reports)."""
        while (now := time.monotonic()) < until:
            if total > 0:
                job.progress = max(job.progress, min(95, int((now - started) / total * 100)))
            await self._beat(job)
            await asyncio.sleep(min(_TICK, until - now))

    async def _produce(
        self, job: RenderRecord, session: SessionRecord | None, started: float, total: float
    ) -> Path:
        if job.fail_with is not None:
            await self._tick_until(job, started, total, started + total * 0.6)
            raise RuntimeError(job.fail_with)
        if self.backend is None:
            raise RuntimeError(NO_RENDERER)
        media = _media_paths(job.draft, session)
        out = self._out_dir / f"{job.file_id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written under a name of its own, then renamed: a process that stopped mid-render
        # may still be writing its copy while the next one renders the job again.
        part = out.with_name(f"{job.file_id}.{secrets.token_hex(4)}.part.mp4")
        loop = asyncio.get_running_loop()

        def report(value: float) -> None:
            done = min(max(value, 0.0), 1.0)
            loop.call_soon_threadsafe(_raise_progress, job, 20 + int(done * 75))

        backend = self.backend
        rendering = asyncio.ensure_future(
            asyncio.to_thread(
                backend.render,
                job.draft,
                media,
                part,
                width=job.width,
                height=job.height,
                on_progress=report,
            )
        )
        while not rendering.done():
            await asyncio.wait([rendering], timeout=_TICK)
            if total > 0:
                elapsed = (time.monotonic() - started) / total
                _raise_progress(job, min(95, int(elapsed * 100)))
            await self._beat(job)
        try:
            rendering.result()
            if not part.is_file() or part.stat().st_size == 0:
                raise RuntimeError(f"the {backend.name} renderer wrote no output")
            part.replace(out)
        finally:
            part.unlink(missing_ok=True)
        return out

    async def idle(self) -> None:
        """Wait until every running job has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def abandon(self) -> None:
        """Cancel every job without waiting (they end as failed); see :meth:`cancel_all`."""
        for task in self._tasks:
            task.cancel()

    async def cancel_all(self) -> None:
        """Stop every job (they end as failed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _raise_progress(job: RenderRecord, value: int) -> None:
    if not job.done:
        job.progress = max(job.progress, min(value, 99))


def _media_paths(draft: dict[str, Any], session: SessionRecord | None) -> dict[str, Path]:
    """The files the draft refers to.

    Raises:
        RuntimeError: when the timeline is empty or names media the session does not have.
    """
    if session is None:
        raise RuntimeError("the session of this render no longer exists")
    if not is_exportable(draft):
        raise RuntimeError(NOTHING_TO_EXPORT)
    if not any(d.segments(t) for t in d.tracks_of(draft, d.VIDEO)):
        raise RuntimeError(NO_VIDEO)
    paths = {}
    for media_id in sorted(d.media_ids(draft)):
        media = session.media.get(media_id)
        if media is None:
            raise RuntimeError(f"the draft uses media {media_id!r}, which is not in the session")
        paths[media_id] = media.path
    return paths
