"""Where the emulator's state lives between requests: only in memory, or also in SQLite.

The in-memory :class:`State` is the working model either way. :class:`MemoryStore` (the
default) adds nothing to it. :class:`SqliteStore` keeps every record in a database in the data
folder, so any number of emulator processes on that folder behave as one service:

- ``sync`` (before each request) merges what other processes wrote since the last look;
- ``transaction`` wraps each change: the database's write lock is taken (``BEGIN
  IMMEDIATE``), the state is synced under it, the caller changes the model and marks what it
  changed, and the marked records are written before ``COMMIT``. Two processes' changes to
  one session therefore apply one after the other, never over each other.

SQLite runs on one dedicated thread, never on the event loop. Every row carries the store's
revision at its last write, so a sync reads only rows newer than the last one seen; a reset
bumps the epoch, which makes every process reload from scratch.

Opening the store checks the database and replaces a damaged one (``_store_admin``), holds
this process's worker lock, and removes the stored files nobody refers to. A database found
damaged later, or replaced by another process meanwhile, is opened again and read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from nemo_sync.emulator._rows import Record, Row, is_current, keep_unknown_fields, merge, row_of
from nemo_sync.emulator._state import State
from nemo_sync.emulator._store_admin import (
    BUSY_TIMEOUT,
    DB_FILE,
    WorkerLock,
    connect,
    hold_worker,
    is_damage,
    open_database,
    sweep_orphans,
)

__all__ = ["BUSY_TIMEOUT", "DB_FILE", "MemoryStore", "SqliteStore", "StateStore", "connect"]

logger = logging.getLogger("nemo_sync.emulator")

T = TypeVar("T")


class Changes(Protocol):
    """What a transaction's body marks as changed."""

    def mark(self, *records: Record) -> None:
        """Write these records when the transaction commits."""


class StateStore(Protocol):
    """What keeps the emulator's state (see the module's docstring)."""

    persistent: bool

    async def open(self, state: State) -> None:
        """Load what is stored into ``state``."""

    async def sync(self, state: State) -> None:
        """Merge what other processes changed into ``state``."""

    def transaction(self, state: State) -> AbstractAsyncContextManager[Changes]:
        """``async with store.transaction(state) as changes:`` (see the module docstring)."""

    def stage(self, *records: Record) -> None:
        """Write these records with the next sync or transaction (for synchronous callers)."""

    def stage_clear(self) -> None:
        """Empty the store with the next sync or transaction (for synchronous callers)."""

    async def close(self) -> None:
        """Release the database."""


class _NoChanges:
    """The in-memory store's transaction: the model is all there is, so nothing to do."""

    def mark(self, *records: Record) -> None:
        pass

    async def __aenter__(self) -> _NoChanges:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_CHANGES = _NoChanges()


class MemoryStore:
    """State in memory only: as fast as the emulator was without a store."""

    persistent = False

    async def open(self, state: State) -> None:
        pass

    async def sync(self, state: State) -> None:
        pass

    def transaction(self, state: State) -> _NoChanges:
        return _NO_CHANGES

    def stage(self, *records: Record) -> None:
        pass

    def stage_clear(self) -> None:
        pass

    async def close(self) -> None:
        pass


@attrs.frozen
class _Snapshot:
    """What a sync read: the store's counters, and rows newer than the last ones seen."""

    epoch: int
    rev: int
    sessions: int
    rows: list[Row]
    full: bool


class _MarkedChanges:
    def __init__(self, staged: list[Record]) -> None:
        self.records = staged

    def mark(self, *records: Record) -> None:
        self.records.extend(records)


class SqliteStore:
    """State in ``<data_dir>/emulator.db``, shared by every process that opens it.

    Args:
        data_dir: The data folder (media and renders are beside the database).
        worker_id: The emulator's worker id: its lock in the folder tells other processes
            it is alive, and its files carry it (see ``_store_admin``).
    """

    persistent = True

    def __init__(self, data_dir: Path, *, worker_id: str | None = None) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_FILE
        self.worker_id = worker_id
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nemo-emulator-db")
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._worker: WorkerLock | None = None
        self._lock: asyncio.Lock | None = None
        self._epoch: int | None = None
        self._rev = 0
        self._staged: list[Record] = []
        self._clear_staged = False

    # -- the dedicated thread's side ---------------------------------------------------

    def _connect(self) -> None:
        self._reopen()
        if self.worker_id is not None:
            self._worker = hold_worker(self.data_dir, self.worker_id)
        try:
            sweep_orphans(self._conn(), self.data_dir, own=self.worker_id)
        except (OSError, sqlite3.Error):  # tidying must never stop the emulator from starting
            logger.debug("could not look for orphan files in %s", self.data_dir, exc_info=True)

    def _reopen(self) -> None:
        """(Re)open the database: checked, and replaced first when it is damaged."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._db = open_database(self.path)
        self._file = _identity(self.path)

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "the store is not open"
        return self._db

    def _replaced(self) -> bool:
        """Whether the file at the path is no longer the one open here: another process
        replaced a damaged database, or a reset deleted it."""
        return _identity(self.path) != self._file

    def _begin(self, write: bool, epoch: int | None, rev: int) -> _Snapshot:
        if self._replaced():
            self._reopen()
            epoch = None  # another database: read it whole
        try:
            return self._read(write, epoch, rev)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            logger.debug("the database turned out damaged: replacing it", exc_info=True)
            self._reopen()
            return self._read(write, None, 0)

    def _read(self, write: bool, epoch: int | None, rev: int) -> _Snapshot:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            full = meta["epoch"] != epoch
            since = 0 if full else rev
            rows = []
            if full or meta["rev"] > rev:
                rows = [
                    Row(*r)
                    for r in db.execute(
                        "SELECT kind, key, body FROM records WHERE rev > ? ORDER BY rowid",
                        (since,),
                    )
                ]
            if not write:
                db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        return _Snapshot(meta["epoch"], meta["rev"], meta["sessions"], rows, full)

    def _commit(self, rows: list[Row], sessions: int, clear: bool) -> tuple[int | None, int]:
        """Write ``rows`` (after emptying the store when ``clear``); returns (epoch, rev).

        The epoch is None when the database had to be replaced on the way: the caller then
        reads it whole at its next sync.
        """
        try:
            return self._write(rows, sessions, clear)
        except sqlite3.DatabaseError as exc:
            _rollback(self._conn())
            if not is_damage(exc):
                raise
            logger.debug("the database turned out damaged: replacing it", exc_info=True)
            self._reopen()
            self._conn().execute("BEGIN IMMEDIATE")
            try:
                return None, self._write(rows, sessions, clear)[1]
            except BaseException:
                _rollback(self._conn())
                raise
        except BaseException:
            _rollback(self._conn())
            raise

    def _write(self, rows: list[Row], sessions: int, clear: bool) -> tuple[int, int]:
        db = self._conn()
        if clear:
            db.execute("DELETE FROM records")
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'epoch'")
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rev'")
        db.execute("UPDATE meta SET value = ? WHERE key = 'sessions'", (sessions,))
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        # A row another version wrote may hold fields this one does not know: they are kept.
        stored = "SELECT body FROM records WHERE kind = ? AND key = ?"
        values = []
        for row in rows:
            found = None if clear else db.execute(stored, (row.kind, row.key)).fetchone()
            body = keep_unknown_fields(found[0], row.body) if found else row.body
            values.append((row.kind, row.key, meta["rev"], body))
        # An upsert keeps the row's rowid: rows load in the order first written, so a
        # session's media stay in upload order.
        db.executemany(
            "INSERT INTO records (kind, key, rev, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET rev = excluded.rev, body = excluded.body",
            values,
        )
        db.execute("COMMIT")
        return meta["epoch"], meta["rev"]

    def _rollback(self) -> None:
        _rollback(self._conn())

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._worker is not None:
            self._worker.release()
            self._worker = None

    # -- the event loop's side ---------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _lock_here(self) -> asyncio.Lock:
        # One transaction at a time per process: they share the one connection.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def open(self, state: State) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self._call(self._connect)
            await self.sync(state)
        except BaseException:
            await self.close()  # the worker lock and the thread go with a failed open
            raise

    def _apply(self, state: State, snapshot: _Snapshot) -> None:
        if snapshot.full:
            live = [job for job in state.renders_owned.values() if job.running_here]
            state.clear()
            for job in live:  # their tasks hold these objects: keep them the state's
                state.index_render(job)
        merge(state, snapshot.rows, self.data_dir)
        state.session_count = max(state.session_count, snapshot.sessions)
        self._epoch, self._rev = snapshot.epoch, snapshot.rev

    async def sync(self, state: State) -> None:
        if self._staged or self._clear_staged:
            async with self.transaction(state):
                return
        async with self._lock_here():
            self._apply(state, await self._call(self._begin, False, self._epoch, self._rev))

    @asynccontextmanager
    async def transaction(self, state: State) -> AsyncIterator[Changes]:
        async with self._lock_here():
            clear, self._clear_staged = self._clear_staged, False
            changes = _MarkedChanges(self._staged)
            self._staged = []
            snapshot = await self._call(self._begin, True, self._epoch, self._rev)
            try:
                if not clear:
                    self._apply(state, snapshot)
                yield changes
                rows = [row_of(r, self.data_dir) for r in changes.records if is_current(r, state)]
                # Submitted before any await: the thread commits it even if this is cancelled.
                done = asyncio.get_running_loop().run_in_executor(
                    self._executor, self._commit, rows, state.session_count, clear
                )
            except BaseException:
                await asyncio.shield(self._call(self._rollback))
                # The model may hold changes that were not written: reload it all next time.
                self._epoch = None
                raise
            self._epoch, self._rev = await asyncio.shield(done)

    def stage(self, *records: Record) -> None:
        self._staged.extend(records)

    def stage_clear(self) -> None:
        self._staged.clear()
        self._clear_staged = True

    async def close(self) -> None:
        try:
            await self._call(self._close)
        finally:
            self._executor.shutdown(wait=False)


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` (device and inode), None when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")
