"""The anonymous credentials file: client id, token and expiry, shared by every process."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, final

import attrs

from nemo_sync._atomic import write_private

logger = logging.getLogger("nemo_sync")

CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = "credentials.lock"
# A credentials file is ~200 bytes; reading a planted multi-GB file would only cost memory.
_MAX_FILE = 64 * 1024
# O_NOFOLLOW refuses a symlink at open time (no check-then-open race); Windows has no such
# flag, so there the lstat() check in load() is the only guard.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A FIFO planted as credentials.json would block open(); O_NONBLOCK does nothing to files.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _open_no_follow(path: Path) -> int:
    """Open ``path`` for reading; a symlink raises ``OSError(ELOOP)``."""
    if not _NOFOLLOW and path.is_symlink():  # pragma: no cover - Windows: check, then open
        raise OSError(errno.ELOOP, "symbolic link", str(path))
    return os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)


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

    def __repr__(self) -> str:
        return (
            f"StoredCredentials(client_id={self.client_id!r}, token={self.token!r}, "
            f"expires_at={self.expires_at!r}, user_id={self.user_id!r})"
        )

    def valid_at(self, now: float, margin: float = 0.0) -> bool:
        """Whether the token exists and does not expire within ``margin`` seconds of ``now``."""
        if not self.token:
            return False
        return self.expires_at is None or self.expires_at - margin > now


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
        """
        if self._home_checked:
            return
        self._home_checked = True
        try:
            self.home.mkdir(mode=0o700, parents=True)
        except FileExistsError:
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
        # mkdir(mode=) is filtered by the umask; set the mode outright on a folder we made.
        os.chmod(self.home, 0o700)

    def load(self) -> StoredCredentials | None:
        """The stored credentials, or None when there are none or the file is not usable."""
        raw = self._read()
        if raw is None:
            return None
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            # A damaged file must not lock the user out: start over, but say so.
            logger.warning("ignoring unreadable %s: it is not JSON", self.path)
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("client_id"), str):
            logger.warning("ignoring %s: it has no client_id", self.path)
            return None
        token = parsed.get("token")
        expires_at = parsed.get("expires_at")
        user_id = parsed.get("user_id")
        return StoredCredentials(
            client_id=parsed["client_id"],
            token=Secret(token) if isinstance(token, str) and token else None,
            expires_at=float(expires_at) if isinstance(expires_at, (int, float)) else None,
            user_id=user_id if isinstance(user_id, str) and user_id else None,
        )

    def _read(self) -> bytes | None:
        """The file's bytes, or None (with a warning when a file is there but refused)."""
        try:
            fd = _open_no_follow(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP or self.path.is_symlink():
                logger.warning(
                    "refusing %s: it is a symbolic link, which is not followed; a new "
                    "credentials file will replace the link",
                    self.path,
                )
            else:
                logger.warning("ignoring unreadable %s: %s", self.path, type(exc).__name__)
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                logger.warning("ignoring %s: it is not a regular file", self.path)
                return None
            if info.st_size > _MAX_FILE:
                logger.warning("ignoring %s: %d bytes is too large", self.path, info.st_size)
                return None
            # Windows reports every file as 0666: the check means something on POSIX only.
            if os.name == "posix" and info.st_mode & 0o077:
                # A token readable by other users can be used by them: fix it, and say so.
                logger.warning(
                    "%s was open to other users (mode %o); set it to 0600",
                    self.path,
                    stat.S_IMODE(info.st_mode),
                )
                os.fchmod(fd, 0o600)
            return os.read(fd, _MAX_FILE + 1)
        except OSError as exc:
            logger.warning("ignoring unreadable %s: %s", self.path, type(exc).__name__)
            return None
        finally:
            os.close(fd)

    def save(self, creds: StoredCredentials) -> None:
        """Replace the file atomically."""
        self.ensure_home()
        body = {
            "client_id": creds.client_id,
            "token": creds.token.reveal() if creds.token else None,
            "expires_at": creds.expires_at,
            "user_id": creds.user_id,
        }
        write_private(self.path, json.dumps(body, indent=2).encode("utf-8"))

    def delete(self) -> bool:
        """Remove the stored credentials. Returns whether there were any."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
