"""The render job store: every started job, on disk, so a process that died can go on.

``jobs.json`` under NEMO_HOME, mode 0600, replaced atomically, read-modify-written under a
file lock so two processes never lose each other's entries. Finished jobs beyond the newest
200 are pruned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._atomic import write_private
from nemo_sync._contract import RENDER_DONE
from nemo_sync._filelock import file_lock

logger = logging.getLogger("nemo_sync")

JOBS_FILE = "jobs.json"
KEEP_FINISHED = 200


@attrs.frozen
class JobRecord:
    """What the store knows about a render job.

    Attributes:
        id: The render id (the server's, once it answered).
        session_id: The session it renders.
        created_at: When it was started (Unix time).
        status: The last status seen (``submitting`` until the service confirmed the job;
            ``submitted`` when the request may have arrived but no answer came; ``failed``
            for a submission the service refused; ``cancelled`` after
            :meth:`RenderJob.cancel`).
        progress: The last progress seen, 0-100.
        download_url: Where the output is, once completed.
        output_path: Where it was downloaded to, if it was.
        base_url: The API it runs on.
    """

    id: str
    session_id: str
    created_at: float = attrs.field(factory=time.time)
    status: str = "submitting"
    progress: float | None = None
    download_url: str | None = None
    output_path: str | None = None
    base_url: str | None = None

    @property
    def finished(self) -> bool:
        """The job is over: completed, failed or cancelled (none of them changes again)."""
        return self.status in RENDER_DONE


class JobStore:
    """Reads and writes ``jobs.json`` under a home folder."""

    def __init__(self, home: Path) -> None:
        self.path = home / JOBS_FILE
        self._lock_path = home / "jobs.lock"

    def _read(self) -> dict[str, JobRecord]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable %s: %s", self.path, type(exc).__name__)
            return {}
        records: dict[str, JobRecord] = {}
        fields = {a.name for a in attrs.fields(JobRecord)}
        for item in raw.get("jobs", []) if isinstance(raw, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                try:
                    record = JobRecord(**{k: v for k, v in item.items() if k in fields})
                except TypeError:
                    continue
                records[record.id] = record
        return records

    def _write(self, records: dict[str, JobRecord]) -> None:
        ordered = sorted(records.values(), key=lambda r: r.created_at, reverse=True)
        finished = [r for r in ordered if r.finished][KEEP_FINISHED:]
        kept = [r for r in ordered if r not in finished]
        body = {"jobs": [attrs.asdict(r) for r in kept]}
        write_private(self.path, json.dumps(body, indent=2).encode("utf-8"))

    async def list(self) -> list[JobRecord]:
        """All records, newest first (the file is read in a thread: never on the loop)."""
        records = await asyncio.to_thread(self._read)
        return sorted(records.values(), key=lambda r: r.created_at, reverse=True)

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        return (await asyncio.to_thread(self._read)).get(job_id)

    async def put(self, record: JobRecord, *, replaces: str | None = None) -> None:
        """Add or replace a record (``replaces``: an id it supersedes)."""

        def change(records: dict[str, JobRecord]) -> bool:
            if replaces is not None:
                records.pop(replaces, None)
            records[record.id] = record
            return True

        await self._locked(change)

    async def update(self, job_id: str, **changes: Any) -> JobRecord | None:
        """Change fields of a record; None when the store does not have it."""
        updated: list[JobRecord] = []

        def change(records: dict[str, JobRecord]) -> bool:
            record = records.get(job_id)
            if record is None:
                return False
            new = attrs.evolve(record, **changes)
            updated.append(new)
            if new == record:
                return False
            records[job_id] = new
            return True

        await self._locked(change)
        return updated[0] if updated else None

    async def _locked(self, change: Callable[[dict[str, JobRecord]], bool]) -> None:
        """Read, change and write under the file lock, the file work in a thread.

        A cancelled caller still lets a write that started finish before the lock is let go:
        the store is never left half written, nor written by two processes at once.
        """

        def read_change_write() -> None:
            records = self._read()
            if change(records):
                self._write(records)

        async with file_lock(self._lock_path):
            work = asyncio.ensure_future(asyncio.to_thread(read_change_write))
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait({work})
                raise
