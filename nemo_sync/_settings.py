"""Where settings come from: argument, then environment (the vendor's names first), then default.

The environment names are the vendor's [V] (``NEMO_API_URL``, ``NEMO_WEB_URL``,
``NEMO_CLIENT_ID``, ``SKILL_SOURCE``), so one shell configures the SDK and the vendor's skill
alike; v1's ``NEMO_BASE_URL`` and ``NEMO_PLATFORM`` still work as aliases.
"""

from __future__ import annotations

import contextlib
import locale
import logging
import os
import re
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
    HEADER_SKILL_PLATFORM,
    MAX_PLATFORM_LENGTH,
    UNKNOWN_PLATFORM,
)
from nemo_sync.errors import ConfigurationError

logger = logging.getLogger("nemo_sync")


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


_HEADER_SAFE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def _header_safe(value: str) -> bool:
    """Whether ``value`` can go into a header as is: visible ASCII, short [contract v3]."""
    return len(value) <= MAX_PLATFORM_LENGTH and _HEADER_SAFE.fullmatch(value) is not None


def detect_platform(given: str | None, install_path: str = __file__) -> str:
    """The X-Skill-Platform value: argument, else SKILL_SOURCE (or NEMO_PLATFORM), else detected.

    Any value is sent as given: the vendor's own tools send values such as ``claude_code``
    and ``terminal``, and the service checks that the header is there, not what it says
    (contract v3). Detection follows the vendor [V]: installed under ``~/.clawhub/`` is
    ``clawhub``, under ``~/.cursor/skills/`` is ``cursor``, anything else ``unknown``.

    Raises:
        ConfigurationError: when ``given`` cannot be a header value. The same in the
            environment never stops a client from starting: it becomes ``unknown``, with a
            warning in the log.
    """
    if given is not None:
        if not _header_safe(given):
            raise ConfigurationError(
                f"platform must be at most {MAX_PLATFORM_LENGTH} visible ASCII characters "
                f"(it is sent as the {HEADER_SKILL_PLATFORM} header), like 'claude_code'"
            )
        return given
    value = _env(ENV_SKILL_SOURCE, ENV_SKILL_SOURCE_ALIAS)
    if value:
        if _header_safe(value):
            return value
        logger.warning(
            "SKILL_SOURCE cannot be sent as the %s header (control or non-ASCII characters, "
            "or over %d characters): sending 'unknown' instead",
            HEADER_SKILL_PLATFORM,
            MAX_PLATFORM_LENGTH,
        )
        return UNKNOWN_PLATFORM
    lowered = install_path.replace("\\", "/").lower()
    if "/.clawhub/" in lowered:
        return "clawhub"
    if "/.cursor/skills/" in lowered:
        return "cursor"
    return UNKNOWN_PLATFORM


# An ISO 639 language with an optional region or script (BCP 47's common subset): en, zh-CN.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,2}")
# Where the region changes the language a reader wants (simplified vs traditional Chinese).
_REGION_MATTERS = frozenset({"zh", "pt"})
DEFAULT_LANGUAGE = "en"


def check_language(language: str) -> str:
    """``language`` if it is an ISO code such as ``en`` or ``zh-CN`` [R].

    Raises:
        ConfigurationError: for anything else, before a request is sent.
    """
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        raise ConfigurationError(
            f"language must be an ISO code such as 'en', 'zh-CN', 'ja' or 'es'; got {language!r}"
        )
    return language


def locale_language() -> str:
    """The user's language as an ISO code [R]: from LC_ALL, LC_MESSAGES, LANG or LANGUAGE
    (POSIX order), else the process locale, else ``en``. ``zh_CN.UTF-8`` gives ``zh-CN``
    (the region kept where it changes the script), ``ja_JP`` gives ``ja``; ``C`` gives ``en``.
    """
    candidates = [os.environ.get(name, "") for name in ("LC_ALL", "LC_MESSAGES", "LANG")]
    candidates += os.environ.get("LANGUAGE", "").split(":")[:1]
    with contextlib.suppress(ValueError):  # an unparsable locale: nothing to learn from it
        candidates.append(locale.getlocale()[0] or "")
    for raw in candidates:
        code = raw.split(".", 1)[0].split("@", 1)[0].strip()
        if not code or code in ("C", "POSIX"):
            continue
        lang, _, region = code.replace("-", "_").partition("_")
        lang = lang.lower()
        if not re.fullmatch(r"[a-z]{2,3}", lang):
            continue
        if lang in _REGION_MATTERS and re.fullmatch(r"[A-Za-z]{2}", region):
            return f"{lang}-{region.upper()}"
        return lang
    return DEFAULT_LANGUAGE
