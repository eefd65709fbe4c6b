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
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from nemo_sync.emulator._rows import Record, Row, is_current, merge, row_of
from nemo_sync.emulator._state import State

DB_FILE = "emulator.db"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    rev INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_rev ON records (rev);
INSERT OR IGNORE INTO meta (key, value) VALUES ('rev', 0), ('epoch', 0), ('sessions', 0);
"""

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
    """

    persistent = True

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_FILE
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nemo-emulator-db")
        self._db: sqlite3.Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._epoch: int | None = None
        self._rev = 0
        self._staged: list[Record] = []
        self._clear_staged = False

    # -- the dedicated thread's side ---------------------------------------------------

    def _connect(self) -> None:
        self._db = connect(self.path)

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "the store is not open"
        return self._db

    def _begin(self, write: bool, epoch: int | None, rev: int) -> _Snapshot:
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
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if not write:
            db.execute("COMMIT")
        return _Snapshot(meta["epoch"], meta["rev"], meta["sessions"], rows, full)

    def _commit(self, rows: list[Row], sessions: int, clear: bool) -> tuple[int, int]:
        """Write ``rows`` (after emptying the store when ``clear``); returns (epoch, rev)."""
        db = self._conn()
        try:
            if clear:
                db.execute("DELETE FROM records")
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'epoch'")
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rev'")
            db.execute("UPDATE meta SET value = ? WHERE key = 'sessions'", (sessions,))
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            # An upsert keeps the row's rowid: rows load in the order first written, so a
            # session's media stay in upload order.
            db.executemany(
                "INSERT INTO records (kind, key, rev, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET rev = excluded.rev, body = excluded.body",
                [(r.kind, r.key, meta["rev"], r.body) for r in rows],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return meta["epoch"], meta["rev"]

    def _rollback(self) -> None:
        db = self._conn()
        if db.in_transaction:
            db.execute("ROLLBACK")

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

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
        await self._call(self._connect)
        await self.sync(state)

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


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting out another process doing the same.

    Switching a new database's journal mode takes an exclusive lock and SQLite does not call
    the busy handler for it: two commands opening a fresh folder together would see "database
    is locked" at once. WAL is a property of the file, so the first switch is the only one
    that waits; later opens find it set and return at the first try.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the store's database, made (WAL, the schema) when new.

    ``isolation_level=None``: transactions are the store's own ``BEGIN``/``COMMIT``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # It holds bearer tokens: private, as the credentials file is (SQLite gives its -wal and
    # -shm files the database's mode).
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        # WAL: readers never wait for the writer, and a killed process cannot leave the
        # database half-written.
        _switch_to_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        # Under the write lock: two processes opening a new folder make the schema once.
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
    except BaseException:
        db.close()
        raise
    return db
