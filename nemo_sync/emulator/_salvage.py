"""Reading what is left of a damaged SQLite database, record by record.

SQLite refuses a file whose pages are missing or garbled as a whole ("database disk image is
malformed", even for a query that needs none of the bad pages), so the emulator's recovery
reads the file format itself (https://www.sqlite.org/fileformat2.html): the schema's page,
each table's b-tree from its root, table leaves whose parent page was lost, and the
committed frames of the write-ahead log laid over the file, as SQLite would. A page that
does not read costs only the rows on it. Pure reading: nothing is written.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from nemo_sync.emulator._rows import Row

logger = logging.getLogger("nemo_sync.emulator")


class _Unreadable(Exception):
    """A page, a cell or a record that does not decode."""


_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = (0x377F0682, 0x377F0683)
_MAX_ROW = 1 << 30
_INT_SIZES = (1, 2, 3, 4, 6, 8)
_TABLE_INTERIOR, _TABLE_LEAF, _INDEX_INTERIOR, _INDEX_LEAF = 5, 13, 2, 10


def _be(data: bytes, start: int, size: int) -> int:
    if start + size > len(data):
        raise _Unreadable
    return int.from_bytes(data[start : start + size], "big")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """SQLite's variable-length integer at ``data[i]``: (value, the index after it)."""
    value = 0
    for k in range(8):
        if i + k >= len(data):
            raise _Unreadable
        byte = data[i + k]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + k + 1
    if i + 8 >= len(data):
        raise _Unreadable
    return (value << 8) | data[i + 8], i + 9


def _record(payload: bytes, encoding: str) -> list[Any]:
    """The column values of a record (SQLite's record format)."""
    header_size, i = _varint(payload, 0)
    if header_size > len(payload):
        raise _Unreadable
    types = []
    while i < header_size:
        serial, i = _varint(payload, i)
        types.append(serial)
    pos = header_size
    values: list[Any] = []
    for serial in types:
        if serial in (0, 8, 9):
            values.append(None if serial == 0 else serial - 8)
            continue
        if 1 <= serial <= 6:
            size = _INT_SIZES[serial - 1]
        elif serial == 7:
            size = 8
        elif serial >= 12:
            size = (serial - 12) // 2
        else:
            raise _Unreadable
        raw = payload[pos : pos + size]
        if len(raw) < size:
            raise _Unreadable
        pos += size
        if serial <= 6:
            values.append(int.from_bytes(raw, "big", signed=True))
        elif serial == 7:
            values.append(struct.unpack(">d", raw)[0])
        elif serial % 2:
            try:
                values.append(raw.decode(encoding))
            except UnicodeDecodeError:
                raise _Unreadable from None
        else:
            values.append(raw)
    return values


def _wal_checksum(data: bytes, s0: int, s1: int, big_endian: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for k in range(0, len(words) - 1, 2):
        s0 = (s0 + words[k] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[k + 1] + s0) & 0xFFFFFFFF
    return s0, s1


class _DamagedFile:
    """The pages of a database file that may be damaged anywhere, with the committed frames
    of its write-ahead log laid over them (what SQLite itself would read)."""

    def __init__(self, main: BinaryIO, wal: BinaryIO | None) -> None:
        self._main = main
        self._wal = wal
        self._wal_pages: dict[int, int] = {}
        main.seek(0, os.SEEK_END)
        size = main.tell()
        header = self._read(main, 0, 100)
        page_size = 0
        if header.startswith(_MAGIC):
            page_size = _be(header, 16, 2)
            page_size = 65536 if page_size == 1 else page_size
        # The log's page size wins: it is the newer, and it is there when the header is not.
        page_size, committed_pages = self._read_wal(page_size)
        if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
            raise _Unreadable
        self.page_size = page_size
        self.pages = committed_pages or size // page_size
        first = self.page(1)
        if first is None or not first.startswith(_MAGIC):
            raise _Unreadable
        self.usable = page_size - first[20]
        self.encoding = {2: "utf-16-le", 3: "utf-16-be"}.get(_be(first, 56, 4), "utf-8")
        self.user_version = _be(first, 60, 4)
        self.first = first

    @staticmethod
    def _read(f: BinaryIO, offset: int, size: int) -> bytes:
        f.seek(offset)
        return f.read(size)

    def _read_wal(self, page_size: int) -> tuple[int, int | None]:
        """Index the WAL's committed frames; returns the page size and the database's size in
        pages after the last commit (None without one)."""
        if self._wal is None:
            return page_size, None
        header = self._read(self._wal, 0, 32)
        if len(header) < 32 or _be(header, 0, 4) not in _WAL_MAGICS:
            return page_size, None
        big_endian = bool(_be(header, 0, 4) & 1)
        size = _be(header, 8, 4)
        s0, s1 = _wal_checksum(header[:24], 0, 0, big_endian)
        if (page_size and size != page_size) or (s0, s1) != (
            _be(header, 24, 4),
            _be(header, 28, 4),
        ):
            return page_size, None
        salts = header[16:24]
        offset = 32
        pending: dict[int, int] = {}
        committed: int | None = None
        while True:
            frame = self._read(self._wal, offset, 24)
            data = self._read(self._wal, offset + 24, size)
            if len(frame) < 24 or len(data) < size or frame[8:16] != salts:
                break
            s0, s1 = _wal_checksum(frame[:8], s0, s1, big_endian)
            s0, s1 = _wal_checksum(data, s0, s1, big_endian)
            if (s0, s1) != (_be(frame, 16, 4), _be(frame, 20, 4)):
                break  # a torn or stale frame: the log ends before it
            pending[_be(frame, 0, 4)] = offset + 24
            if _be(frame, 4, 4):  # a commit: what came before it counts
                self._wal_pages.update(pending)
                pending.clear()
                committed = _be(frame, 4, 4)
            offset += 24 + size
        return size, committed

    def page(self, number: int) -> bytes | None:
        if not 1 <= number <= self.pages:
            return None
        where = self._wal_pages.get(number)
        if where is not None and self._wal is not None:
            data = self._read(self._wal, where, self.page_size)
        else:
            data = self._read(self._main, (number - 1) * self.page_size, self.page_size)
        return data if len(data) == self.page_size else None

    def btree_page(self, number: int) -> tuple[int, bytes, list[int], list[int]] | None:
        """(page type, bytes, cell offsets, child pages) of a b-tree page, else None."""
        data = self.page(number)
        if data is None:
            return None
        top = 100 if number == 1 else 0
        kind = data[top]
        if kind not in (_TABLE_INTERIOR, _TABLE_LEAF, _INDEX_INTERIOR, _INDEX_LEAF):
            return None
        try:
            cells = _be(data, top + 3, 2)
            interior = kind in (_TABLE_INTERIOR, _INDEX_INTERIOR)
            start = top + (12 if interior else 8)
            if start + 2 * cells > self.usable:
                return None
            offsets = [_be(data, start + 2 * i, 2) for i in range(cells)]
            children = []
            if interior:
                children = [_be(data, o, 4) for o in offsets] + [_be(data, top + 8, 4)]
        except _Unreadable:
            return None
        return kind, data, offsets, children

    def cell(self, kind: int, data: bytes, offset: int) -> tuple[int | None, list[Any]]:
        """(rowid, column values) of the cell at ``offset`` (its overflow pages followed)."""
        if not 0 < offset < self.usable:
            raise _Unreadable
        i = offset + 4 if kind == _INDEX_INTERIOR else offset
        size, i = _varint(data, i)
        rowid = None
        if kind == _TABLE_LEAF:
            rowid, i = _varint(data, i)
        if size > _MAX_ROW:
            raise _Unreadable
        usable = self.usable
        most = usable - 35 if kind == _TABLE_LEAF else (usable - 12) * 64 // 255 - 23
        local = size
        if size > most:
            least = (usable - 12) * 32 // 255 - 23
            local = least + (size - least) % (usable - 4)
            local = local if local <= most else least
        parts = [data[i : i + local]]
        if len(parts[0]) < local:
            raise _Unreadable
        left, following, seen = size - local, _be(data, i + local, 4) if local < size else 0, set()
        while left > 0:
            page = self.page(following) if following not in seen else None
            if page is None:
                raise _Unreadable
            seen.add(following)
            chunk = page[4 : 4 + min(left, usable - 4)]
            parts.append(chunk)
            left -= len(chunk)
            following = _be(page, 0, 4)
        return rowid, _record(b"".join(parts), self.encoding)


@attrs.frozen
class Salvaged:
    """What could be read from a damaged database.

    Attributes:
        rows: The records that read whole, in the order they were first written.
        meta: The store's counters (``rev``, ``epoch``, ``sessions``) that read.
        user_version: Its schema version (0 when unreadable).
        lost: Records known to exist (from an index) that could not be read, by kind.
        unreadable: Rows found that did not decode, when no index could count them by kind.
        complete: False when pages of rows were lost, so more may be gone than counted.
    """

    rows: list[Row] = attrs.Factory(list)
    meta: dict[str, int] = attrs.Factory(dict)
    user_version: int = 0
    lost: dict[str, int] = attrs.Factory(dict)
    unreadable: int = 0
    complete: bool = True


class _Walk:
    """Reads the trees of a damaged file, keeping what reads and counting what does not."""

    def __init__(self, file: _DamagedFile) -> None:
        self.file = file
        self.visited: set[int] = set()
        self.bad_cells = 0
        self.lost_pages = 0

    def tree(self, root: int) -> list[tuple[int | None, list[Any]]]:
        """Every cell of the tree at ``root`` that reads (a table's rows, an index's keys)."""
        found = []
        stack = [root]
        while stack:
            number = stack.pop()
            if number in self.visited:
                continue
            self.visited.add(number)
            parsed = self.file.btree_page(number)
            if parsed is None:
                self.lost_pages += 1
                continue
            kind, data, offsets, children = parsed
            stack.extend(reversed(children))
            if kind == _TABLE_INTERIOR:
                continue
            for offset in offsets:
                try:
                    found.append(self.file.cell(kind, data, offset))
                except _Unreadable:
                    self.bad_cells += 1
        return found

    def lost_leaves(self) -> list[tuple[int | None, list[Any]]]:
        """Table leaves no tree reached (their parent page is lost), free pages excepted: a
        free page may hold rows deleted long ago. Nothing when the free list does not read."""
        free = self._free_pages()
        if free is None:
            return []
        found = []
        for number in range(1, self.file.pages + 1):
            if number in self.visited or number in free:
                continue
            parsed = self.file.btree_page(number)
            if parsed is None or parsed[0] != _TABLE_LEAF:
                continue
            for offset in parsed[2]:
                with contextlib.suppress(_Unreadable):
                    found.append(self.file.cell(_TABLE_LEAF, parsed[1], offset))
        return found

    def _free_pages(self) -> set[int] | None:
        try:
            trunk = _be(self.file.first, 32, 4)
            free: set[int] = set()
            while trunk:
                page = self.file.page(trunk)
                if page is None or trunk in free:
                    return None
                free.add(trunk)
                count = _be(page, 4, 4)
                if count > self.file.usable // 4 - 2:
                    return None
                free.update(_be(page, 8 + 4 * i, 4) for i in range(count))
                trunk = _be(page, 0, 4)
        except _Unreadable:
            return None
        return free


def _is_record_row(values: list[Any]) -> bool:
    return (
        len(values) == 4
        and isinstance(values[0], str)
        and isinstance(values[1], str)
        and isinstance(values[2], int)
        and isinstance(values[3], str)
    )


def read_damaged(path: Path) -> Salvaged:
    """Every record that can still be read from a damaged database file, row by row.

    SQLite refuses a file whose pages are missing or garbled as a whole, so this reads its
    format directly: the schema's page, each table's tree from its root (a page that does
    not read costs only the rows on it), table leaves whose parent page was lost, the WAL's
    committed frames over the file. The autoindex on ``(kind, key)`` says which records
    existed, so the ones that could not be read are counted by kind. Never raises.
    """
    try:
        with contextlib.ExitStack() as stack:
            main = stack.enter_context(path.open("rb"))
            wal = None
            with contextlib.suppress(OSError):
                wal = stack.enter_context(Path(f"{path}-wal").open("rb"))
            return _salvage(_DamagedFile(main, wal))
    except (OSError, _Unreadable, ValueError, struct.error):
        logger.debug("nothing could be read from %s", path, exc_info=True)
        return Salvaged(complete=False)


def _salvage(file: _DamagedFile) -> Salvaged:
    walk = _Walk(file)
    roots: dict[str, int] = {}
    for _, values in walk.tree(1):  # sqlite_master: (type, name, tbl_name, rootpage, sql)
        if len(values) == 5 and isinstance(values[1], str) and isinstance(values[3], int):
            roots[values[1]] = values[3]
    rows: dict[int, tuple[str, str, int, str]] = {}
    if "records" in roots:
        for rowid, values in walk.tree(roots["records"]):
            if rowid is not None and _is_record_row(values):
                rows[rowid] = (values[0], values[1], values[2], values[3])
            else:
                walk.bad_cells += 1
    records_lost_pages = walk.lost_pages or "records" not in roots
    meta: dict[str, int] = {}
    if "meta" in roots:
        for _, values in walk.tree(roots["meta"]):
            if len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int):
                meta[values[0]] = values[1]
    # The autoindex on (kind, key) lists every record: what it names and no row holds was lost.
    keys: set[tuple[str, str]] | None = None
    index = roots.get("sqlite_autoindex_records_1")
    if index is not None:
        before = walk.lost_pages
        entries = walk.tree(index)
        if walk.lost_pages == before:
            keys = {(v[0], v[1]) for _, v in entries if len(v) == 3 and isinstance(v[0], str)}
    if records_lost_pages:
        # Last, once every tree's pages are known: what is left unreached is lost leaves.
        for rowid, values in walk.lost_leaves():
            if rowid is not None and rowid not in rows and _is_record_row(values):
                rows[rowid] = (values[0], values[1], values[2], values[3])
    # Of two copies of one record (a lost leaf and its moved copy), the newer one.
    newest: dict[tuple[str, str], tuple[int, int]] = {}
    for rowid, (kind, key, rev, _) in rows.items():
        if (kind, key) not in newest or rev > newest[kind, key][1]:
            newest[kind, key] = (rowid, rev)
    kept = sorted(rowid for rowid, _ in newest.values())
    lost = collections.Counter(kind for kind, key in keys or () if (kind, key) not in newest)
    return Salvaged(
        rows=[Row(rows[r][0], rows[r][1], rows[r][3]) for r in kept],
        meta=meta,
        user_version=file.user_version,
        lost=dict(lost),
        unreadable=0 if keys is not None else walk.bad_cells,
        complete=keys is not None or not walk.lost_pages,
    )
