"""The emulator's records as JSON rows, and rows merged back into a :class:`State` in place.

A persistent emulator keeps one row per record (kind, key, JSON body). Loading merges rows
into the objects the state already has rather than replacing them: handlers, chat turns and
render tasks hold those objects across awaits and must see what other processes wrote.
Paths are stored relative to the data folder and URLs are not stored at all: both are made
when a reply is, from wherever the folder and the server are now.

A database may have been written by a newer version: a row of a kind this one does not know
is left alone (never merged, never written), a field it does not know is ignored when read
and kept when the row is written again (:func:`keep_unknown_fields`), and a row it cannot
make sense of is skipped rather than stopping everything.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._contract import RENDER_CANCELLED
from nemo_sync.emulator._local import BeatInfo
from nemo_sync.emulator._state import (
    Account,
    Claim,
    MediaRecord,
    RenderRecord,
    SessionRecord,
    State,
    Token,
)

logger = logging.getLogger("nemo_sync.emulator")

Record = Account | Token | SessionRecord | MediaRecord | RenderRecord | Claim

ACCOUNT, TOKEN, SESSION, MEDIA, RENDER, CLAIM = (
    "account",
    "token",
    "session",
    "media",
    "render",
    "claim",
)
# Merge order: a row may name records of the kinds before it, never after.
KIND_ORDER = {kind: i for i, kind in enumerate((ACCOUNT, TOKEN, SESSION, MEDIA, RENDER, CLAIM))}
# The record each kind belongs to: (the body's field naming it, its kind).
OWNER = {
    TOKEN: ("account_id", ACCOUNT),
    SESSION: ("account_id", ACCOUNT),
    MEDIA: ("session_id", SESSION),
    RENDER: ("account_id", ACCOUNT),
    CLAIM: ("session_id", SESSION),
}
_ACCOUNT_FIELDS = tuple(f.name for f in attrs.fields(Account))
# Words for counts of records: "1 session", "2 media".
_PLURAL = {MEDIA: MEDIA}


@attrs.frozen
class Row:
    """One stored record."""

    kind: str
    key: str
    body: str


def _relative(path: Path, data_dir: Path) -> str:
    try:
        return path.relative_to(data_dir).as_posix()
    except ValueError:  # not under the folder (a test's own file): keep it absolute
        return str(path)


def _beats_body(beats: Any) -> dict[str, Any] | None:
    if isinstance(beats, BeatInfo):
        return attrs.asdict(beats)
    return None


def _beats_of(body: Any) -> BeatInfo | None:
    if not isinstance(body, dict):
        return None
    return BeatInfo(
        bpm=float(body["bpm"]),
        beats_ms=tuple(body["beats_ms"]),
        downbeats_ms=tuple(body["downbeats_ms"]),
        analyzed=bool(body["analyzed"]),
    )


def row_of(record: Record, data_dir: Path) -> Row:
    """The row that stores ``record``."""
    body: dict[str, Any]
    if isinstance(record, Account):
        body = attrs.asdict(record)
        return Row(ACCOUNT, record.id, json.dumps(body))
    if isinstance(record, Token):
        body = {"account_id": record.account.id, "expires_at": record.expires_at}
        return Row(TOKEN, record.value, json.dumps(body))
    if isinstance(record, SessionRecord):
        body = {
            "id": record.id,
            "task_id": record.task_id,
            "account_id": record.account.id,
            "ordinal": record.ordinal,
            "task_name": record.task_name,
            "draft": record.draft,
            "version": record.version,
            "history": record.history,
            "turns": record.turns,
            "next_id": record._next_id,
            # The generator's state, so silent turns and wording go on where they left off.
            "rng": record.rng.getstate(),
        }
        return Row(SESSION, record.id, json.dumps(body))
    if isinstance(record, MediaRecord):
        body = {
            "session_id": record.session_id,
            "name": record.name,
            "size": record.size,
            "kind": record.kind,
            "duration_ms": record.duration_ms,
            "duration_estimated": record.duration_estimated,
            "sha256": record.sha256,
            "path": _relative(record.path, data_dir),
            "source_url": record.source_url,
            "beats": _beats_body(record.beats),
            "width": record.width,
            "height": record.height,
            "fps": record.fps,
        }
        return Row(MEDIA, record.id, json.dumps(body))
    if isinstance(record, RenderRecord):
        body = {
            "id": record.id,
            "session_id": record.session_id,
            "account_id": record.account.id,
            "draft": record.draft,
            "width": record.width,
            "height": record.height,
            "duration_ms": record.duration_ms,
            "file_id": record.file_id,
            "status": record.status,
            "progress": record.progress,
            "error": record.error,
            "output": _relative(record.output, data_dir) if record.output else None,
            "sig": record.sig,
            "fail_with": record.fail_with,
            "created_at": record.created_at,
            "completed_at": record.completed_at,
            "worker": record.worker,
            "heartbeat_at": record.heartbeat_at,
        }
        return Row(RENDER, "/".join(record.key), json.dumps(body))
    body = {"session_id": record.session.id, "expires_at": record.expires_at}
    return Row(CLAIM, record.token, json.dumps(body))


def is_current(record: Record, state: State) -> bool:
    """Whether ``record`` is still the state's (not dropped by a reset since it was changed)."""
    if isinstance(record, Account):
        return state.accounts.get(record.id) is record
    if isinstance(record, Token):
        return state.tokens.get(record.value) is record
    if isinstance(record, SessionRecord):
        return state.sessions.get(record.id) is record
    if isinstance(record, MediaRecord):
        return state.media.get(record.id) is record
    if isinstance(record, RenderRecord):
        return state.renders_owned.get(record.key) is record
    return state.claims.get(record.token) is record


def merge(state: State, rows: Iterable[Row], data_dir: Path) -> None:
    """Bring ``state`` up to date with ``rows`` (in the order they were first written).

    Rows of kinds this version does not know are passed over; a row that does not make sense
    (a newer version's field of another type, one that names a record that is gone) is
    skipped, with a debug line: the rest still loads.
    """
    known = sorted((r for r in rows if r.kind in KIND_ORDER), key=lambda r: KIND_ORDER[r.kind])
    for row in known:  # sorted is stable: rows of a kind stay in the order first written
        try:
            _MERGERS[row.kind](state, row.key, _fields(row), data_dir)
        except KeyError:
            # A row naming a record that is gone: it would only be one left by a reset that
            # raced it, or a recovery that could not read it; nothing can use it.
            continue
        except (TypeError, ValueError, AttributeError) as exc:
            logger.debug("skipped the %s row %r, which does not read: %s", row.kind, row.key, exc)


def _fields(row: Row) -> dict[str, Any]:
    body = json.loads(row.body)
    if not isinstance(body, dict):
        raise TypeError(f"a {type(body).__name__}, not an object")
    return body


def keep_unknown_fields(stored: str, body: str) -> str:
    """``body`` with the top-level fields of the ``stored`` row that it does not have.

    A newer version's fields survive this one rewriting the row; the fields this version
    writes are its own. ``body`` is returned as it is when there is nothing to keep.
    """
    try:
        old = json.loads(stored)
    except ValueError:
        return body
    if not isinstance(old, dict):
        return body
    new = json.loads(body)
    extra = {k: v for k, v in old.items() if k not in new}
    return json.dumps({**extra, **new}) if extra else body


def usable_rows(rows: Iterable[Row]) -> tuple[list[Row], list[Row]]:
    """Split rows read back from a damaged database into those that can be used and those
    that belong to a record that was not read (the media of a lost session).

    Rows of kinds this version does not know are kept: they are a newer version's.
    """
    rows = list(rows)
    present: dict[str, set[str]] = {}
    for row in sorted(rows, key=lambda r: KIND_ORDER.get(r.kind, len(KIND_ORDER))):
        if row.kind in OWNER:
            field, kind = OWNER[row.kind]
            try:
                if _fields(row).get(field) not in present.get(kind, set()):
                    continue
            except (TypeError, ValueError):  # not an object, or an owner that is no key
                continue
        present.setdefault(row.kind, set()).add(row.key)
    kept = [r for r in rows if r.key in present.get(r.kind, set())]
    return kept, [r for r in rows if r.key not in present.get(r.kind, set())]


def describe(counts: Mapping[str, int]) -> str:
    """ "1 account, 3 sessions, 2 media" (the kinds this version knows first)."""
    order = sorted(counts, key=lambda k: (KIND_ORDER.get(k, len(KIND_ORDER)), k))
    return ", ".join(
        f"{counts[k]} {k if counts[k] == 1 else _PLURAL.get(k, k + 's')}"
        for k in order
        if counts[k]
    )


def _merge_account(state: State, key: str, body: dict[str, Any], _dir: Path) -> None:
    fields = {name: body[name] for name in _ACCOUNT_FIELDS if name in body}
    account = state.accounts.get(key)
    if account is None:
        state.index_account(Account(**fields))
        return
    for name, value in fields.items():
        setattr(account, name, value)


def _merge_token(state: State, key: str, body: dict[str, Any], _dir: Path) -> None:
    account = state.accounts[body["account_id"]]
    token = state.tokens.get(key)
    if token is None:
        state.tokens[key] = Token(value=key, account=account, expires_at=body["expires_at"])
    else:
        token.account, token.expires_at = account, body["expires_at"]


def _rng(state: list[Any]) -> random.Random:
    rng = random.Random()  # replaced by the stored state at once
    rng.setstate(_tuples(state))
    return rng


def _tuples(value: Any) -> Any:
    """JSON gave lists where ``getstate()`` had tuples; ``setstate`` wants the tuples back."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _merge_session(state: State, key: str, body: dict[str, Any], _dir: Path) -> None:
    session = state.sessions.get(key)
    if session is None:
        session = SessionRecord(
            id=key,
            task_id=body["task_id"],
            account=state.accounts[body["account_id"]],
            ordinal=body["ordinal"],
            rng=_rng(body["rng"]),
            task_name=body["task_name"],
        )
        state.sessions[key] = session
    else:
        session.rng.setstate(_tuples(body["rng"]))
        session.task_name = body["task_name"]
    session.draft = body["draft"]
    session.version = body["version"]
    session.history = body.get("history", [])  # rows written before undo existed have none
    session.turns = body["turns"]
    session._next_id = body["next_id"]


def _merge_media(state: State, key: str, body: dict[str, Any], data_dir: Path) -> None:
    session = state.sessions[body["session_id"]]
    media = state.media.get(key)
    fields = {
        "name": body["name"],
        "size": body["size"],
        "kind": body["kind"],
        "duration_ms": body["duration_ms"],
        "duration_estimated": body["duration_estimated"],
        "sha256": body["sha256"],
        "path": data_dir / body["path"],
        "source_url": body["source_url"],
        # Rows written before the reference's picture facts have none.
        "width": body.get("width"),
        "height": body.get("height"),
        "fps": body.get("fps"),
    }
    if media is None:
        media = MediaRecord(id=key, **fields)
        state.add_media(session, media)
    else:
        for name, value in fields.items():
            setattr(media, name, value)
    if body["beats"] is not None:
        media.beats = _beats_of(body["beats"])


def _merge_render(state: State, key: str, body: dict[str, Any], data_dir: Path) -> None:
    account = state.accounts[body["account_id"]]
    job = state.renders_owned.get((account.id, body["id"]))
    # Rows written before completed_at was stored have none.
    completed_at = body.get("completed_at")
    if job is not None and job.running_here:
        # This process renders it: its own object is the newer one, unless another process
        # cancelled the job [R], which stops the render here too.
        if body["status"] == RENDER_CANCELLED and not job.done:
            job.cancel(completed_at if completed_at is not None else job.created_at)
        return
    output = data_dir / body["output"] if body["output"] else None
    fields = {
        "status": body["status"],
        "progress": body["progress"],
        "error": body["error"],
        "output": output,
        "completed_at": completed_at,
        "worker": body["worker"],
        "heartbeat_at": body["heartbeat_at"],
    }
    if job is None:
        job = RenderRecord(
            id=body["id"],
            session_id=body["session_id"],
            account=account,
            draft=body["draft"],
            width=body["width"],
            height=body["height"],
            duration_ms=body["duration_ms"],
            file_id=body["file_id"],
            sig=body["sig"],
            fail_with=body["fail_with"],
            created_at=body["created_at"],
            **fields,
        )
        state.index_render(job)
        return
    for name, value in fields.items():
        setattr(job, name, value)


def _merge_claim(state: State, key: str, body: dict[str, Any], _dir: Path) -> None:
    session = state.sessions[body["session_id"]]
    state.claims[key] = Claim(token=key, session=session, expires_at=body["expires_at"])


_MERGERS = {
    ACCOUNT: _merge_account,
    TOKEN: _merge_token,
    SESSION: _merge_session,
    MEDIA: _merge_media,
    RENDER: _merge_render,
    CLAIM: _merge_claim,
}
