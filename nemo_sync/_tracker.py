"""The tracker: finishes render jobs nobody is waiting for (issue 22, adoption).

A host that started a render and died before any host called ``wait()`` leaves a job that is
unfinished in the store and that no host polls. A tracker scans the store every
``scan_interval`` seconds for such jobs and finishes each one as ``wait()`` would: under the
job's lease, with fenced writes, so every host's ``jobs()`` and ``wait()`` see the result.

With a Redis store, a scan is one round trip (:meth:`RedisJobStore.unleased`: unfinished
jobs whose lease expired); an adopted job is polled under its lease, so two trackers (or a
tracker and a waiting host) never poll it in the same lease period. With the file store
there are no leases: the tracker finishes this machine's unfinished jobs, as a
``wait()`` on each would (docs/fleet.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nemo_sync._render_job import WAIT_TIMEOUT, RenderJob, same_service
from nemo_sync.errors import ConfigurationError, JobStoreUnavailableError, NemoError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nemo_sync._api import Api
    from nemo_sync._jobstore import JobRecord

logger = logging.getLogger("nemo_sync")

DEFAULT_SCAN_INTERVAL = 10.0
DEFAULT_MAX_JOBS = 100
# A job whose adoption failed (its polls kept failing, the service refused the id) is left
# alone this long before the next try: it costs one look a minute, not one a scan.
_RETRY_AFTER = 60.0
# The least time a scan is given, however short the interval: a loaded Redis answers late.
_SCAN_DEADLINE = 5.0


@runtime_checkable
class _Unleased(Protocol):
    """A store that can list, in one round trip, the unfinished jobs no host polls."""

    async def unleased(self, most: int) -> tuple[JobRecord, ...]: ...


class Tracker:
    """Finishes the render jobs nobody is waiting for; made by :meth:`NemoClient.tracker`.

    Use it as an async context manager: it scans while the block runs and stops (giving its
    leases back) when the block ends::

        async with nemo.tracker() as tracker:
            await stop.wait()

    Attributes:
        adopted: How many jobs this tracker took over.
        finished: How many of them it saw to their end (completed, failed or cancelled).
    """

    def __init__(
        self,
        api: Api,
        *,
        scan_interval: float = DEFAULT_SCAN_INTERVAL,
        poll_interval: float | None = None,
        max_jobs: int = DEFAULT_MAX_JOBS,
        timeout: float = WAIT_TIMEOUT,
    ) -> None:
        if not scan_interval > 0:
            raise ConfigurationError(f"scan_interval must be positive; got {scan_interval}")
        if max_jobs < 1:
            raise ConfigurationError(f"max_jobs must be 1 or more; got {max_jobs}")
        if (poll_interval is not None and poll_interval < 0) or not timeout > 0:
            raise ConfigurationError("poll_interval must be >= 0 and timeout > 0 seconds")
        self._api = api
        self.scan_interval = scan_interval
        self._poll_interval = poll_interval
        self._max_jobs = max_jobs
        self._timeout = timeout
        self._running: dict[str, asyncio.Task[None]] = {}
        self._resting: dict[str, float] = {}  # id -> monotonic time of its next try
        self._scanner: asyncio.Task[None] | None = None
        self._said_down = False
        self.adopted = 0
        self.finished = 0

    def __repr__(self) -> str:
        return (
            f"Tracker(store={self._api.jobs.where!r}, scan_interval={self.scan_interval:g}, "
            f"tracking={len(self._running)})"
        )

    @property
    def where(self) -> str:
        """The job store it scans, for messages."""
        return self._api.jobs.where

    @property
    def tracking(self) -> frozenset[str]:
        """The ids of the jobs this tracker polls now."""
        return frozenset(self._running)

    async def __aenter__(self) -> Tracker:
        self._scanner = asyncio.create_task(self._scan_forever())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop scanning and polling; each adopted job's lease is given back, so another
        tracker (or host) takes it over at once."""
        tasks = [t for t in (self._scanner, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._scanner = None

    async def _scan_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.scan()
            await asyncio.sleep(max(self.scan_interval - (loop.time() - started), 0))

    async def scan(self) -> int:
        """Look once for jobs nobody polls and adopt them; returns how many it adopted.

        A store that cannot be reached is logged once (and once more when it answers again):
        the tracker goes on scanning.
        """
        room = self._max_jobs - len(self._running)
        if room <= 0:
            return 0
        try:
            # Bounded: a Redis that hangs (not refusing, just silent) costs one scan, not all.
            deadline = max(self.scan_interval, _SCAN_DEADLINE)
            # Asked for more than there is room for: jobs resting (or, in a file store with
            # no leases, being polled here) are among those returned and are skipped below.
            most = room + len(self._resting) + len(self._running)
            orphans = await asyncio.wait_for(self._orphans(most), deadline)
        except (JobStoreUnavailableError, asyncio.TimeoutError) as exc:
            if not self._said_down:
                self._said_down = True
                logger.warning(
                    "tracker: the job store %s is unreachable (%s); scanning again every %g s",
                    self._api.jobs.where,
                    str(exc) or "no answer",
                    self.scan_interval,
                )
            return 0
        if self._said_down:
            self._said_down = False
            logger.warning("tracker: the job store %s answers again", self._api.jobs.where)
        now = time.monotonic()
        seen = {r.id for r in orphans}
        # Only the ids still orphaned are remembered: the memory stays flat.
        self._resting = {i: t for i, t in self._resting.items() if i in seen and t > now}
        adopted = 0
        for record in orphans:
            if len(self._running) >= self._max_jobs:
                break
            if record.id in self._running or record.id in self._resting:
                continue
            if not same_service(record.base_url, self._api.base_url):
                continue  # a job of another API (staging beside production): not ours
            self._running[record.id] = asyncio.create_task(self._finish(record))
            adopted += 1
        self.adopted += adopted
        return adopted

    async def _orphans(self, most: int) -> Sequence[JobRecord]:
        store = self._api.jobs
        if isinstance(store, _Unleased):
            return await store.unleased(most)
        # One machine's store: every unfinished job, as `nemo-sync jobs` lists them.
        return [r for r in await store.list() if not r.finished][:most]

    async def _finish(self, record: JobRecord) -> None:
        job = RenderJob(self._api, record.id, session_id=record.session_id)
        logger.info("tracker: adopting render %s (%s)", record.id, record.status)
        try:
            # watch() takes the job's lease (or follows the host that just took it), renews
            # it and writes fenced, exactly as a waiting host does.
            async for _ in job.watch(poll_interval=self._poll_interval, timeout=self._timeout):
                pass
        except NemoError as exc:
            self._resting[record.id] = time.monotonic() + _RETRY_AFTER
            logger.warning("tracker: render %s not finished (%s); tried again later", job.id, exc)
        except Exception:
            # Not ours to end the tracker over: the other jobs go on; this one rests too.
            self._resting[record.id] = time.monotonic() + _RETRY_AFTER
            logger.exception("tracker: render %s: unexpected error; tried again later", job.id)
        else:
            self.finished += 1
            status = job.last.status if job.last is not None else "done"
            logger.info("tracker: render %s %s", job.id, status)
        finally:
            self._running.pop(record.id, None)
