"""The render job store's protocol: what the SDK asks of any place it keeps render jobs in.

Two implementations ship: :class:`~nemo_sync._jobstore.FileJobStore` (``jobs.json`` under
NEMO_HOME, the default: one machine) and :class:`~nemo_sync._redis_store.RedisJobStore`
(shared by every host that points at one Redis). ``NemoClient(job_store=...)`` takes either,
or any object with these methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nemo_sync._export_claims import ExportClaim
    from nemo_sync._jobstore import JobRecord


@runtime_checkable
class JobStore(Protocol):
    """Where render jobs are remembered, so a job outlives the process that started it.

    The service stays the source of truth for a render; the store remembers which jobs were
    started (before the request goes out, so a crash cannot lose an id) and what was last
    seen of them. Finished jobs beyond the newest 200 are pruned; unfinished ones are kept.

    Every method may raise :class:`~nemo_sync.JobStoreUnavailableError` when the store
    cannot be reached (a Redis that is down, say).
    """

    @property
    def where(self) -> str:
        """The store's place, for messages (a file path, a Redis URL and key prefix)."""
        ...

    async def list(self) -> list[JobRecord]:
        """All records, newest first (by ``created_at``)."""
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        ...

    async def put(self, record: JobRecord, *, replaces: str | None = None) -> None:
        """Add or replace a record (``replaces``: an id it supersedes, removed with it)."""
        ...

    async def update(
        self, job_id: str, *, when_status: Collection[str] | None = None, **changes: Any
    ) -> JobRecord | None:
        """Change fields of a record and return it; None when the store does not have it.

        ``when_status``: change it only while its status is one of these (another process
        may have moved it on); otherwise it is returned unchanged. Atomic with respect to
        every other write of the same store.
        """
        ...

    # -- ids and idempotency keys (docs/fleet.md; nemo_sync._export_claims says the model) --

    async def new_render_id(self) -> str:
        """A ``render_<unix ms>`` id no other caller of this store was given."""
        ...

    async def claim_export(self, key: str, render_id: str, *, lease: float) -> ExportClaim:
        """Reserve idempotency ``key`` for ``render_id`` (state ``reserving``, a lease of
        ``lease`` seconds) when no one holds it, or when its holder's ``reserving`` lease is
        over; else say who holds it. Atomic."""
        ...

    async def advance_export(
        self,
        key: str,
        render_id: str,
        state: str,
        *,
        from_state: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        """Move ``key``'s reservation to ``state`` (with ``job_id``), only while it is
        ``render_id``'s and, when given, in ``from_state``. Atomic; False when it was not."""
        ...

    async def retake_export(self, key: str, old_id: str, new_id: str, *, lease: float) -> bool:
        """Reserve ``key`` again for ``new_id`` (``reserving``), only while it is ``old_id``'s
        and not submitted. Atomic."""
        ...

    async def release_export(self, key: str, render_id: str) -> None:
        """Forget ``key`` while it is ``render_id``'s (nothing was made for it)."""
        ...


@runtime_checkable
class JobLeases(Protocol):
    """What a store shared by several hosts adds, so one host polls a render and the others
    follow it (the Redis store has it; the file store does not: one machine's processes
    each poll). Not public yet."""

    lease_ttl: float

    async def take_lease(self, job_id: str) -> str | None: ...

    async def renew_lease(self, job_id: str, token: str) -> bool: ...

    async def drop_lease(self, job_id: str, token: str) -> None: ...

    async def fenced_update(self, job_id: str, token: str, **changes: Any) -> bool: ...

    def follow(
        self, job_id: str
    ) -> AbstractAsyncContextManager[Callable[[float], Awaitable[JobRecord | None]]]: ...
