"""The emulator's data folder on disk: its database made, versioned and, when damaged,
recovered; which processes are writing in it; the files nobody refers to; and what the CLI
does to the folder without running an emulator (empty it, sign out).

A data folder::

    emulator.db (-wal, -shm)          the records (SQLite in WAL mode)
    emulator.db.damaged-<UTC time>    a damaged database, moved aside whole (-wal, -shm too)
    emulator.lock                     held while a damaged database is being replaced
    media/<random>-<worker>.<ext>     uploads
    renders/<file id>.mp4             videos; <file id>.<worker>.<random>.part.mp4 while written
    workers/<worker>                  one per running emulator, locked for as long as it runs

Emptying and signing out go through the database's own transactions, so emulators running
on the folder stay consistent: an emptied store bumps the epoch, which makes them drop what
they hold. Blocking: call all of this in a thread.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._contract import RENDER_DONE
from nemo_sync._filelock import try_lock
from nemo_sync._safe_file import DAMAGED_SUFFIX, damaged_name
from nemo_sync.emulator._api_errors import DiskFull, is_disk_full
from nemo_sync.emulator._media import WORKER_IN_NAME
from nemo_sync.emulator._rows import ACCOUNT, CLAIM, SESSION, TOKEN, Row, describe, usable_rows
from nemo_sync.emulator._salvage import Salvaged, read_damaged

# The line a person reads (the CLI shows the ``nemo_sync`` logger's warnings); the emulator's
# own logger carries the details.
user_log = logging.getLogger("nemo_sync")
logger = logging.getLogger("nemo_sync.emulator")

DB_FILE = "emulator.db"
LOCK_FILE = "emulator.lock"
WORKERS = "workers"
FILE_FOLDERS = ("media", "renders")
COMPANIONS = ("-wal", "-shm", "-journal")
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
# A file nobody refers to is removed once this old, when its writer cannot be proven gone.
ORPHAN_GRACE_SECONDS = 600.0

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the databases this version writes. The layout (tables ``meta``
and ``records``, columns ``kind, key, rev, body``) is the same in every version: a later one
adds record kinds and fields, which this one keeps and ignores (see ``_rows``), and raises
the number; a change of layout would take another file name."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, "
    "rev INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX IF NOT EXISTS records_rev ON records (rev)",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('rev', 0), ('epoch', 0), ('sessions', 0)",
)
_INSERT = "INSERT INTO records (kind, key, rev, body) VALUES (?, ?, ?, ?)"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# SQLite's primary result codes for a damaged file, and for a busy one.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


class DatabaseUnusable(OSError):
    """The folder's database is damaged and could not be moved out of the way."""

    def __str__(self) -> str:
        return str(self.strerror)


# -- opening ---------------------------------------------------------------------------


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


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; a failed rollback must not hide the first error."""
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


def connect(path: Path, *, check: bool = False) -> sqlite3.Connection:
    """A connection to the store's database, made (WAL, the schema, its version) when new.

    ``isolation_level=None``: transactions are the store's own ``BEGIN``/``COMMIT``.

    Args:
        path: The database file.
        check: Check every page first (``PRAGMA quick_check``: a few milliseconds for
            megabytes), so damage anywhere shows now rather than halfway through a request.

    Raises:
        sqlite3.DatabaseError: ``database disk image is malformed`` (and the like) when
            ``check`` finds damage; see :func:`is_damage`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if check and _has_pages(path):
        _verify(path)
    # It holds bearer tokens: private, as the credentials file is (SQLite gives its -wal and
    # -shm files the database's mode). O_NONBLOCK: a FIFO planted there must not hang us.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | _NONBLOCK, 0o600))
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        # WAL: readers never wait for the writer, and a killed process cannot leave the
        # database half-written.
        _switch_to_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        # Under the write lock: two processes opening a new folder make the schema once, and
        # a newer version's number is never lowered.
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        if version > SCHEMA_VERSION:
            logger.debug(
                "%s was written by a newer nemo-sync (schema %d; this one knows %d): records "
                "and fields it does not know are kept and ignored",
                path,
                version,
                SCHEMA_VERSION,
            )
    except BaseException:
        db.close()
        raise
    return db


def _has_pages(path: Path) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _verify(path: Path) -> None:
    """Check every page of an existing database (``PRAGMA quick_check``: milliseconds for
    megabytes), raising as SQLite does for a damaged page.

    Read-only: the last connection to close a database checkpoints its log into it, which
    would write into a damaged file (and delete its log) before it is moved aside whole.
    """
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            found = [str(row[0]) for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise
        # Not a verdict on the file (a read-only open refused, say): the open that follows
        # says what is wrong, if anything is.
        logger.debug("could not check %s: %s", path, exc)
        return
    if found != ["ok"]:
        raise sqlite3.DatabaseError(f"database disk image is malformed: {found[0]}")


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the file is damaged (corrupt, or not a database)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = _primary_code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be the database (a folder, a FIFO...), or None when it can."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None  # a new database is made there
    except OSError:
        return None  # let SQLite say what is wrong
    return None if stat.S_ISREG(info.st_mode) else "it is not a regular file"


def open_database(path: Path) -> sqlite3.Connection:
    """The folder's database, ready to use, whatever state it was found in.

    A new one is made when there is none. A damaged one (not a database, truncated, a page
    that does not read, a folder in its place) is moved aside whole to
    ``<name>.damaged-<UTC time>``, with its ``-wal`` and ``-shm``, and a new one is started
    with every record that could still be read from it; one warning line on the
    ``nemo_sync`` logger says where it went and what was kept.

    Raises:
        DiskFull: when the disk has no room for the database.
        DatabaseUnusable: when the damaged file cannot be moved (a read-only folder), or
            SQLite cannot use the file for another reason (busy for 30 s, not writable):
            the message names the file and says why.
    """
    try:
        return _open_database(path)
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise DiskFull(Path(os.path.abspath(path.parent))) from exc
        raise DatabaseUnusable(
            errno.EIO, f"the local database {path} cannot be used: {exc}"
        ) from exc


def _open_database(path: Path) -> sqlite3.Connection:
    """Open the database; a damaged one is replaced (under the folder's lock) first."""
    opened = _open_undamaged(path)
    if isinstance(opened, sqlite3.Connection):
        return opened
    # One process replaces it; the others, waiting here, then open the new one.
    with _folder_lock(path.parent):
        again = _open_undamaged(path)
        if isinstance(again, sqlite3.Connection):
            return again
        replace_damaged(path, again)
    return connect(path, check=True)


def _open_undamaged(path: Path) -> sqlite3.Connection | str:
    """The opened database, or what is wrong with it when it is damaged."""
    problem = _not_a_file(path)
    if problem is not None:
        return problem
    try:
        return connect(path, check=True)
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return str(exc)


# -- locks: the folder's, and each running emulator's ----------------------------------


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """The folder's lock (``emulator.lock``), for replacing a damaged database; released when
    the process dies. Where no lock can be had (a file system without locks), it goes on
    without: one process on a folder is the usual case."""
    fd: int | None = None
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        with contextlib.suppress(OSError):
            while fd is not None and not try_lock(fd) and time.monotonic() < deadline:
                time.sleep(0.02)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


class WorkerLock:
    """The lock a running emulator holds on ``workers/<its id>``, so others can tell it is
    alive; a killed process's lock goes with it (the kernel releases it)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Say this emulator is gone (removed while still locked: nobody sees it half-gone)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def hold_worker(data_dir: Path, worker_id: str) -> WorkerLock | None:
    """Lock ``workers/<worker_id>`` for as long as this emulator runs.

    The file is made and locked under a temporary name, then renamed into place: nobody can
    find it unlocked and take its owner for dead. ``None`` when it cannot be had (others then
    judge this emulator's files by their age alone).
    """
    folder = data_dir / WORKERS
    path = folder / worker_id
    making = folder / f".{worker_id}.new"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        if try_lock(fd):
            os.rename(making, path)
            return WorkerLock(path, fd)
    except OSError:
        pass
    os.close(fd)
    with contextlib.suppress(OSError):
        making.unlink()
    return None


def worker_alive(data_dir: Path, worker_id: str) -> bool | None:
    """Whether the emulator ``worker_id`` is running: True while its lock is held, False when
    its lock file is there and free (the process was killed), None when there is no lock file
    (it stopped cleanly, or never held one) or it cannot be tried: then nobody knows."""
    try:
        fd = os.open(data_dir / WORKERS / worker_id, os.O_RDWR | _NOFOLLOW)
    except OSError:
        return None
    try:
        return not try_lock(fd)
    except OSError:
        return None
    finally:
        os.close(fd)  # releases the lock if it was taken


def clear_dead_workers(data_dir: Path) -> None:
    """Remove the lock files of emulators that were killed (a clean stop removes its own);
    removed while locked, so nobody finds one half-gone."""
    try:
        entries = list(os.scandir(data_dir / WORKERS))
    except OSError:
        return
    for entry in entries:
        # ``.<id>.new``: killed between making its lock file and naming it.
        if not (WORKER_IN_NAME.fullmatch(entry.name) or entry.name.endswith(".new")):
            continue
        with contextlib.suppress(OSError):
            fd = os.open(entry.path, os.O_RDWR | _NOFOLLOW)
            try:
                if try_lock(fd):
                    os.unlink(entry.path)
            finally:
                os.close(fd)


# -- replacing a damaged database ------------------------------------------------------


def _move_aside(path: Path, reason: str) -> Path:
    """Move the database and its companions to ``<name>.damaged-<UTC time>`` (-wal, -shm)."""
    aside = damaged_name(path)
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise DatabaseUnusable(
            exc.errno,
            f"the local database {path} is damaged ({reason}) and could not be moved aside "
            f"({exc.strerror}): move or delete it, then try again",
        ) from None
    for suffix in COMPANIONS:
        companion = Path(f"{path}{suffix}")
        try:
            os.rename(companion, f"{aside}{suffix}")
        except FileNotFoundError:
            continue
        except OSError:
            # Never left beside the new database: SQLite would replay an old log onto it.
            with contextlib.suppress(FileNotFoundError):
                companion.unlink()
    return aside


def replace_damaged(path: Path, reason: str) -> None:
    """Set a damaged database aside and start a new one with what could be read from it.

    Rows that belong to records that were lost (the media of a lost session) are left out:
    nothing could use them. Records of kinds this version does not know are kept as they
    were. One warning says where the old file went and what was kept.
    """
    aside = _move_aside(path, reason)
    found = read_damaged(aside)
    rows, orphaned = usable_rows(found.rows)
    sessions = found.meta.get("sessions", 0)
    for row in rows:
        if row.kind == SESSION:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                sessions = max(sessions, int(json.loads(row.body).get("ordinal", 0)))
    db = connect(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_INSERT, [(r.kind, r.key, 1, r.body) for r in rows])
            counters = {"rev": 1, "epoch": found.meta.get("epoch", 0) + 1, "sessions": sessions}
            update = "UPDATE meta SET value = ? WHERE key = ?"
            db.executemany(update, [(value, key) for key, value in counters.items()])
            if found.user_version > SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {int(found.user_version)}")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
    finally:
        db.close()
    user_log.warning(
        "%s was damaged (%s); moved aside to %s and started a new one: %s",
        path,
        reason,
        aside.name,
        _kept_words(rows, orphaned, found),
    )


def _kept_words(rows: list[Row], orphaned: list[Row], found: Salvaged) -> str:
    """ "kept 3 sessions, 5 media; 2 rows could not be read (1 session, 1 render)"."""
    kept = describe(collections.Counter(r.kind for r in rows))
    words = [f"kept {kept}" if kept else "kept nothing"]
    lost = sum(found.lost.values()) or found.unreadable
    if lost:
        kinds = f" ({describe(found.lost)})" if found.lost else ""
        more = "" if found.complete else ", maybe more"
        words.append(f"{lost} row{'s' * (lost != 1)} could not be read{kinds}{more}")
    elif not found.complete:
        words.append("some rows could not be read")
    if orphaned:
        left = describe(collections.Counter(r.kind for r in orphaned))
        words.append(f"left out {left} of what was lost")
    return "; ".join(words)


# -- files nobody refers to ------------------------------------------------------------


@attrs.frozen
class Swept:
    """What :func:`sweep_orphans` removed."""

    files: int = 0
    size: int = 0


def _stored_files(data_dir: Path) -> list[tuple[str, os.DirEntry[str]]]:
    found = []
    for folder in FILE_FOLDERS:
        with contextlib.suppress(OSError):
            entries = os.scandir(data_dir / folder)
            found += [(folder, e) for e in entries if e.is_file(follow_symlinks=False)]
    return found


def _references(db: sqlite3.Connection) -> tuple[set[str], dict[str, str]] | None:
    """The stored paths the records name (``media/...``, ``renders/...``: any top-level
    string of any kind, a newer version's too), and each render file id's job status. None
    when a record does not read, so the sweep cannot know what it names."""
    named: set[str] = set()
    jobs: dict[str, str] = {}
    db.execute("BEGIN")
    try:
        rows = db.execute(
            "SELECT kind, body FROM records WHERE kind NOT IN (?, ?, ?, ?)",
            (ACCOUNT, TOKEN, SESSION, CLAIM),
        ).fetchall()
    finally:
        _rollback(db)
    for kind, body in rows:
        try:
            fields = json.loads(body)
        except (TypeError, ValueError):
            return None
        if not isinstance(fields, dict):
            return None
        named.update(v for v in fields.values() if isinstance(v, str) and "/" in v)
        if kind == "render" and isinstance(fields.get("file_id"), str):
            jobs[fields["file_id"]] = str(fields.get("status"))
    return named, jobs


def sweep_orphans(
    db: sqlite3.Connection, data_dir: Path, *, own: str | None, now: float | None = None
) -> Swept:
    """Remove the stored files no record refers to: uploads and renders a killed process
    left half-written (or whole, before their record was written), and videos of jobs that
    ended without them.

    A file is only removed when its writer is proven killed (the worker id in its name, whose
    lock file is there and free), when the job it belongs to has ended, or when it is older
    than :data:`ORPHAN_GRACE_SECONDS`: another process on the folder may be writing it now.
    """
    try:
        return _sweep(db, data_dir, own, time.time() if now is None else now)
    finally:
        # After the files: a dead worker's lock file is what proves its files are leftovers.
        clear_dead_workers(data_dir)


def _sweep(db: sqlite3.Connection, data_dir: Path, own: str | None, now: float) -> Swept:
    files = _stored_files(data_dir)
    if not files:
        return Swept()
    references = _references(db)
    if references is None:
        logger.debug("a record in %s does not read: no file is removed", data_dir)
        return Swept()
    named, jobs = references
    alive: dict[str, bool | None] = {}
    removed, freed = 0, 0
    for folder, entry in files:
        name = entry.name
        if f"{folder}/{name}" in named or str(Path(data_dir, folder, name)) in named:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        status = jobs.get(name.split(".", 1)[0]) if folder == "renders" else None
        if status is not None and ".part" not in name:
            # A job's video: kept while the job may still be rendered to it again.
            if status not in RENDER_DONE:
                continue
            gone = True
        else:
            found = WORKER_IN_NAME.search(name)
            writer = found.group(0) if found else None
            if writer is not None and writer != own and writer not in alive:
                alive[writer] = worker_alive(data_dir, writer)
            # Only a proven death counts; a writer nobody knows about is judged by age.
            dead = writer is not None and writer != own and alive[writer] is False
            gone = dead or now - info.st_mtime > ORPHAN_GRACE_SECONDS
        if gone:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
                freed += info.st_size
    if removed:
        logger.info(
            "freed %s in %d file(s) nobody refers to (partial uploads and renders of "
            "stopped processes) in %s",
            _size_words(freed),
            removed,
            data_dir,
        )
    return Swept(removed, freed)


def _size_words(size: int) -> str:
    """ "17.2 MB", "4.9 KB", "12 bytes"."""
    if size >= 1 << 20:
        return f"{size / 1048576:.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


# -- emptying the folder (reset) -------------------------------------------------------


@attrs.define
class Emptied:
    """What :func:`empty_folder` removed.

    Attributes:
        records: Records by kind (``session``, ``media``, ``render``, ...), when counted.
        files: Uploads and rendered videos deleted.
        removed: Other things removed: a damaged database, copies set aside earlier, a file
            where a folder should be.
        problems: What could not be removed, and why.
    """

    records: dict[str, int] = attrs.Factory(dict)
    files: int = 0
    removed: list[Path] = attrs.Factory(list)
    problems: list[str] = attrs.Factory(list)


def _clear(path: Path, out: Emptied) -> int:
    """Remove whatever is at ``path`` (a tree, a file, a link, never followed); returns the
    regular files removed. A folder without the owner's permissions is given them first."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        out.problems.append(f"{path}: {exc.strerror}")
        return 0
    if stat.S_ISDIR(info.st_mode):
        count = 0
        try:
            entries = list(os.scandir(path))
        except PermissionError:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o700)
            try:
                entries = list(os.scandir(path))
            except OSError as exc:
                out.problems.append(f"{path}: {exc.strerror}")
                return 0
        for entry in entries:
            count += _clear(Path(entry.path), out)
        _remove(path, os.rmdir, out)
        return count
    return int(_remove(path, os.unlink, out) and stat.S_ISREG(info.st_mode))


def _remove(path: Path, remove: Any, out: Emptied) -> bool:
    try:
        remove(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        with contextlib.suppress(OSError):
            os.chmod(path.parent, 0o700)
        try:
            remove(path)
        except OSError as exc:
            out.problems.append(f"{path}: {exc.strerror}")
            return False
    except OSError as exc:
        out.problems.append(f"{path}: {exc.strerror}")
        return False
    return True


def _empty_database(path: Path, out: Emptied) -> None:
    """Empty the records through SQLite (running emulators see the epoch move); a database
    that cannot be opened (damaged, unreadable, not a file) is deleted whole instead."""
    exists = os.path.lexists(path)
    if exists and _not_a_file(path) is None and not path.is_symlink():
        try:
            db = connect(path, check=True)
        except (sqlite3.Error, OSError) as exc:
            if _primary_code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(exc):
                out.problems.append(f"{path}: in use by another process ({exc})")
                return
            found = read_damaged(path)  # counted for the report, as far as it reads
            out.records.update(collections.Counter(r.kind for r in found.rows))
        else:
            try:
                db.execute("BEGIN IMMEDIATE")
                out.records.update(db.execute("SELECT kind, count(*) FROM records GROUP BY kind"))
                db.execute("DELETE FROM records")
                db.execute("UPDATE meta SET value = value + 1 WHERE key IN ('epoch', 'rev')")
                db.execute("UPDATE meta SET value = 0 WHERE key = 'sessions'")
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(db)
                out.problems.append(f"{path}: {exc}")
            finally:
                db.close()
            return
    # Damaged, or not a file: the whole of it goes, with its -wal and -shm (a log left
    # behind would be replayed onto the next database).
    if exists:
        _clear_listed(path, out)
    for suffix in COMPANIONS:
        _clear(Path(f"{path}{suffix}"), out)


def _clear_listed(path: Path, out: Emptied) -> None:
    """Remove what is at ``path`` and list it among the things removed."""
    _clear(path, out)
    if not os.path.lexists(path):
        out.removed.append(path)


def empty_folder(data_dir: Path) -> Emptied:
    """Remove every record and stored file, whatever state the folder is in.

    A damaged database is deleted (its records counted as far as they read), as are
    damaged copies set aside earlier and anything found where a folder should be; what
    cannot be removed is reported in ``problems``, never raised.
    """
    out = Emptied()
    try:
        info = os.lstat(data_dir)
    except FileNotFoundError:
        return out
    except OSError as exc:
        out.problems.append(f"{data_dir}: {exc.strerror}")
        return out
    if not stat.S_ISDIR(info.st_mode):
        # A file (or a link) where the folder should be: it is all there is to remove.
        _clear_listed(data_dir, out)
        return out
    _empty_database(data_dir / DB_FILE, out)
    for name in FILE_FOLDERS:
        folder = data_dir / name
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            _clear_listed(folder, out)
        else:
            out.files += _clear(folder, out)
    with contextlib.suppress(OSError):
        for entry in list(os.scandir(data_dir)):
            if not entry.name.startswith(f"{DB_FILE}{DAMAGED_SUFFIX}"):
                continue
            if entry.name.endswith(COMPANIONS):
                _clear(Path(entry.path), out)
            else:
                _clear_listed(Path(entry.path), out)
    clear_dead_workers(data_dir)
    return out


def remove_paths(paths: list[Path]) -> Emptied:
    """Remove each path, whatever is there (a file, a folder, a link: never followed);
    ``removed`` lists those that were there, ``problems`` what could not be removed."""
    out = Emptied()
    for path in paths:
        if os.path.lexists(path):
            _clear_listed(path, out)
    return out


# -- signing out -----------------------------------------------------------------------


def sign_out(data_dir: Path, client_id: str) -> int:
    """Revoke the tokens of the anonymous account of ``client_id``; returns how many.

    The account (its sessions, credits) stays, and a new token can be issued at once: the
    one-token-a-week rule would otherwise refuse the next login on this machine for 7 days.
    A damaged database is recovered first (see :func:`open_database`).
    """
    path = data_dir / DB_FILE
    if not path.is_file():
        return 0
    db = open_database(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        account = None
        for key, body in db.execute("SELECT key, body FROM records WHERE kind = ?", (ACCOUNT,)):
            with contextlib.suppress(ValueError):
                fields = json.loads(body)
                if isinstance(fields, dict) and fields.get("client_id") == client_id:
                    account = key, fields
                    break
        if account is None:
            db.execute("COMMIT")
            return 0
        key, fields = account
        tokens = []
        for token, body in db.execute("SELECT key, body FROM records WHERE kind = ?", (TOKEN,)):
            with contextlib.suppress(ValueError):
                found = json.loads(body)
                if (
                    isinstance(found, dict)
                    and found.get("account_id") == key
                    and found.get("expires_at") != 0
                ):
                    tokens.append((token, found))
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rev'")
        (rev,) = db.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()
        # Expired rather than deleted: an emulator running now merges the change (a sync
        # reads changed rows, it cannot see deleted ones) and refuses the token too.
        update = "UPDATE records SET rev = ?, body = ? WHERE kind = ? AND key = ?"
        db.executemany(
            update, [(rev, json.dumps({**f, "expires_at": 0}), TOKEN, t) for t, f in tokens]
        )
        fields["token_issued_at"] = None
        db.execute(update, (rev, json.dumps(fields), ACCOUNT, key))
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise
    finally:
        db.close()
    return len(tokens)
