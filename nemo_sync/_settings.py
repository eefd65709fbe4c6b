"""Where settings come from: argument, then environment, then default."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from yarl import URL

from nemo_sync.errors import ConfigurationError

DEFAULT_BASE_URL = "https://mega-api-prod.nemovideo.ai"
SKILL_SOURCE = "music-cog-online"
# The version of the skill whose frontmatter the service checks, not the SDK's version.
SKILL_VERSION = "1.0.0"
PLATFORMS = ("clawhub", "cursor", "unknown")


def resolve_base_url(given: str | None) -> URL:
    """The API's base URL: argument, else NEMO_BASE_URL, else the production URL."""
    raw = given or os.environ.get("NEMO_BASE_URL") or DEFAULT_BASE_URL
    url = URL(raw.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url must be an http(s) URL with a host, like {DEFAULT_BASE_URL!r}; got {raw!r}"
        )
    return url


def resolve_home(given: str | os.PathLike[str] | None) -> Path:
    """The folder for credentials and the render job store.

    Argument, else NEMO_HOME, else the user data dir (``~/.local/share/nemo-sync`` on Linux).
    """
    raw = given if given is not None else os.environ.get("NEMO_HOME")
    if raw:
        return Path(raw).expanduser()
    return Path(platformdirs.user_data_dir("nemo-sync", appauthor=False))


def detect_platform(given: str | None, install_path: str = __file__) -> str:
    """The X-Skill-Platform value: argument, else NEMO_PLATFORM, else from the install path."""
    value = given or os.environ.get("NEMO_PLATFORM")
    if value:
        if value not in PLATFORMS:
            raise ConfigurationError(
                f"platform must be one of {', '.join(PLATFORMS)}; got {value!r}"
            )
        return value
    lowered = install_path.replace("\\", "/").lower()
    if "clawhub" in lowered:
        return "clawhub"
    if "/.cursor/" in lowered or "/cursor/" in lowered:
        return "cursor"
    return "unknown"
