"""Where settings come from: argument, then environment (the vendor's names first), then default.

The environment names are the vendor's [V] (``NEMO_API_URL``, ``NEMO_WEB_URL``,
``NEMO_CLIENT_ID``, ``SKILL_SOURCE``), so one shell configures the SDK, the vendor's skill and
the vendor's CLI alike; v1's ``NEMO_BASE_URL`` and ``NEMO_PLATFORM`` still work as aliases.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from yarl import URL

from nemo_sync._contract import (
    CLIENT_ID_DIR,
    CLIENT_ID_FILE,
    DEFAULT_API_URL,
    DEFAULT_WEB_URL,
    ENV_API_URL,
    ENV_API_URL_ALIAS,
    ENV_CLIENT_ID,
    ENV_SKILL_SOURCE,
    ENV_SKILL_SOURCE_ALIAS,
    ENV_WEB_URL,
    PLATFORMS,
)
from nemo_sync.errors import ConfigurationError


def _env(*names: str) -> str | None:
    """The first of ``names`` set to a non-blank value (the vendor's name comes first)."""
    for name in names:
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def _http_url(raw: str, what: str, example: str) -> URL:
    url = URL(raw.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{what} must be an http(s) URL with a host, like {example!r}")
    if url.user or url.password:
        # Credentials in a URL end up in logs and error messages.
        raise ConfigurationError(f"{what} must not hold a user name or password")
    return url


def resolve_base_url(given: str | None) -> URL:
    """The API's base URL: argument, else NEMO_API_URL (or NEMO_BASE_URL), else production."""
    raw = given or _env(ENV_API_URL, ENV_API_URL_ALIAS) or DEFAULT_API_URL
    return _http_url(raw, "base_url (NEMO_API_URL)", DEFAULT_API_URL)


def resolve_web_url(given: str | None) -> URL:
    """The web app's base URL (browser links): argument, else NEMO_WEB_URL, else nemovideo.com."""
    raw = given or _env(ENV_WEB_URL) or DEFAULT_WEB_URL
    return _http_url(raw, "web_url (NEMO_WEB_URL)", DEFAULT_WEB_URL)


def resolve_client_id(given: str | None) -> str | None:
    """The anonymous client id the user chose (argument, else NEMO_CLIENT_ID), if any.

    None means: use the machine's shared id (see :func:`shared_client_id_path`).
    """
    value = given if given is not None else _env(ENV_CLIENT_ID)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 128 or not value.isprintable():
        raise ConfigurationError(
            "client_id (NEMO_CLIENT_ID) must be a short printable id, such as a UUID"
        )
    return value


def shared_client_id_path() -> Path:
    """``$XDG_CONFIG_HOME/nemovideo/client_id`` (``~/.config`` by default) [V].

    The vendor's skill and CLI keep the machine's anonymous client id there: sharing it makes
    one machine one client, within the service's per-client and per-IP token quotas.
    """
    base = _env("XDG_CONFIG_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".config"
    return root / CLIENT_ID_DIR / CLIENT_ID_FILE


def resolve_home(given: str | os.PathLike[str] | None) -> Path:
    """The folder for credentials and the render job store.

    Argument, else NEMO_HOME, else the user data dir (``~/.local/share/nemo-sync`` on Linux).
    """
    raw = given if given is not None else os.environ.get("NEMO_HOME")
    if raw:
        return Path(raw).expanduser()
    return Path(platformdirs.user_data_dir("nemo-sync", appauthor=False))


def detect_platform(given: str | None, install_path: str = __file__) -> str:
    """The X-Skill-Platform value: argument, else SKILL_SOURCE (or NEMO_PLATFORM), else detected.

    Detection follows the vendor [V]: installed under ``~/.clawhub/`` is ``clawhub``, under
    ``~/.cursor/skills/`` is ``cursor``, anything else ``unknown``.
    """
    value = given or _env(ENV_SKILL_SOURCE, ENV_SKILL_SOURCE_ALIAS)
    if value:
        if value not in PLATFORMS:
            raise ConfigurationError(
                f"platform (SKILL_SOURCE) must be one of {', '.join(PLATFORMS)}; got {value!r}"
            )
        return value
    lowered = install_path.replace("\\", "/").lower()
    if "/.clawhub/" in lowered:
        return "clawhub"
    if "/.cursor/skills/" in lowered:
        return "cursor"
    return "unknown"
