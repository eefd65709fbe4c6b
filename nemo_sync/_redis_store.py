"""The render job store in Redis: every host that points at one Redis shares its jobs.

Keys, all under a prefix (``nemo:`` by default; one Redis can hold several fleets):

- ``<prefix>job:<id>``: a record, as the JSON string ``jobs.json`` would hold (fields this
  version does not know are kept);
- ``<prefix>jobs``: a sorted set of every id, scored by ``created_at`` (listing);
- ``<prefix>jobs:finished``: the finished ones, scored the same way (pruning: finished jobs
  beyond the newest 200 are deleted, as the file store does).

A record changes in a ``WATCH``/``MULTI`` transaction, so two hosts never lose each other's
writes. Needs redis-py (``pip install 'nemo-sync[redis]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
from yarl import URL

try:
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError, WatchError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "RedisJobStore needs redis-py, which is not installed: pip install 'nemo-sync[redis]'"
    ) from _missing

from nemo_sync._envelope import loads_strict
from nemo_sync._export_claims import (
    ACCEPTED,
    KEY_TTL,
    RESERVING,
    ExportClaim,
    check_idempotency_key,
    render_id_for,
)
from nemo_sync._fleet_state import FleetCooldown, FleetIdentity
from nemo_sync._jobstore import KEEP_FINISHED, DamagedRecordError, JobRecord
from nemo_sync._retry import RateCooldown
from nemo_sync.errors import ConfigurationError, JobStoreUnavailableError

logger = logging.getLogger("nemo_sync")

DEFAULT_PREFIX = "nemo:"
# A transaction that keeps losing its WATCH to other hosts gives up after this many tries
# (each loss means another host's write went through: the store is making progress).
_MAX_TRIES = 50
_T = TypeVar("_T")

# Finished jobs beyond the newest KEEP are deleted, their keys and index entries together.
_PRUNE = """
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
for _, id in ipairs(old) do
  redis.call('DEL', ARGV[2] .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return excess
"""


# Redis's clock, in ms, for every time a reservation holds: never a host's.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# The n-th id of a millisecond, fleet-wide. The counter lives a day: a host whose clock is
# behind by less than that still gets an id no other host was given.
_NEXT_ID = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""
_CLAIM = (
    _NOW
    + """
local rid = redis.call('HGET', KEYS[1], 'render_id')
local state = redis.call('HGET', KEYS[1], 'state')
if (not rid) or (state == ARGV[4] and tonumber(redis.call('HGET', KEYS[1], 'lease_until')) <= now)
then
  redis.call('HSET', KEYS[1], 'render_id', ARGV[1], 'state', ARGV[4], 'job_id', '',
             'reserved_at', now, 'lease_until', now + tonumber(ARGV[2]))
  if not rid then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
  return {1, ARGV[1], ARGV[4], '', tostring(now), tostring(now)}
end
return {0, rid, state, redis.call('HGET', KEYS[1], 'job_id'),
        redis.call('HGET', KEYS[1], 'reserved_at'), tostring(now)}
"""
)
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'render_id') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'state') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'job_id', ARGV[4])
return 1
"""
_RETAKE = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'render_id') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') == ARGV[5] then return 0 end
redis.call('HSET', KEYS[1], 'render_id', ARGV[2], 'state', ARGV[4], 'job_id', '',
           'reserved_at', now, 'lease_until', now + tonumber(ARGV[3]))
return 1
"""
)
_RELEASE = """
if redis.call('HGET', KEYS[1], 'render_id') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Leases: a key per job holding its owner's random token, with a TTL Redis keeps (PX).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A record write fenced by the lease token: an owner that paused past its TTL (and so lost
# the lease to another host) writes nothing. KEYS: lease, record, index, finished, channel.
_FENCED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
else
  redis.call('ZREM', KEYS[4], ARGV[4])
end
redis.call('PUBLISH', KEYS[5], ARGV[2])
return 1
"""
# The unfinished jobs no host holds a lease on (a tracker adopts them), with their records,
# in one round trip whatever the fleet's size: the index holds the unfinished jobs and at most
# KEEP_FINISHED finished ones. KEYS: index, finished; ARGV: lease prefix, record prefix, most.
_ORPHANS = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if #out >= tonumber(ARGV[3]) * 2 then break end
  if not redis.call('ZSCORE', KEYS[2], id) and redis.call('EXISTS', ARGV[1] .. id) == 0 then
    local raw = redis.call('GET', ARGV[2] .. id)
    if raw then
      table.insert(out, id)
      table.insert(out, raw)
    end
  end
end
return out
"""
DEFAULT_LEASE_TTL = 30.0


class RedisJobStore:
    """A :class:`~nemo_sync.JobStore` in Redis, shared by every host of a fleet.

    Args:
        redis: A URL (``redis://``, ``rediss://`` for TLS, ``unix://``; user and password in
            it as redis-py reads them) or a ``redis.asyncio.Redis`` client of your own (then
            closing it is yours).
        prefix: Put before every key. For Redis Cluster, make it a hash tag (``{nemo}:``) so
            a job's keys share a slot.

        lease_ttl: Seconds a host's lease on polling a render lasts unless renewed (it is
            renewed every third of it): how soon another host takes over after one died.

    Raises:
        ConfigurationError: an empty prefix, a lease TTL under 0.1 s.
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        if not prefix:
            raise ConfigurationError("the Redis key prefix must not be empty")
        if not lease_ttl >= 0.1:
            raise ConfigurationError(f"lease_ttl must be at least 0.1 seconds; got {lease_ttl}")
        self.lease_ttl = lease_ttl
        # Annotated: redis-py 5 types from_url() as Any (6+ as Redis).
        self._redis: aioredis.Redis
        if isinstance(redis, str):
            self._redis = aioredis.Redis.from_url(redis)
            self._owned = True
            self._where = _without_password(redis)
        else:
            self._redis = redis
            self._owned = False
            self._where = "a Redis client"
        self.prefix = prefix
        self._index = f"{prefix}jobs"
        self._finished = f"{prefix}jobs:finished"
        self._prune = self._redis.register_script(_PRUNE)
        self._next_id = self._redis.register_script(_NEXT_ID)
        self._claim = self._redis.register_script(_CLAIM)
        self._advance = self._redis.register_script(_ADVANCE)
        self._retake = self._redis.register_script(_RETAKE)
        self._release = self._redis.register_script(_RELEASE)
        self._last_ms = 0  # this host's milliseconds only move forward
        self._renew = self._redis.register_script(_RENEW)
        self._drop = self._redis.register_script(_DROP)
        self._fenced_write = self._redis.register_script(_FENCED_WRITE)
        self._orphans = self._redis.register_script(_ORPHANS)

    def __repr__(self) -> str:
        return f"RedisJobStore({self.where!r})"

    @property
    def where(self) -> str:
        """The Redis (without its password) and the key prefix, for messages."""
        return f"{self._where} (keys {self.prefix}*)"

    @property
    def redis(self) -> aioredis.Redis:
        """The redis-py client this store uses."""
        return self._redis

    def fleet_cooldown(self, cooldown: RateCooldown) -> FleetCooldown:
        """Share a client's 429 cooldown with the fleet (see :mod:`nemo_sync._fleet_state`)."""
        return FleetCooldown(self._redis, self.prefix, cooldown)

    def fleet_identity(self) -> FleetIdentity:
        """The fleet's shared anonymous identity (see :mod:`nemo_sync._fleet_state`)."""
        return FleetIdentity(self._redis, self.prefix)

    async def aclose(self) -> None:
        """Close the connection pool, when this store made it (from a URL)."""
        if self._owned:
            await self._redis.aclose()

    def key(self, job_id: str) -> str:
        """The key a record is kept under."""
        return f"{self.prefix}job:{job_id}"

    @asynccontextmanager
    async def _reachable(self) -> AsyncIterator[None]:
        """Redis being down (or refusing) is one typed error, whatever the call."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise JobStoreUnavailableError(
                f"the job store {self.where} is unreachable: {exc}"
            ) from exc
        except WatchError:
            raise
        except RedisError as exc:
            raise JobStoreUnavailableError(f"the job store {self.where} refused: {exc}") from exc

    def _decode(self, job_id: str, raw: bytes | str | None) -> JobRecord | None:
        if raw is None:
            return None
        try:
            return JobRecord.from_json(loads_strict(raw))
        except (ValueError, DamagedRecordError) as exc:
            # Never raised to a caller listing jobs: one bad record must not hide the others.
            logger.warning("%s: record %s cannot be read (%s); skipped", self.where, job_id, exc)
            return None

    # -- reading ---------------------------------------------------------------------------

    async def list(self) -> list[JobRecord]:
        """All records, newest first."""
        async with self._reachable():
            ids = [_reply_text(i) for i in await self._redis.zrevrange(self._index, 0, -1)]
            if not ids:
                return []
            raws = await self._redis.mget([self.key(i) for i in ids])
        records = (self._decode(i, raw) for i, raw in zip(ids, raws, strict=True))
        found = [r for r in records if r is not None]
        # The index is scored by created_at already; a sort keeps the file store's order
        # for records written with equal scores.
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    async def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        async with self._reachable():
            raw = await self._redis.get(self.key(job_id))
        return self._decode(job_id, raw)

    # -- writing ---------------------------------------------------------------------------

    async def put(self, record: JobRecord, *, replaces: str | None = None) -> None:
        """Add or replace a record (``replaces``: an id it supersedes)."""
        async with self._reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                if replaces is not None and replaces != record.id:
                    pipe.delete(self.key(replaces))
                    pipe.zrem(self._index, replaces)
                    pipe.zrem(self._finished, replaces)
                self._write(pipe, record)
                await pipe.execute()
            await self._prune_finished()

    def _write(self, pipe: Any, record: JobRecord) -> None:
        """Queue the writes of ``record`` and its index entries on a transaction (and tell
        the hosts following the job)."""
        body = json.dumps(record.to_json())
        pipe.set(self.key(record.id), body)
        pipe.publish(self._channel(record.id), body)
        pipe.zadd(self._index, {record.id: record.created_at})
        if record.finished:
            pipe.zadd(self._finished, {record.id: record.created_at})
        else:
            pipe.zrem(self._finished, record.id)

    async def _prune_finished(self) -> None:
        await self._prune(
            keys=[self._index, self._finished], args=[KEEP_FINISHED, f"{self.prefix}job:"]
        )

    async def update(
        self, job_id: str, *, when_status: Collection[str] | None = None, **changes: Any
    ) -> JobRecord | None:
        """Change fields of a record; None when the store does not have it.

        ``when_status``: change it only while its status is one of these; otherwise it is
        returned unchanged.
        """

        async def change(pipe: Any) -> JobRecord | None:
            record = self._decode(job_id, await pipe.get(self.key(job_id)))
            if record is None:
                return None
            if when_status is not None and record.status not in when_status:
                return record
            new = attrs.evolve(record, **changes)
            if new == record and new.extra == record.extra:
                return record
            pipe.multi()
            self._write(pipe, new)
            await pipe.execute()
            return new

        async with self._reachable():
            updated = await self._watched(self.key(job_id), change)
            if updated is not None and updated.finished:
                await self._prune_finished()
        return updated

    async def _watched(self, key: str, change: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``change`` on a pipeline that WATCHes ``key``, again when another host wrote
        it meanwhile."""
        for _ in range(_MAX_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                try:
                    return await change(pipe)
                except WatchError:
                    continue
        raise JobStoreUnavailableError(
            f"the job store {self.where}: {key} kept changing under {_MAX_TRIES} tries"
        )

    # -- ids and idempotency keys ----------------------------------------------------------

    def _export_key(self, key: str) -> str:
        return f"{self.prefix}export:{check_idempotency_key(key)}"

    async def new_render_id(self) -> str:
        """``render_<ms>`` for a millisecond's first export in the fleet, then
        ``render_<ms>_2``, ``_3``...: a Redis counter per millisecond."""
        now_ms = int(time.time() * 1000)
        self._last_ms = ms = max(now_ms, self._last_ms)
        async with self._reachable():
            n = await self._next_id(keys=[f"{self.prefix}ids:{ms}"], args=[int(KEY_TTL)])
        return render_id_for(ms, int(n))

    async def claim_export(self, key: str, render_id: str, *, lease: float) -> ExportClaim:
        """Reserve ``key`` for ``render_id`` (see :class:`~nemo_sync.JobStore`)."""
        args: list[str | int] = [render_id, int(lease * 1000), int(KEY_TTL), RESERVING]
        async with self._reachable():
            won, rid, state, job_id, reserved_at, now = await self._claim(
                keys=[self._export_key(key)], args=args
            )
        return ExportClaim(
            won=bool(won),
            render_id=_reply_text(rid),
            state=_reply_text(state),
            job_id=_reply_text(job_id) or None,
            reserved_at=float(_reply_text(reserved_at)) / 1000,
            now=float(_reply_text(now)) / 1000,
        )

    async def advance_export(
        self,
        key: str,
        render_id: str,
        state: str,
        *,
        from_state: str | None = None,
        job_id: str | None = None,
    ) -> bool:
        """Move ``key``'s reservation on (see :class:`~nemo_sync.JobStore`)."""
        args = [render_id, from_state or "", state, job_id or ""]
        async with self._reachable():
            return bool(await self._advance(keys=[self._export_key(key)], args=args))

    async def retake_export(self, key: str, old_id: str, new_id: str, *, lease: float) -> bool:
        """Reserve ``key`` again for ``new_id`` (see :class:`~nemo_sync.JobStore`)."""
        args: list[str | int] = [old_id, new_id, int(lease * 1000), RESERVING, ACCEPTED]
        async with self._reachable():
            return bool(await self._retake(keys=[self._export_key(key)], args=args))

    async def release_export(self, key: str, render_id: str) -> None:
        """Forget ``key`` while it is ``render_id``'s."""
        async with self._reachable():
            await self._release(keys=[self._export_key(key)], args=[render_id])

    # -- leases and followers --------------------------------------------------------------

    def _lease_key(self, job_id: str) -> str:
        return f"{self.prefix}lease:{job_id}"

    def _channel(self, job_id: str) -> str:
        return f"{self.prefix}events:{job_id}"

    async def take_lease(self, job_id: str) -> str | None:
        """The lease on polling ``job_id`` (its token), or None when another host holds it.
        Its time is kept by Redis (``SET NX PX``), never by a host's clock."""
        token = secrets.token_hex(16)
        async with self._reachable():
            taken = await self._redis.set(
                self._lease_key(job_id), token, nx=True, px=int(self.lease_ttl * 1000)
            )
        return token if taken else None

    async def renew_lease(self, job_id: str, token: str) -> bool:
        """Extend the lease by its TTL; False when it is no longer ``token``'s."""
        args: list[str | int] = [token, int(self.lease_ttl * 1000)]
        async with self._reachable():
            return bool(await self._renew(keys=[self._lease_key(job_id)], args=args))

    async def drop_lease(self, job_id: str, token: str) -> None:
        """Give the lease up, while it is ``token``'s."""
        async with self._reachable():
            await self._drop(keys=[self._lease_key(job_id)], args=[token])

    async def fenced_update(self, job_id: str, token: str, **changes: Any) -> bool:
        """Change fields of a record only while the lease is ``token``'s; False when it is
        not (nothing is written). A record the store does not have is left absent."""

        finished = False

        async def change(pipe: Any) -> bool:
            nonlocal finished
            record = self._decode(job_id, await pipe.get(self.key(job_id)))
            if record is None:
                return True
            new = attrs.evolve(record, **changes)
            finished = new.finished
            pipe.multi()
            keys = [
                self._lease_key(job_id),
                self.key(job_id),
                self._index,
                self._finished,
                self._channel(job_id),
            ]
            args = [
                token,
                json.dumps(new.to_json()),
                repr(new.created_at),
                job_id,
                "1" if new.finished else "0",
            ]
            await self._fenced_write(keys=keys, args=args, client=pipe)
            (written,) = await pipe.execute()
            return bool(written)

        async with self._reachable():
            written = await self._watched(self.key(job_id), change)
            # Only a finished job can push the finished ones past the cap (as in update()):
            # not a script call after every progress write.
            if written and finished:
                await self._prune_finished()
        return written

    async def unleased(self, most: int) -> tuple[JobRecord, ...]:
        """Up to ``most`` unfinished jobs no host holds the lease on, oldest first: one
        round trip (a tracker's scan)."""
        args: list[str | int] = [self._lease_key(""), self.key(""), most]
        async with self._reachable():
            reply = await self._orphans(keys=[self._index, self._finished], args=args)
        pairs = zip(reply[::2], reply[1::2], strict=True)
        found = (self._decode(_reply_text(i), raw) for i, raw in pairs)
        return tuple(r for r in found if r is not None and not r.finished)

    @asynccontextmanager
    async def follow(
        self, job_id: str
    ) -> AsyncIterator[Callable[[float], Awaitable[JobRecord | None]]]:
        """Subscribe to a job's changes; gives a function that waits up to its argument in
        seconds for the next one and returns the record it wrote, or None when none came.

        The message carries the whole record, so a follower reads nothing per change: the
        fleet's Redis commands per poll do not grow with the number of hosts following."""
        async with self._reachable():
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(self._channel(job_id))

        async def next_change(timeout: float) -> JobRecord | None:
            async with self._reachable():
                loop = asyncio.get_running_loop()
                until = loop.time() + timeout
                while (left := until - loop.time()) > 0:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                    if message is not None:
                        record = self._decode(job_id, message["data"])
                        # A message that cannot be read (logged): the store's copy is read.
                        return record if record is not None else await self.get(job_id)
                return None

        try:
            yield next_change
        finally:
            # A Redis that went away has nothing to unsubscribe from.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]


def _without_password(url: str) -> str:
    """The URL for messages: a password in it is never logged."""
    parsed = URL(url)
    return str(parsed.with_password(None)) if parsed.password else url


def _reply_text(value: Any) -> str:
    """A reply's value as text: bytes by default, str for a client with decode_responses."""
    return value.decode() if isinstance(value, bytes) else str(value)
