"""Where the bearer token comes from: the user, or the anonymous-token flow."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import attrs

from nemo_sync._client_id import claim_client_id
from nemo_sync._contract import ANONYMOUS_TOKEN_TTL
from nemo_sync._credentials import CredentialStore, Secret, StoredCredentials
from nemo_sync._filelock import file_lock
from nemo_sync._retry import describe_wait, wait_until
from nemo_sync.errors import (
    AuthenticationError,
    JobStoreUnavailableError,
    MissingClientIdError,
    NemoError,
    RateLimitError,
)

logger = logging.getLogger("nemo_sync")

ANONYMOUS_TOKEN_LIFETIME = ANONYMOUS_TOKEN_TTL  # when the reply gives no expiry
# Fetch a new token this long before the old one expires, so no call meets the expiry.
REFRESH_MARGIN = 600.0


@attrs.frozen(repr=False)
class IssuedToken:
    """What the anonymous-token call gave: the token, its expiry and the user id [R]."""

    token: str
    expires_at: float | None
    user_id: str | None = None

    def __repr__(self) -> str:
        return f"IssuedToken(token='***', expires_at={self.expires_at!r}, user_id={self.user_id!r})"


# (client_id) -> the issued token; performed by the transport.
TokenFetcher = Callable[[str], Awaitable[IssuedToken]]


class Auth(Protocol):
    """A source of bearer tokens."""

    @property
    def anonymous(self) -> bool:
        """True when the SDK made the token (and may replace it)."""
        ...

    @property
    def user_id(self) -> str | None:
        """The service's id for the account, when a token reply gave one (``anon_...``)."""
        ...

    def cached_token(self) -> str | None:
        """A token that is at hand and valid now, without I/O; None when one must be fetched."""
        ...

    async def token(self) -> str:
        """A token to send now."""
        ...

    async def invalidate(self, token: str) -> None:
        """The service rejected ``token`` (1001)."""
        ...

    async def replacement_rejected(self, token: str) -> str:
        """The service rejected ``token`` although it replaced a rejected one: stop swapping.

        Returns what to tell the user.
        """
        ...


class SharedIdentity(Protocol):
    """The fleet's shared place for the anonymous identity (``nemo_sync._fleet_state``).

    Every method raises :class:`JobStoreUnavailableError` when the place cannot be reached.
    """

    async def load(self) -> StoredCredentials | None:
        """The identity kept there, if any."""
        ...

    async def save(self, credentials: StoredCredentials) -> None:
        """Keep a new identity (called under :meth:`locked`)."""
        ...

    async def forget(self, rejected: Secret) -> None:
        """Drop the kept token, only if it is still ``rejected``."""
        ...

    def locked(self) -> AbstractAsyncContextManager[None]:
        """The fleet-wide lock around asking the service for a token."""
        ...


def _again(exc: NemoError) -> NemoError:
    """A copy of ``exc`` to raise in another task (raising one object twice mixes tracebacks)."""
    try:
        again = copy.copy(exc)
    except Exception:  # an error whose constructor copy cannot call: share the original
        return exc
    again.__traceback__ = None
    return again


class StaticTokenAuth:
    """A token given by the user: used as is, never swapped."""

    anonymous = False
    user_id = None  # the token is the user's: the service says whose in a session reply

    def __init__(self, token: str) -> None:
        self._token = Secret(token)

    def cached_token(self) -> str | None:
        return self._token.reveal()

    async def token(self) -> str:
        return self._token.reveal()

    async def invalidate(self, token: str) -> None:
        return None

    async def replacement_rejected(self, token: str) -> str:  # pragma: no cover - never swapped
        return "The token was rejected."

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=Secret('***'))"


def expiry_from(data: Any, now: float) -> float:
    """When an anonymous token expires: ``expires_at``/``expires_in`` if given, else in 7 days."""
    if isinstance(data, dict):
        at = data.get("expires_at") or data.get("expiresAt") or data.get("expire_at")
        if isinstance(at, (int, float)) and not isinstance(at, bool):
            # Milliseconds are common in this API family; seconds since 2001 are > 1e9.
            return float(at) / 1000.0 if at > 1e12 else float(at)
        if isinstance(at, str):
            try:
                return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        within = data.get("expires_in") or data.get("expiresIn")
        if isinstance(within, (int, float)) and not isinstance(within, bool):
            return now + float(within)
    return now + ANONYMOUS_TOKEN_LIFETIME


def token_refused(exc: RateLimitError, client_id: str) -> RateLimitError:
    """The anonymous-token call's 429, saying what the user can do now.

    The service gives one anonymous token per client id per 7 days [V]: a token lost (a
    damaged file) or rejected cannot be replaced before then, and each way back has a cost
    the user should choose knowingly.
    """
    if exc.retry_after is not None:
        when = f"the next in {describe_wait(exc.retry_after)} (after {wait_until(exc.retry_after)})"
    else:
        when = "the next later (the service did not say when)"
    message = (
        f"The service refused a new anonymous token for this machine's client id {client_id}: "
        f"it gives one per client id per 7 days, {when}. That account's sessions stay with "
        "it. Ways on: wait until then; register at nemovideo.com and use your own token "
        f"(NEMO_TOKEN); or start over with NEMO_CLIENT_ID={uuid.uuid4()}, a new anonymous "
        "account without this one's sessions (the service gives at most 10 anonymous tokens "
        "per IP per 7 days)."
    )
    return RateLimitError(
        message,
        retry_after=exc.retry_after,
        status=exc.status,
        code=exc.code,
        request_id=exc.request_id,
        endpoint=exc.endpoint,
    )


class AnonymousAuth:
    """The anonymous-token flow, with the credentials shared by every process on the machine.

    A valid saved token is read without a lock (nothing needs writing, so a read-only home
    works). Getting a new one runs once at a time in a process (an asyncio lock) and across
    processes (a file lock around read-check-fetch-write), so two processes starting together
    end up with one token between them, and the one-token-per-client-id-per-7-days limit is
    never burned. With ``fleet`` (a Redis job store), the same is done fleet-wide: the
    identity lives in Redis, and the lock is a Redis key (see nemo_sync._fleet_state).
    """

    anonymous = True

    def __init__(
        self,
        store: CredentialStore,
        fetch: TokenFetcher,
        *,
        client_id: str | None = None,
        shared_id_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        fleet: SharedIdentity | None = None,
    ) -> None:
        self._store = store
        # With a Redis job store, the identity is the fleet's (one token request per fleet);
        # None again once that place is unreachable: this machine's file then, as before.
        self._fleet = fleet
        self._fetch = fetch
        self._client_id = client_id
        self._shared_id_path = shared_id_path
        self._clock = clock
        self._current: StoredCredentials | None = None
        self._rejected: set[Secret] = set()
        # Set once a replacement token was rejected too: every later call fails fast with it
        # instead of burning the client id's quota on a new token per call.
        self._refused: str | None = None
        # The last failed token call, shared with the calls that waited on the lock meanwhile
        # (each would otherwise run the token call again in turn: N calls, N x 2 requests).
        self._failures = 0
        self._last_failure: NemoError | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AnonymousAuth(home={str(self._store.home)!r})"

    @property
    def client_id(self) -> str | None:
        """The client id in use, once known."""
        return self._current.client_id if self._current else self._client_id

    @property
    def user_id(self) -> str | None:
        """The account's ``anon_...`` id from the token reply, once a token is at hand."""
        return self._current.user_id if self._current else None

    def cached_token(self) -> str | None:
        current = self._current
        if current and current.token and current.valid_at(self._clock(), REFRESH_MARGIN):
            return current.token.reveal()
        return None

    async def token(self) -> str:
        current = self._current
        if current and current.token and current.valid_at(self._clock(), REFRESH_MARGIN):
            return current.token.reveal()
        failures = self._failures
        async with self._lock:
            self._check_refused()
            current = self._current
            if current and current.token and current.valid_at(self._clock(), REFRESH_MARGIN):
                return current.token.reveal()
            failed = self._last_failure
            if self._failures != failures and failed is not None:
                again = _again(failed)
                if again is failed:
                    raise failed
                raise again from failed
            if self._fleet is not None:
                try:
                    return (await self._fleet_token(self._fleet)).reveal()
                except JobStoreUnavailableError as exc:
                    logger.warning("%s; this host uses its own anonymous identity", exc)
                    self._fleet = None
                except NemoError as exc:
                    self._failures += 1
                    self._last_failure = exc
                    raise
            # A valid token on disk needs no lock to be read: a read-only home, or one where
            # the lock file cannot be made, still works for everything but writing.
            stored = self._store.load()
            saved = self._usable(stored, self._clock(), self._machine_client_id(stored))
            if saved is not None:
                self._current = saved
                assert saved.token is not None  # _usable() checked it
                return saved.token.reveal()
            try:
                self._store.ensure_home()  # before the lock file, which would make it 0755
                async with file_lock(self._store.lock_path):
                    token = await self._load_or_fetch()
            except NemoError as exc:
                self._failures += 1
                self._last_failure = exc
                raise
            self._last_failure = None
            return token.reveal()

    def _check_refused(self) -> None:
        if self._refused is not None:
            raise AuthenticationError(self._refused)

    def _machine_client_id(self, stored: StoredCredentials | None) -> str | None:
        """The id to use: the user's, else the machine's shared one (made and saved if new).

        A token saved by an older version under its own client id carries that id into the
        shared file when the file does not exist yet, so upgrading keeps the identity.
        """
        if self._client_id or self._shared_id_path is None:
            return self._client_id
        return claim_client_id(self._shared_id_path, stored.client_id if stored else None)

    def _usable(
        self, stored: StoredCredentials | None, now: float, wanted: str | None
    ) -> StoredCredentials | None:
        """``stored``, when its token is for ``wanted`` (the client id in use), not rejected,
        and valid for a while yet."""
        if stored is None or (wanted and stored.client_id != wanted):
            return None  # a token made for another client id is not ours to use
        if (
            stored.token
            and stored.token not in self._rejected
            and stored.valid_at(now, REFRESH_MARGIN)
        ):
            return stored
        return None

    async def _load_or_fetch(self) -> Secret:
        now = self._clock()
        # Under the lock: the one place a damaged file is moved aside (one line says where).
        stored = self._store.load(set_aside_damage=True)
        wanted = self._machine_client_id(stored)
        usable = self._usable(stored, now, wanted)
        if usable is not None and usable.token is not None:
            self._current = usable
            return usable.token
        if wanted and stored and stored.client_id != wanted:
            stored = None  # a token made for another client id is not ours to use
        client_id = wanted or (stored.client_id if stored else None) or str(uuid.uuid4())
        try:
            client_id, issued = await self._fetch_with_client_id(client_id)
        except RateLimitError as exc:
            # Refreshing early can meet the one-per-7-days limit: the old token still works.
            if stored and stored.token not in self._rejected and stored.valid_at(now):
                logger.debug("early token refresh rate limited; keeping the current token")
                self._current = stored
                assert stored.token is not None  # valid_at() checked it
                return stored.token
            raise token_refused(exc, client_id) from exc
        token = Secret(issued.token)
        fresh = StoredCredentials(
            client_id=client_id,
            token=token,
            expires_at=issued.expires_at,
            user_id=issued.user_id,
            extra=stored.extra if stored else {},
        )
        self._current = fresh
        try:
            self._store.save(fresh)
        except OSError as exc:
            # The token is had (and the client id's week spent): this process goes on with
            # it rather than fail; the next process will need another.
            reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            logger.warning(
                "could not save the new anonymous token to %s (%s): only this process can use "
                "it; free some space there or set NEMO_HOME to a writable folder",
                self._store.path,
                reason,
            )
        else:
            logger.debug("stored a new anonymous token (expires at %s)", issued.expires_at)
        return token

    async def _fleet_token(self, fleet: SharedIdentity) -> Secret:
        """The fleet's token; asked for under the fleet's lock when there is none usable, so
        the hosts starting together make one token request (and spend one client id)."""
        usable = self._usable(await fleet.load(), self._clock(), None)
        if usable is None:
            async with fleet.locked():
                stored = await fleet.load()
                now = self._clock()
                usable = self._usable(stored, now, None)
                if usable is None:
                    usable = await self._fleet_fetch(fleet, stored, now)
        self._current = usable
        assert usable.token is not None  # _usable() and _fleet_fetch() make sure
        self._last_failure = None
        return usable.token

    async def _fleet_fetch(
        self, fleet: SharedIdentity, stored: StoredCredentials | None, now: float
    ) -> StoredCredentials:
        """A new token for the fleet (under its lock), under the fleet's client id if any."""
        if stored is None:
            brought = self._bring_machine_identity(now)
            if brought is not None:
                await self._fleet_save(fleet, brought)
                return brought
        client_id = (
            (stored.client_id if stored else None)
            or self._machine_client_id(None)
            or str(uuid.uuid4())
        )
        try:
            client_id, issued = await self._fetch_with_client_id(client_id)
        except RateLimitError as exc:
            # An early refresh refused: the old token still works.
            if stored and stored.token not in self._rejected and stored.valid_at(now):
                return stored
            raise token_refused(exc, client_id) from exc
        fresh = StoredCredentials(
            client_id=client_id,
            token=Secret(issued.token),
            expires_at=issued.expires_at,
            user_id=issued.user_id,
        )
        await self._fleet_save(fleet, fresh)
        return fresh

    def _bring_machine_identity(self, now: float) -> StoredCredentials | None:
        """This machine's usable token, for a fleet that has no identity yet: a machine that
        ran alone before (credentials.json) joins with its token instead of asking again
        under the same client id, which the service refuses (one per client id per 7 days).
        A token that turns out to be rejected is replaced as any fleet token is (a 1001)."""
        try:
            local = self._store.load()
        except (NemoError, OSError):
            return None  # unreadable here: the fleet asks for its own
        return self._usable(local, now, self._machine_client_id(local))

    async def _fleet_save(self, fleet: SharedIdentity, credentials: StoredCredentials) -> None:
        try:
            await fleet.save(credentials)
        except JobStoreUnavailableError as exc:
            # The token is had (and the client id's week spent): this host keeps it rather
            # than ask again; the others will need their own until Redis is back.
            logger.warning("%s; the anonymous token stays with this host", exc)
        else:
            logger.debug("stored the fleet's anonymous token (expires %s)", credentials.expires_at)

    async def _fetch_with_client_id(self, client_id: str) -> tuple[str, IssuedToken]:
        """(client id that got the token, what the service issued)."""
        try:
            issued = await self._fetch(client_id)
        except MissingClientIdError:
            # The contract: make a (new) client id and retry, once.
            client_id = str(uuid.uuid4())
            logger.debug("service asked for a client id; retrying with a new one")
            issued = await self._fetch(client_id)
        return client_id, issued

    async def invalidate(self, token: str) -> None:
        rejected = Secret(token)
        self._rejected.add(rejected)
        async with self._lock:
            if self._current and self._current.token == rejected:
                self._current = None
            if self._fleet is not None:
                # Compare-and-set: a host that was rejected after another already replaced
                # the token leaves the new one alone (and picks it up on its next call).
                try:
                    await self._fleet.forget(rejected)
                except JobStoreUnavailableError as exc:
                    logger.debug("could not forget the rejected token in the fleet: %s", exc)
            try:
                self._store.ensure_home()
                async with file_lock(self._store.lock_path):
                    stored = self._store.load(set_aside_damage=True)
                    if stored and stored.token == rejected:
                        self._store.save(attrs.evolve(stored, token=None, expires_at=None))
            except (NemoError, OSError) as exc:
                # This process remembers the rejection (``_rejected``); getting the next
                # token, which needs the same writes, says what is wrong in one line.
                logger.debug("could not forget the rejected token on disk: %s", exc)

    async def replacement_rejected(self, token: str) -> str:
        """Stop for good in this client: a token fetched to replace a rejected one failed too.

        Another new token would most likely be rejected as well (a service that does not
        honour its own tokens, or a base_url pointing at the wrong place), and each one costs
        the client id's quota (one per 7 days), so the next calls fail at once instead.
        """
        await self.invalidate(token)
        self._refused = (
            "The service rejected a freshly issued anonymous token too, so nemo-sync stops "
            "asking for new ones in this client (each costs the client id's quota). Check "
            "base_url (NEMO_API_URL), or pass a token (NEMO_TOKEN); a new NemoClient tries again."
        )
        return self._refused
