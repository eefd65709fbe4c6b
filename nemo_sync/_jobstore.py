"""The render job store: every started job, on disk, so a process that died can go on.

``jobs.json`` under NEMO_HOME, mode 0600, replaced atomically, read-modify-written under a
file lock so two processes never lose each other's entries. Finished jobs beyond the newest
200 are pruned.

The file may be found damaged (a crash, a full disk, a hand edit, a newer version). Reading it
never hangs (a FIFO), never follows a symlink, never reads more than :data:`MAX_FILE_BYTES`
and never raises an untyped error:

- a file that is not a job list at all (not JSON, the wrong shape, too large, not a regular
  file) is moved aside whole to ``jobs.json.damaged-<UTC time>`` and the store starts fresh;
- a record that cannot be read (not an object, no id, a field of the wrong type) is never
  dropped unseen: the file as it was is copied aside before the first write without it, and
  the good records stay;
- fields this version does not know (a newer version's) are kept and written back.

Each of these says so in one warning line naming the file and what was done. The store's
operations are few and explicit (``get``, ``list``, ``put``, ``update``): the
:class:`~nemo_sync.JobStore` protocol, which the Redis store offers too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._atomic import remove_stale_temps, write_private
from nemo_sync._contract import RENDER_DONE
from nemo_sync._envelope import loads_strict
from nemo_sync._export_claims import FileExportClaims
from nemo_sync._filelock import locked_file_work
from nemo_sync._safe_file import damaged_name, json_kind, read_state_file, set_aside
from nemo_sync.errors import ConfigurationError

logger = logging.getLogger("nemo_sync")

JOBS_FILE = "jobs.json"
LOCK_FILE = "jobs.lock"
KEEP_FINISHED = 200
MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest ``jobs.json`` read. 200 finished jobs and the unfinished ones take tens of KB;
a file over this is damage (or planted), and is moved aside without being read."""
MAX_RECORDS = 5_000
"""The most records the store holds (the unfinished ones are never pruned, so this bounds
them); a file with more is moved aside, and a write that would make more is refused."""
# A JSON text of n values takes at least n commas, colons and brackets, so counting those
# bounds the objects json.loads would build (before it builds them): a 16 MB file of tiny
# values would otherwise take hundreds of MB. A record has a dozen values; newer versions'
# extra fields get room too.
_VALUES_PER_RECORD = 64

SUBMITTING = "submitting"
"""Recorded before the submission is sent; the service has not confirmed the job yet."""
SUBMITTED = "submitted"
"""The submission may have arrived, but no answer came (a 5xx, a lost connection)."""
UNCONFIRMED = frozenset({SUBMITTING, SUBMITTED})
SUBMISSION_DEADLINE = 600.0
"""Seconds after ``created_at`` by which a submission has surely reached the service or
never will: a submission is one request of at most two attempts, each bounded by the client's
timeout (120 s by default). A job the service still does not know after this never arrived."""


class DamagedRecordError(ValueError):
    """A record of ``jobs.json`` that cannot be read; the message says why."""


def _text(name: str, value: Any, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise DamagedRecordError(f"{name} is {json_kind(value)}, not a string")
    return value


def _number(name: str, value: Any, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DamagedRecordError(f"{name} is {json_kind(value)}, not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer of 400 digits is valid JSON, and no float
        number = math.inf
    if not math.isfinite(number):
        raise DamagedRecordError(f"{name} is out of range")
    return number


@attrs.frozen
class JobRecord:
    """What the store knows about a render job.

    Attributes:
        id: The render id (the server's, once it answered).
        session_id: The session it renders.
        created_at: When it was started (Unix time).
        status: The last status seen (``submitting`` until the service confirmed the job;
            ``submitted`` when the request may have arrived but no answer came; ``failed``
            for a submission the service refused or never received; ``cancelled`` after
            :meth:`RenderJob.cancel`).
        progress: The last progress seen, 0-100.
        download_url: Where the output is, once completed.
        output_path: Where it was downloaded to, if it was.
        base_url: The API it runs on.
        error: Why it failed, when it did and the reason is known.
        extra: Fields this version does not know (written by a newer one): kept, and written
            back unchanged. Not part of equality or the repr.
    """

    id: str
    session_id: str
    created_at: float = attrs.field(factory=time.time)
    status: str = SUBMITTING
    progress: float | None = None
    download_url: str | None = None
    output_path: str | None = None
    base_url: str | None = None
    error: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)

    @property
    def finished(self) -> bool:
        """The job is over: completed, failed or cancelled (none of them changes again)."""
        return self.status in RENDER_DONE

    @property
    def unconfirmed(self) -> bool:
        """The service has not confirmed the job yet (``submitting`` or ``submitted``)."""
        return self.status in UNCONFIRMED

    @property
    def submission_deadline(self) -> float:
        """When (Unix time) a job the service still does not know counts as never received."""
        return self.created_at + SUBMISSION_DEADLINE

    def to_json(self) -> dict[str, Any]:
        """The record as ``jobs.json`` holds it: the known fields, then the unknown ones."""
        known = {
            "id": self.id,
            "session_id": self.session_id,
            "created_at": self.created_at,
            "status": self.status,
            "progress": self.progress,
            "download_url": self.download_url,
            "output_path": self.output_path,
            "base_url": self.base_url,
            "error": self.error,
        }
        return {**known, **{k: v for k, v in self.extra.items() if k not in known}}

    @classmethod
    def from_json(cls, item: Any) -> JobRecord:
        """A record from ``jobs.json``'s form; unknown fields go to ``extra``.

        Raises:
            DamagedRecordError: a ``ValueError`` saying what is wrong (not an object, no id,
                a field of the wrong type); the first problem found.
        """
        if not isinstance(item, dict):
            raise DamagedRecordError(f"it is {json_kind(item)}, not an object")
        if "id" not in item:
            raise DamagedRecordError("id is missing")
        job_id = _text("id", item["id"], optional=False)
        if not job_id:
            raise DamagedRecordError("id is empty")
        for name in ("session_id", "created_at", "status"):
            if name not in item:
                raise DamagedRecordError(f"{name} is missing")
        known = _KNOWN_FIELDS
        created_at = _number("created_at", item["created_at"], optional=False)
        assert created_at is not None  # not optional
        return cls(
            id=job_id,
            session_id=_text("session_id", item["session_id"], optional=False) or "",
            created_at=created_at,
            status=_text("status", item["status"], optional=False) or "",
            progress=_number("progress", item.get("progress"), optional=True),
            download_url=_text("download_url", item.get("download_url"), optional=True),
            output_path=_text("output_path", item.get("output_path"), optional=True),
            base_url=_text("base_url", item.get("base_url"), optional=True),
            error=_text("error", item.get("error"), optional=True),
            extra={k: v for k, v in item.items() if k not in known},
        )


_KNOWN_FIELDS = frozenset(a.name for a in attrs.fields(JobRecord)) - {"extra"}


@attrs.frozen
class _Loaded:
    """What reading ``jobs.json`` found, before anything is done about it."""

    records: dict[str, JobRecord] = attrs.field(factory=dict)
    # Top-level keys besides "jobs" (a newer version's): kept and written back.
    others: dict[str, Any] = attrs.field(factory=dict)
    # Why each record that could not be read was refused, and the records as they were.
    damaged: tuple[str, ...] = ()
    damaged_items: tuple[Any, ...] = ()
    data: bytes | None = None
    # Why the whole file is unusable, when it is.
    problem: str | None = None

    @property
    def clean(self) -> bool:
        return self.problem is None and not self.damaged


def _value_bound(data: bytes) -> int:
    """At least as many as the JSON values (object keys included) ``data`` holds."""
    return 1 + data.count(b",") + 2 * data.count(b":") + data.count(b"[")


def _parse(data: bytes) -> _Loaded:
    """``jobs.json``'s bytes, read into typed records (and what could not be)."""
    if _value_bound(data) > MAX_RECORDS * _VALUES_PER_RECORD:
        return _Loaded(problem=f"it holds more than {MAX_RECORDS:,} records' worth of values")
    try:
        raw = loads_strict(data)
    except ValueError:
        return _Loaded(problem="it is not JSON")
    if not isinstance(raw, dict):
        return _Loaded(problem=f"it holds {json_kind(raw)}, not an object with a job list")
    items = raw.get("jobs", [])
    if not isinstance(items, list):
        return _Loaded(problem=f'its "jobs" is {json_kind(items)}, not a list')
    if len(items) > MAX_RECORDS:
        return _Loaded(problem=f"it holds {len(items):,} records, more than {MAX_RECORDS:,}")
    records: dict[str, JobRecord] = {}
    damaged: list[str] = []
    damaged_items: list[Any] = []
    for number, item in enumerate(items, 1):
        try:
            record = JobRecord.from_json(item)
        except DamagedRecordError as exc:
            job_id = item.get("id") if isinstance(item, dict) else None
            name = f"#{number} {job_id}" if isinstance(job_id, str) and job_id else f"#{number}"
            damaged.append(f"{name}: {exc}")
            damaged_items.append(item)
            continue
        records[record.id] = record
    return _Loaded(
        records=records,
        others={k: v for k, v in raw.items() if k != "jobs"},
        damaged=tuple(damaged),
        damaged_items=tuple(damaged_items),
        data=data,
    )


def _listed(reasons: tuple[str, ...], limit: int = 3) -> str:
    shown = "; ".join(reasons[:limit])
    return shown if len(reasons) <= limit else f"{shown}; and {len(reasons) - limit} more"


class FileJobStore(FileExportClaims):
    """The :class:`~nemo_sync.JobStore` of one machine: ``jobs.json`` under a home folder."""

    def __init__(self, home: Path) -> None:
        self.path = home / JOBS_FILE
        self._lock_path = home / LOCK_FILE
        self._opened = False  # the first look tidies up after killed writers, once

    @property
    def where(self) -> str:
        """The file's path, for messages."""
        return str(self.path)

    # -- reading ---------------------------------------------------------------------------

    def _load(self) -> _Loaded:
        found = read_state_file(self.path, limit=MAX_FILE_BYTES)
        if found.problem is not None:
            return _Loaded(problem=found.problem)
        if found.data is None:
            return _Loaded()  # no file yet: an empty store
        return _parse(found.data)

    def _open(self) -> None:
        """Remove the temporary files of writers killed mid-write (under the lock)."""
        if not self._opened:
            for temp in remove_stale_temps(self.path):
                logger.debug("removed %s, left by a write that was killed", temp.name)
            self._opened = True

    def _settle_damage(self, loaded: _Loaded) -> tuple[dict[str, JobRecord], list[Any], bool]:
        """Set damage aside (under the lock): the records to go on with, the damaged records
        to write back as they were (when they could not be set aside), and whether the file
        must be rewritten even with no change."""
        if loaded.problem is not None:
            moved = set_aside(self.path, loaded.problem)
            if moved is None and os.path.lexists(self.path):
                # It could not be moved (a read-only folder): a write would destroy it.
                raise ConfigurationError(
                    f"{self.path} is damaged ({loaded.problem}) and could not be moved aside; "
                    "move it away, then try again"
                )
            return {}, [], False
        if not loaded.damaged:
            return loaded.records, [], False
        count = f"{len(loaded.damaged)} of {len(loaded.damaged) + len(loaded.records)} records"
        assert loaded.data is not None  # records were read from it
        target = damaged_name(self.path)
        try:
            write_private(target, loaded.data)
        except OSError as exc:
            logger.warning(
                "%s: %s could not be read (%s) nor copied aside (%s); they are kept in it",
                self.path,
                count,
                _listed(loaded.damaged),
                exc.strerror or type(exc).__name__,
            )
            return loaded.records, list(loaded.damaged_items), False
        logger.warning(
            "%s: %s could not be read (%s); the file as it was is kept in %s, the others stay",
            self.path,
            count,
            _listed(loaded.damaged),
            target.name,
        )
        return loaded.records, [], True

    def _write(
        self, records: dict[str, JobRecord], others: Mapping[str, Any], damaged: list[Any]
    ) -> None:
        ordered = sorted(records.values(), key=lambda r: r.created_at, reverse=True)
        pruned = {r.id for r in [r for r in ordered if r.finished][KEEP_FINISHED:]}
        kept = [r.to_json() for r in ordered if r.id not in pruned]
        if len(kept) + len(damaged) > MAX_RECORDS:
            raise ConfigurationError(
                f"{self.path} would hold {len(kept) + len(damaged):,} render jobs, more than "
                f"{MAX_RECORDS:,}: most are unfinished; `nemo-sync jobs` settles them"
            )
        body = json.dumps({"jobs": kept + damaged, **others}, indent=2).encode("utf-8")
        if len(body) > MAX_FILE_BYTES:
            raise ConfigurationError(
                f"{self.path} would take {len(body):,} bytes, more than {MAX_FILE_BYTES:,}"
            )
        try:
            write_private(self.path, body)
        except OSError as exc:
            # A full disk, say: write_private left the old file whole and no temporary one.
            raise OSError(
                exc.errno, f"{exc.strerror or exc}: could not save {self.path}; it is unchanged"
            ) from exc

    async def _records(self) -> dict[str, JobRecord]:
        """The records, for reading. The first look, and any look that finds damage, goes
        through the lock, which tidies and sets the damage aside."""
        if self._opened:
            loaded = await asyncio.to_thread(self._load)
            if loaded.clean:
                return loaded.records
        elif not self.path.parent.is_dir():
            return {}  # no home yet: nothing to read, and nothing is made by looking
        try:
            return await self._locked(lambda _records: False)
        except (OSError, ConfigurationError) as exc:
            # A read-only home, say: the records that can be read are still listed.
            loaded = await asyncio.to_thread(self._load)
            problem = loaded.problem or _listed(loaded.damaged)
            if not loaded.clean:
                logger.warning("%s: ignoring what cannot be read (%s): %s", self.path, problem, exc)
            return loaded.records

    async def list(self) -> list[JobRecord]:
        """All records, newest first (the file is read in a thread: never on the loop)."""
        records = await self._records()
        return sorted(records.values(), key=lambda r: r.created_at, reverse=True)

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        return (await self._records()).get(job_id)

    # -- writing ---------------------------------------------------------------------------

    async def put(self, record: JobRecord, *, replaces: str | None = None) -> None:
        """Add or replace a record (``replaces``: an id it supersedes)."""

        def change(records: dict[str, JobRecord]) -> bool:
            if replaces is not None:
                records.pop(replaces, None)
            records[record.id] = record
            return True

        await self._locked(change)

    async def update(
        self, job_id: str, *, when_status: Collection[str] | None = None, **changes: Any
    ) -> JobRecord | None:
        """Change fields of a record; None when the store does not have it.

        ``when_status``: change it only while its status is one of these (another process
        may have moved it on since it was read); otherwise it is returned unchanged.
        """
        updated: list[JobRecord] = []

        def change(records: dict[str, JobRecord]) -> bool:
            record = records.get(job_id)
            if record is None:
                return False
            if when_status is not None and record.status not in when_status:
                updated.append(record)
                return False
            new = attrs.evolve(record, **changes)
            updated.append(new)
            if new == record:
                return False
            records[job_id] = new
            return True

        await self._locked(change)
        return updated[0] if updated else None

    async def _locked(self, change: Callable[[dict[str, JobRecord]], bool]) -> dict[str, JobRecord]:
        """Read, change and write under the file lock, the file work in a thread; returns
        the records as written.

        A cancelled caller still lets a write that started finish before the lock is let go:
        the store is never left half written, nor written by two processes at once.
        """

        def read_change_write() -> dict[str, JobRecord]:
            self._open()
            loaded = self._load()
            records, damaged, rewrite = self._settle_damage(loaded)
            if change(records) or rewrite:
                self._write(records, loaded.others, damaged)
            return records

        return await locked_file_work(self._lock_path, read_change_write)


# The name before the JobStore protocol existed: existing imports (and tests) construct it.
JobStore = FileJobStore
