"""Render jobs: pending -> processing (progress) -> completed or failed, or cancelled [R].

Export is free [V]: no credits are held or charged. The blocking render runs in a thread; its
progress (the frames encoded) comes back through the loop, and a cancelled job stops it at its
next report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nemo_sync._contract import (
    RENDER_CANCELLED,
    RENDER_COMPLETED,
    RENDER_FAILED,
    RENDER_PROCESSING,
    is_exportable,
)
from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._api_errors import DiskFull, is_disk_full
from nemo_sync.emulator._state import MediaRecord, RenderRecord, SessionRecord
from nemo_sync.emulator._user_paths import name_files

logger = logging.getLogger("nemo_sync.emulator")

NO_RENDERER = "no renderer installed: pip install 'nemo-sync[local]'"
NOTHING_TO_EXPORT = (
    "nothing to render: the draft has no track with segments; "
    "generate or edit the video in this session first"
)
NO_VIDEO = "nothing to render: the timeline has no video segments (only audio or text)"
_TICK = 0.05
# How long a cancelled render may take to reach its next progress report and stop.
_STOP_WAIT = 5.0

SaveJob = Callable[..., Awaitable[None]]
FindMedia = Callable[[SessionRecord, str], MediaRecord | None]


@runtime_checkable
class RenderBackend(Protocol):
    """What renders a draft to an MP4 (``nemo_sync.local.LocalRenderBackend`` is the real one).

    ``render`` blocks (the emulator runs it in a thread) and reports progress 0.0-1.0: the
    share of the frames encoded, which is what the job's progress shows. ``on_progress`` raises
    once the job is cancelled; the backend lets that exception through and leaves no partial
    file, so a render stops at its next report.
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
        now: The emulator's clock (``completed_at`` is on it, as ``created_at`` is).
        find_media: Finds a session's media by what a draft calls it (its id, or the URL an
            [R]-style upload reply gave); by id only when not given.
        writer: This emulator's worker id, put in the names of its partial files: a later
            process removes those of a process that is gone (``_store_admin``).
    """

    def __init__(
        self,
        backend: RenderBackend | None,
        *,
        render_seconds: Callable[[], float],
        out_dir: Path,
        save: SaveJob | None = None,
        heartbeat: float = 0.5,
        now: Callable[[], float] = time.time,
        find_media: FindMedia | None = None,
        writer: str | None = None,
    ) -> None:
        self.backend = backend
        self._writer = writer
        self._find_media: FindMedia = find_media or _media_by_id
        self._render_seconds = render_seconds
        self._out_dir = out_dir
        self._save = save
        self._heartbeat = heartbeat
        self._now = now
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
        out: Path | None = None
        try:
            await asyncio.sleep(total * 0.2)
            # A cancel [R] sets the status before it stops this task: from then on the task
            # changes nothing about the job.
            if _ended(job):
                return
            job.status = RENDER_PROCESSING
            await self._save_now(job)
            out = await self._produce(job, session, started, total)
            remaining = started + total - time.monotonic()
            if remaining > 0:
                await self._tick_until(job, started, total, started + total)
            if _ended(job):
                out.unlink(missing_ok=True)
                return
            job.output = out
            job.progress = 100
            job.status = RENDER_COMPLETED
            job.completed_at = self._now()
            await self._save_now(job)
        except asyncio.CancelledError:
            if job.status == RENDER_CANCELLED:
                # The client's cancel: whoever cancelled it stored that; the video, if it was
                # already written, is not wanted.
                if out is not None:
                    out.unlink(missing_ok=True)
            elif self._save is None:
                self._fail(job, "the emulator shut down")
            else:  # stored: the next emulator on the folder renders it again from its draft
                await self._save_now(job, released=True)
            raise
        except Exception as exc:  # a failed render is a job state, not a crash
            logger.debug("render %s failed", job.id, exc_info=True)
            if is_disk_full(exc):
                # The one message that names the folder: it is the disk to free space on.
                message = DiskFull.of(exc, Path(os.path.abspath(self._out_dir))).message
            else:
                media = session.media.values() if session is not None else ()
                # The outputs folder is in the data folder: no path of it may show either.
                message = name_files(str(exc), media, data_dir=self._out_dir.parent)
            self._fail(job, message or type(exc).__name__)
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
        job.completed_at = self._now()

    async def _tick_until(
        self, job: RenderRecord, started: float, total: float, until: float
    ) -> None:
        """Advance time-based progress: for renders with no backend at work (a fault's failure)
        and for the rest of the shortest render time once a fast backend has finished."""
        while (now := time.monotonic()) < until:
            if total > 0 and not job.done:
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
        media = _media_paths(job.draft, session, self._find_media)
        out = self._out_dir / f"{job.file_id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written under a name of its own, then renamed: a process that stopped mid-render
        # may still be writing its copy while the next one renders the job again. The name
        # carries the writer, so the next process on the folder can clear a killed one's.
        writer = f"{self._writer}." if self._writer else ""
        part = out.with_name(f"{job.file_id}.{writer}{secrets.token_hex(4)}.part.mp4")
        # The share of the frames the backend has encoded (0.0-1.0), written by its thread.
        encoded = _Share()
        stop = threading.Event()

        def report(value: float) -> None:
            # Runs in the render thread, the only place it touches: so it is also where the
            # thread learns the job was cancelled. Raising unwinds the backend, which deletes
            # its partial file, and ends the thread at once rather than after the whole video.
            if stop.is_set():
                raise RenderCancelled(job.id)
            encoded.value = min(max(value, 0.0), 1.0)

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
        try:
            while not rendering.done():
                await asyncio.wait([rendering], timeout=_TICK)
                _raise_progress(job, int(_honest_share(encoded.value, started, total) * 100))
                await self._beat(job)
        except asyncio.CancelledError:
            stop.set()
            await _until_stopped(rendering)
            part.unlink(missing_ok=True)
            raise
        try:
            rendering.result()
            if not part.is_file() or part.stat().st_size == 0:
                raise RuntimeError(f"the {backend.name} renderer wrote no output")
            part.replace(out)
        finally:
            part.unlink(missing_ok=True)
        return out

    async def stopped(self, job: RenderRecord) -> None:
        """Wait until a cancelled job's render in this process has stopped: its thread ended
        and its partial files removed (bounded, as a backend may report progress rarely)."""
        task = job.task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=_STOP_WAIT + 1.0)

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


class RenderCancelled(Exception):
    """Raised inside a render thread, at its next progress report, once its job is cancelled."""


class _Share:
    """A fraction one thread writes and another reads (a float store is atomic)."""

    value = 0.0


def _honest_share(encoded: float, started: float, total: float) -> float:
    """The share of the render done: the frames encoded, but no more than the share of the
    shortest render time gone (the job cannot complete before that)."""
    if total <= 0:
        return encoded
    return min(encoded, (time.monotonic() - started) / total)


async def _until_stopped(rendering: asyncio.Future[None]) -> None:
    """Wait (bounded) for a cancelled render's thread to stop at its next progress report.

    Its partial file must be gone before the emulator deletes its folder, and the interpreter
    waits for the thread at exit anyway. Cancelled again meanwhile, it keeps waiting.
    """
    deadline = time.monotonic() + _STOP_WAIT
    while not rendering.done() and (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([rendering], timeout=left)
    if rendering.done() and not rendering.cancelled():
        rendering.exception()  # retrieved: a RenderCancelled here is expected, not news


def _ended(job: RenderRecord) -> bool:
    """Whether the job ended (was cancelled) while its task awaited. A call, not
    ``job.done`` inline: a type checker would take the status for what it was before."""
    return job.done


def _raise_progress(job: RenderRecord, value: int) -> None:
    if not job.done:
        job.progress = max(job.progress, min(value, 99))


def _media_by_id(session: SessionRecord, ref: str) -> MediaRecord | None:
    return session.media.get(ref)


def _media_paths(
    draft: dict[str, Any], session: SessionRecord | None, find: FindMedia
) -> dict[str, Path]:
    """The files the draft refers to, by the reference the draft uses.

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
        media = find(session, media_id)
        if media is None:
            raise RuntimeError(f"the draft uses media {media_id!r}, which is not in the session")
        paths[media_id] = media.path
    return paths
