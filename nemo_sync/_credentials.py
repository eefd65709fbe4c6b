"""The anonymous credentials file: client id, token and expiry, shared by every process."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._atomic import write_private

logger = logging.getLogger("nemo_sync")

CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = "credentials.lock"


@attrs.frozen(repr=False)
class StoredCredentials:
    """What ``credentials.json`` holds. The repr hides the token."""

    client_id: str
    token: str | None = None
    expires_at: float | None = None  # Unix time, seconds

    def __repr__(self) -> str:
        shown = "***" if self.token else None
        return (
            f"StoredCredentials(client_id={self.client_id!r}, token={shown!r}, "
            f"expires_at={self.expires_at!r})"
        )

    def valid_at(self, now: float, margin: float = 0.0) -> bool:
        """Whether the token exists and does not expire within ``margin`` seconds of ``now``."""
        if not self.token:
            return False
        return self.expires_at is None or self.expires_at - margin > now


class CredentialStore:
    """Reads and writes ``credentials.json`` under a home folder (file mode 0600)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / CREDENTIALS_FILE
        self.lock_path = home / LOCK_FILE

    def load(self) -> StoredCredentials | None:
        """The stored credentials, or None when there are none or the file is unreadable."""
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A damaged file must not lock the user out: start over, but say so.
            logger.warning("ignoring unreadable %s: %s", self.path, type(exc).__name__)
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("client_id"), str):
            logger.warning("ignoring %s: it has no client_id", self.path)
            return None
        token = raw.get("token")
        expires_at = raw.get("expires_at")
        return StoredCredentials(
            client_id=raw["client_id"],
            token=token if isinstance(token, str) and token else None,
            expires_at=float(expires_at) if isinstance(expires_at, (int, float)) else None,
        )

    def save(self, creds: StoredCredentials) -> None:
        """Replace the file atomically."""
        body = {"client_id": creds.client_id, "token": creds.token, "expires_at": creds.expires_at}
        write_private(self.path, json.dumps(body, indent=2).encode("utf-8"))

    def delete(self) -> bool:
        """Remove the stored credentials. Returns whether there were any."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
