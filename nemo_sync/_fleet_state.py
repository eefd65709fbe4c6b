"""What the hosts of a fleet share besides their jobs: the 429 cooldown and the anonymous
identity (issue 22).

One key and one channel under the Redis store's prefix:

- ``<prefix>cooldown``: the latest "not before" time of the fleet's API calls, a Unix time in
  seconds, set by the host that got the 429 (its clock plus the Retry-After) and kept by Redis
  until then (``PX``); a script replaces it only with a later one;
- ``<prefix>cooldown`` (channel): the same time, published when it is set.

Every host subscribes once (a background task, started when its client first sends) and keeps
the latest time in memory (:class:`nemo_sync._retry.RateCooldown`), so a call costs no Redis
round trip. Redis down: no fleet cooldown; each host obeys its own 429s (logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from nemo_sync._credentials import Secret, StoredCredentials
from nemo_sync._retry import RateCooldown
from nemo_sync.errors import JobStoreUnavailableError

logger = logging.getLogger("nemo_sync")

# Only a later deadline replaces the kept one (two hosts with 429s of different lengths:
# the longer wait wins), and Redis forgets it when it passes. ARGV: deadline (s), its ms left.
_LATER_COOLDOWN = """
local kept = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= kept then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""
# After losing Redis, how long the listener waits before it subscribes again.
_RESUBSCRIBE = 1.0
# How long closing a client waits for its listener to stop.
_STOP_WAIT = 1.0
# How long a host's first call waits for its listener's first read of the cooldown in force
# (a subscribe and a GET: a millisecond or two; Redis unreachable: the call goes on).
_JOIN_WAIT = 0.5


class FleetCooldown:
    """Shares one client's 429 cooldown with every host on the same Redis and prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str, cooldown: RateCooldown) -> None:
        self._redis = client
        self._key = f"{prefix}cooldown"
        self._cooldown = cooldown
        self._later = client.register_script(_LATER_COOLDOWN)
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._warned = False
        self._stopped = asyncio.Event()
        self._pubsub: Any = None  # the listener's subscription (redis-py's PubSub)
        self._read = asyncio.Event()  # the cooldown in force was read (or Redis failed)
        cooldown.shared = self.share

    def start(self) -> None:
        """Start listening to the fleet (once; in the running loop). Until the listener has
        read the cooldown in force, the client's calls wait for it (:meth:`_join`)."""
        if self._listener is None:
            self._cooldown.joining = self._join
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(), name="nemo-sync fleet cooldown"
            )

    async def _join(self) -> None:
        """Wait (at most :data:`_JOIN_WAIT`) for the listener's first read."""
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self._read.wait(), _JOIN_WAIT)
        self._cooldown.joining = None

    async def aclose(self) -> None:
        """Stop listening; let the deadlines being recorded finish."""
        self._cooldown.shared = None
        self._cooldown.joining = None
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            self._stopped.set()
            listener.cancel()
            # redis-py can swallow a cancellation that lands while it connects or subscribes;
            # the flag ends the loop then, and a close never hangs on it.
            await asyncio.wait({listener}, timeout=_STOP_WAIT)
            if not listener.done() and self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()  # its connection gone, listen() ends
                await asyncio.wait({listener}, timeout=_STOP_WAIT)

    def share(self, deadline: float) -> None:
        """Tell the fleet about a 429 this host got (in the background: the call goes on)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - the transport only calls it in a loop
            return
        task = loop.create_task(self._record(deadline))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, deadline: float) -> None:
        ms = math.ceil((deadline - time.time()) * 1000)
        if ms <= 0:
            return
        try:
            await self._later(keys=[self._key], args=[repr(deadline), ms])
        except (RedisError, OSError) as exc:
            self._degraded(exc)

    async def _listen(self) -> None:
        """Keep the fleet's latest deadline in memory, resubscribing after Redis comes back."""
        while not self._stopped.is_set():
            pubsub = self._pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._key)
                # A host that joins mid-cooldown reads the one in force (after subscribing, so
                # none published in between is missed).
                self._take(await self._redis.get(self._key))
                self._read.set()
                async for message in pubsub.listen():
                    if self._stopped.is_set():
                        break
                    if message.get("type") == "message":
                        self._take(message.get("data"))
            except (RedisError, OSError) as exc:
                self._degraded(exc)
                self._read.set()  # no fleet cooldown to wait for: calls go on
            finally:
                with contextlib.suppress(RedisError, OSError):
                    # redis-py 5 leaves PubSub.aclose untyped (6+ types it).
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            await asyncio.sleep(_RESUBSCRIBE)

    def _take(self, raw: Any) -> None:
        if raw is None:
            return
        try:
            deadline = float(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            return  # not ours (or damaged): a cooldown is an optimisation, never a failure
        if math.isfinite(deadline):
            self._cooldown.extend(deadline)

    def _degraded(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "the fleet's 429 cooldown is off (Redis: %s); this host obeys its own 429s",
                type(exc).__name__,
            )


# The anonymous identity: a hash ``<prefix>identity`` (client_id, token, expires_at, user_id)
# and a lock ``<prefix>identity:lock`` held while a host asks the service for a token.
# Releasing and forgetting compare first: a lock that ran out and was taken by another host
# is not deleted, and a token that another host already replaced is not forgotten.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DROP_REJECTED = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'token', 'expires_at')
end
return 0
"""
# How long a host may hold the identity lock (a token call takes well under a second; a host
# killed while holding it delays the others this long), and how often the others look.
IDENTITY_LOCK_TTL = 30.0
_LOCK_POLL = 0.05


class FleetIdentity:
    """The fleet's anonymous client id and token, in Redis (see :class:`AnonymousAuth`).

    The token goes into Redis: Redis must be trusted like the credentials file (ACL, TLS).
    It is never logged and never part of a repr or an error.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._key = f"{prefix}identity"
        self._lock_key = f"{prefix}identity:lock"
        self._unlock = client.register_script(_UNLOCK)
        self._forget = client.register_script(_DROP_REJECTED)

    def __repr__(self) -> str:
        return f"FleetIdentity(key={self._key!r})"

    async def load(self) -> StoredCredentials | None:
        """The fleet's identity, or None before any host made one."""
        with _unavailable():
            # redis-py 5 types the command as "Awaitable[dict] | dict" (6+ as awaitable).
            raw = await self._redis.hgetall(self._key)  # type: ignore[misc, unused-ignore]
        fields = {_text(k): _text(v) for k, v in raw.items()}
        client_id = fields.get("client_id")
        if not client_id:
            return None
        token = fields.get("token")
        expires_at = fields.get("expires_at")
        return StoredCredentials(
            client_id=client_id,
            token=Secret(token) if token else None,
            expires_at=float(expires_at) if expires_at else None,
            user_id=fields.get("user_id") or None,
        )

    async def save(self, credentials: StoredCredentials) -> None:
        """Record a new identity (under :meth:`locked`)."""
        mapping: dict[Any, str] = {"client_id": credentials.client_id}
        if credentials.token:
            mapping["token"] = credentials.token.reveal()
        if credentials.expires_at is not None:
            mapping["expires_at"] = repr(credentials.expires_at)
        if credentials.user_id:
            mapping["user_id"] = credentials.user_id
        with _unavailable():
            await self._redis.hset(self._key, mapping=mapping)  # type: ignore[misc, unused-ignore]

    async def forget(self, rejected: Secret) -> None:
        """Drop the token, only if it is still the one the service rejected."""
        with _unavailable():
            await self._forget(keys=[self._key], args=[rejected.reveal()])

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the identity lock (SET NX PX with a random token; compare-and-delete)."""
        mine = secrets.token_hex(16)
        ttl_ms = int(IDENTITY_LOCK_TTL * 1000)
        with _unavailable():
            # Redis has no blocking SET NX: the others look again every 50 ms.
            while not await self._redis.set(self._lock_key, mine, nx=True, px=ttl_ms):  # noqa: ASYNC110
                await asyncio.sleep(_LOCK_POLL)
        try:
            yield
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._unlock(keys=[self._lock_key], args=[mine])


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Redis failing is one typed error (its message never holds the token: none is sent
    in a command redis-py quotes)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise JobStoreUnavailableError(
            f"the fleet's identity in Redis is unreachable ({type(exc).__name__})"
        ) from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
