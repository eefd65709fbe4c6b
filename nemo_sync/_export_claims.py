"""Render ids unique across a store, and idempotency-key reservations for ``export``.

An export with an idempotency key first reserves the key in the job store with a render id
it chose; exactly one caller wins the reservation and sends the render request, the others
wait for the store to say the job's id. A reservation moves through three states:

- ``reserving``: the winner has not sent anything yet. It holds a short lease
  (:data:`RESERVE_LEASE`); a winner that dies here has provably sent nothing, so once the
  lease is over the next caller takes the key over (with its own new id).
- ``sending``: the winner is sending (or has sent) the request. Only the service can say
  whether it arrived: callers ask it for the id; found, they attach. A caller that finds the
  service still not knowing it after the submission deadline (10 minutes after the
  reservation, ``SUBMISSION_DEADLINE``) takes the key over with a NEW id and sends once: the
  contract's "new id, retry once".
- ``submitted``: the service accepted the job; ``job_id`` says which.

The file store keeps these in ``exports.json`` beside ``jobs.json`` (one machine, its clock,
under the same file lock); the Redis store in hashes, timed by Redis's own clock.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._atomic import write_private
from nemo_sync._contract import RENDER_ID_PREFIX
from nemo_sync._envelope import loads_strict
from nemo_sync._filelock import locked_file_work
from nemo_sync._safe_file import read_state_file, set_aside
from nemo_sync.errors import ConfigurationError

RESERVING = "reserving"
SENDING = "sending"
ACCEPTED = "submitted"
RESERVE_LEASE = 30.0
"""Seconds a ``reserving`` reservation is its winner's; after it, the winner (which had not
sent anything) is taken for dead and the key goes to the next caller."""
KEY_TTL = 24 * 3600.0
"""Seconds an idempotency key is remembered after its reservation (a retry after that makes
a new render)."""
MAX_KEY_LENGTH = 200
EXPORTS_FILE = "exports.json"
_MAX_FILE_BYTES = 4 * 1024 * 1024
_MAX_KEYS = 10_000


@attrs.frozen
class ExportClaim:
    """What the store says about an idempotency key, after a caller asked to reserve it.

    Attributes:
        won: This caller holds the reservation: it, and no one else, sends the request.
        render_id: The render id reserved for the key.
        state: ``reserving``, ``sending`` or ``submitted``.
        job_id: The service's id for the job, once ``submitted``.
        reserved_at: When the current reservation was made (the store's clock, Unix seconds).
        now: The store's clock at this look (Unix seconds).
    """

    won: bool
    render_id: str
    state: str
    job_id: str | None
    reserved_at: float
    now: float


def check_idempotency_key(key: str) -> str:
    """The key, when usable (a non-empty string of at most 200 characters)."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ConfigurationError(
            f"idempotency_key must be a non-empty string of at most {MAX_KEY_LENGTH} "
            f"characters; got {key!r:.60}"
        )
    return key


def render_id_for(ms: int, n: int) -> str:
    """``render_<ms>`` [V] for the first id of a millisecond, ``render_<ms>_<n>`` after."""
    return f"{RENDER_ID_PREFIX}{ms}" if n <= 1 else f"{RENDER_ID_PREFIX}{ms}_{n}"


def _readable(entry: Any) -> bool:
    """Whether an ``exports.json`` entry has the fields a reservation needs."""
    if not isinstance(entry, dict):
        return False
    texts = all(isinstance(entry.get(k), str) for k in ("render_id", "state"))
    numbers = all(
        isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
        for k in ("reserved_at", "lease_until")
    )
    return texts and numbers and isinstance(entry.get("job_id"), (str, type(None)))


class FileExportClaims:
    """Ids and idempotency keys for the file store: ``exports.json`` under its file lock.

    A mixin of :class:`~nemo_sync._jobstore.FileJobStore`, which supplies ``path`` (the
    jobs file, whose folder this file shares) and ``_lock_path``.
    """

    path: Path
    _lock_path: Path
    _last_given_ms = 0

    @property
    def _exports_path(self) -> Path:
        return self.path.with_name(EXPORTS_FILE)

    def _read_exports(self) -> dict[str, Any]:
        found = read_state_file(self._exports_path, limit=_MAX_FILE_BYTES)
        if found.problem is None and found.data is None:
            return {"last_id_ms": 0, "keys": {}}
        problem = found.problem
        if problem is None:
            assert found.data is not None
            try:
                data = loads_strict(found.data)
            except ValueError:
                data = None
            if (
                isinstance(data, dict)
                and isinstance(data.get("last_id_ms"), int)
                and isinstance(data.get("keys"), dict)
            ):
                return data
            problem = "it is not an exports file"
        # Damage: set aside (one warning line). Ids stay unique because they also move past
        # the clock; keys reserved before are forgotten, as after their TTL.
        if set_aside(self._exports_path, problem) is None:
            raise ConfigurationError(f"{self._exports_path} is damaged ({problem}); move it away")
        return {"last_id_ms": 0, "keys": {}}

    async def _exports(self, change: Any) -> Any:
        def read_change_write() -> Any:
            data = self._read_exports()
            now = time.time()
            # Keys past their TTL (and entries that cannot be read) are dropped on every
            # write: the file stays small.
            data["keys"] = {
                k: v
                for k, v in data["keys"].items()
                if _readable(v) and now - v["reserved_at"] < KEY_TTL
            }
            result = change(data, now)
            if len(data["keys"]) > _MAX_KEYS:
                raise ConfigurationError(
                    f"{self._exports_path} would hold more than {_MAX_KEYS:,} idempotency keys"
                )
            write_private(self._exports_path, json.dumps(data).encode())
            return result

        # The file work in a thread, shielded: a cancelled caller never leaves it half done.
        return await locked_file_work(self._lock_path, read_change_write)

    async def new_render_id(self) -> str:
        """``render_<unix ms>``, never given before on this machine (the milliseconds only
        move forward, under the lock)."""

        def change(data: dict[str, Any], now: float) -> str:
            # This object's own last id counts too: a damaged file set aside (its last id
            # forgotten) in the same millisecond still gives a new one.
            ms = max(int(now * 1000), data["last_id_ms"] + 1, self._last_given_ms + 1)
            data["last_id_ms"] = self._last_given_ms = ms
            return render_id_for(ms, 1)

        result: str = await self._exports(change)
        return result

    async def claim_export(self, key: str, render_id: str, *, lease: float) -> ExportClaim:
        """Reserve ``key`` for ``render_id``, unless another caller holds it (see module)."""

        def change(data: dict[str, Any], now: float) -> ExportClaim:
            entry = data["keys"].get(key)
            if entry is None or (
                entry["state"] == RESERVING and float(entry["lease_until"]) <= now
            ):
                data["keys"][key] = {
                    "render_id": render_id,
                    "state": RESERVING,
                    "job_id": None,
                    "reserved_at": now,
                    "lease_until": now + lease,
                }
                return ExportClaim(True, render_id, RESERVING, None, now, now)
            return ExportClaim(
                False,
                entry["render_id"],
                entry["state"],
                entry.get("job_id"),
                float(entry["reserved_at"]),
                now,
            )

        result: ExportClaim = await self._exports(change)
        return result

    async def advance_export(
        self,
        key: str,
        render_id: str,
        state: str,
        *,
        from_state: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        """Move the reservation of ``key`` on to ``state``, only while it is still
        ``render_id``'s (and in ``from_state``, when given)."""

        def change(data: dict[str, Any], _now: float) -> bool:
            entry = data["keys"].get(key)
            if entry is None or entry["render_id"] != render_id:
                return False
            if from_state is not None and entry["state"] != from_state:
                return False
            entry.update(state=state, job_id=job_id)
            return True

        result: bool = await self._exports(change)
        return result

    async def retake_export(self, key: str, old_id: str, new_id: str, *, lease: float) -> bool:
        """Reserve ``key`` again for ``new_id``, only while it is still ``old_id``'s and not
        submitted (the caller found the service does not know ``old_id``)."""

        def change(data: dict[str, Any], now: float) -> bool:
            entry = data["keys"].get(key)
            if entry is None or entry["render_id"] != old_id or entry["state"] == ACCEPTED:
                return False
            entry.update(
                render_id=new_id,
                state=RESERVING,
                job_id=None,
                reserved_at=now,
                lease_until=now + lease,
            )
            return True

        result: bool = await self._exports(change)
        return result

    async def release_export(self, key: str, render_id: str) -> None:
        """Forget ``key`` while it is still ``render_id``'s (the service refused the job:
        nothing was made, so the key may be used again)."""

        def change(data: dict[str, Any], _now: float) -> None:
            entry = data["keys"].get(key)
            if entry is not None and entry["render_id"] == render_id:
                del data["keys"][key]

        await self._exports(change)
