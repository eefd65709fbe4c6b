"""The anonymous credentials file: client id, token and expiry, shared by every process.

The file is read safely (a regular file of at most 64 KB, never through a symlink, never
blocking on a FIFO) into a typed record: fields a newer version wrote are kept and written
back, a known field of the wrong type is reported. A damaged file is set aside whole
(``credentials.json.damaged-<time>``) by whoever holds the lock, never deleted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

import attrs

from nemo_sync._atomic import write_private
from nemo_sync._safe_file import json_kind, open_no_follow, read_state_file, set_aside
from nemo_sync.errors import ConfigurationError

logger = logging.getLogger("nemo_sync")

CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = "credentials.lock"
# A credentials file is ~200 bytes; reading a planted multi-GB file would only cost memory.
_MAX_FILE = 64 * 1024
_KNOWN_FIELDS = frozenset({"client_id", "token", "expires_at", "user_id"})
# Visible ASCII, as a header value must be (a UUID, an nmv_usr_... token).
_HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,4096}")


@final
class Secret:
    """A string that never shows itself: ``repr()`` and ``str()`` print ``Secret('***')``.

    Tokens are held in one of these so that no repr, log line or traceback frame rendered
    with ``capture_locals`` (rich, pytest's ``--showlocals``, Sentry) carries the value;
    :meth:`reveal` gives it back at the single point where it goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself (only for the Authorization header)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@attrs.frozen(repr=False)
class StoredCredentials:
    """What ``credentials.json`` holds. The token is a :class:`Secret`, so the repr hides it."""

    client_id: str
    token: Secret | None = None
    expires_at: float | None = None  # Unix time, seconds
    # The service's id for the account behind the token (anon_... [R]): the registration link.
    user_id: str | None = None
    # Fields this version does not know (a newer one wrote them), written back unchanged.
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    def __repr__(self) -> str:
        # The extra fields' values are not shown: a newer version may keep a secret there.
        return (
            f"StoredCredentials(client_id={self.client_id!r}, token={self.token!r}, "
            f"expires_at={self.expires_at!r}, user_id={self.user_id!r}, "
            f"extra={sorted(self.extra)!r})"
        )

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (the token revealed: it goes into the 0600 file only)."""
        known = {
            "client_id": self.client_id,
            "token": self.token.reveal() if self.token else None,
            "expires_at": self.expires_at,
            "user_id": self.user_id,
        }
        return known | {k: v for k, v in self.extra.items() if k not in _KNOWN_FIELDS}

    def valid_at(self, now: float, margin: float = 0.0) -> bool:
        """Whether the token exists and does not expire within ``margin`` seconds of ``now``."""
        if not self.token:
            return False
        return self.expires_at is None or self.expires_at - margin > now


@attrs.frozen(repr=False)
class CredentialsRead:
    """What reading ``credentials.json`` found (never the token in a repr).

    Attributes:
        credentials: The record, when the file is there and usable.
        problem: Why the file that is there cannot be used (damaged), else ``None``.
        notes: Fields that were ignored, and why (the record is still usable).
    """

    credentials: StoredCredentials | None = None
    problem: str | None = None
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"CredentialsRead(credentials={self.credentials!r}, problem={self.problem!r})"


class _Damaged(ValueError):
    """The file is there but unusable; the message says how."""


def parse_credentials(data: bytes) -> CredentialsRead:
    """The record in a credentials file's bytes, or why it is damaged; never raises.

    Damaged: not JSON, not an object, no client id, or a client id or token that is not a
    string. A wrong ``expires_at`` or ``user_id`` is a note: the token is still used.
    """
    try:
        credentials, notes = _parse(data)
    except _Damaged as exc:
        return CredentialsRead(problem=str(exc))
    return CredentialsRead(credentials, notes=tuple(notes))


def _parse(data: bytes) -> tuple[StoredCredentials, list[str]]:
    if not data.strip():
        raise _Damaged("it is empty")
    try:
        parsed: Any = json.loads(data)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise _Damaged("it is not JSON") from None
    if not isinstance(parsed, dict):
        raise _Damaged(f"it is {json_kind(parsed)}, not a JSON object")
    client_id = parsed.get("client_id")
    if client_id is None:
        raise _Damaged("it has no client_id")
    if not isinstance(client_id, str):
        raise _Damaged(f"client_id is {json_kind(client_id)}, not a string")
    # Both go into headers: anything else would fail every request, untyped.
    if not _HEADER_VALUE.fullmatch(client_id):
        raise _Damaged("client_id is not an id")
    token = parsed.get("token")
    if token is not None and not isinstance(token, str):
        raise _Damaged(f"token is {json_kind(token)}, not a string")
    if token and not _HEADER_VALUE.fullmatch(token):
        raise _Damaged("token holds characters no token has")
    # The other fields are not worth the token: a wrong one is reported and ignored, since
    # throwing the token away would cost the client id its week (one token per 7 days).
    notes: list[str] = []
    expires_at = parsed.get("expires_at")
    if expires_at is not None and (
        isinstance(expires_at, bool)
        or not isinstance(expires_at, (int, float))
        or not math.isfinite(expires_at)
    ):
        notes.append(f"expires_at is {json_kind(expires_at)}, not a time")
        expires_at = None
    user_id = parsed.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        notes.append(f"user_id is {json_kind(user_id)}, not a string")
        user_id = None
    credentials = StoredCredentials(
        client_id=client_id,
        token=Secret(token) if token else None,
        expires_at=float(expires_at) if expires_at is not None else None,
        user_id=user_id or None,
        extra={k: v for k, v in parsed.items() if k not in _KNOWN_FIELDS},
    )
    return credentials, notes


class CredentialStore:
    """Reads and writes ``credentials.json`` (mode 0600) under a home folder (made 0700).

    The file is read without following a symlink, so a link planted in a shared or
    group-writable home cannot make the SDK use (or, via a later write, overwrite) a file
    elsewhere; writes replace the path itself (``os.replace``), never a link's target.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / CREDENTIALS_FILE
        self.lock_path = home / LOCK_FILE
        self._home_checked = False

    def __repr__(self) -> str:
        return f"CredentialStore(home={str(self.home)!r})"

    def ensure_home(self) -> None:
        """Make the home folder 0700 when the SDK creates it; warn once if it is shared-writable.

        A folder the user made is theirs: its mode is reported, not changed.

        Raises:
            ConfigurationError: when the folder does not exist and cannot be made.
        """
        if self._home_checked:
            return
        try:
            self.home.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            self._home_checked = True
            try:
                mode = self.home.stat().st_mode
            except OSError:
                return
            if mode & (stat.S_IWGRP | stat.S_IWOTH):
                logger.warning(
                    "%s is writable by other users (mode %o); they could replace the "
                    "credentials file. Consider chmod 700 on it.",
                    self.home,
                    stat.S_IMODE(mode),
                )
            return
        except OSError as exc:
            raise ConfigurationError(
                f"cannot make the folder {self.home} ({_reason(exc)}): nemo-sync keeps its "
                "credentials there; set NEMO_HOME to a folder it can write in"
            ) from exc
        self._home_checked = True
        # mkdir(mode=) is filtered by the umask; set the mode outright on a folder we made.
        os.chmod(self.home, 0o700)

    def read(self) -> CredentialsRead:
        """What the file holds, without changing anything; never raises."""
        found = read_state_file(self.path, limit=_MAX_FILE)
        if found.problem is not None:
            return CredentialsRead(problem=found.problem)
        if found.data is None:
            return CredentialsRead()
        return parse_credentials(found.data)

    def load(self, *, set_aside_damage: bool = False) -> StoredCredentials | None:
        """The stored credentials, or None when there are none or the file is damaged.

        Args:
            set_aside_damage: Move a damaged file aside (with one line saying where). Only
                under the lock: a process reading without it could move away the good file
                another process has just written in its place.
        """
        found = self.read()
        if found.problem is not None:
            if set_aside_damage:
                self.set_aside(found.problem)
            return None
        if found.credentials is not None:
            for note in found.notes:
                logger.warning("ignoring part of %s: %s", self.path, note)
            self._make_private()
        return found.credentials

    def set_aside(self, why: str) -> Path | None:
        """Move the damaged file aside whole; where it went (None: it could not be moved)."""
        return set_aside(self.path, why)

    def _make_private(self) -> None:
        """A token readable by other users can be used by them: set the file to 0600, say so."""
        # Windows reports every file as 0666: the check means something on POSIX only.
        if os.name != "posix":  # pragma: no cover - POSIX only
            return
        try:
            fd = open_no_follow(self.path)
        except OSError:
            return
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode) or not mode & 0o077:
                return
            try:
                os.fchmod(fd, 0o600)
            except OSError as exc:  # a read-only home: the token is still usable
                logger.warning(
                    "%s is open to other users (mode %o) and could not be set to 0600 (%s)",
                    self.path,
                    stat.S_IMODE(mode),
                    _reason(exc),
                )
                return
            logger.warning(
                "%s was open to other users (mode %o); set it to 0600",
                self.path,
                stat.S_IMODE(mode),
            )
        except OSError:
            return
        finally:
            os.close(fd)

    def save(self, creds: StoredCredentials) -> None:
        """Replace the file atomically.

        Raises:
            ConfigurationError: when the home folder cannot be made.
            OSError: when the file cannot be written (a full disk, a read-only home).
        """
        self.ensure_home()
        write_private(self.path, json.dumps(creds.to_json(), indent=2).encode("utf-8"))

    def delete(self) -> bool:
        """Remove the stored credentials, whatever the file holds. Returns whether there were
        any. A folder in its place cannot be removed as a file: it is moved aside.

        Raises:
            ConfigurationError: when the file cannot be removed (a read-only home).
        """
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            folder = os.path.isdir(self.path) and not os.path.islink(self.path)
            if folder and self.set_aside("it is a folder, not a file") is not None:
                return True
            raise ConfigurationError(f"cannot remove {self.path} ({_reason(exc)})") from exc
        return True


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__
