"""The NemoVideo API's facts, in one place: paths, request shapes, formats, limits, codes.

Pure data and small pure builders, no I/O. The SDK, the CLI, the emulator and the local engine
all import from here, so a fact about the remote API has exactly one copy. Every fact comes
from ``API-CONTRACT.md`` v3, which names its sources:

- [V] the vendor's skill, ``nemovideo/nemovideo_skills`` SKILL.md 1.9;
- [R] the vendor's API reference for the same API, ``references/api-reference.md`` in that
  repository's history (commit 7fe0b89): full request and reply examples;
- [S] the seed skill (identity headers);
- [A] Google ADK 2.13 (the chat endpoint is an ADK API server).

The vendor's TypeScript CLI (``nemovideo/nemovideo-tools``) talks to another backend of
theirs and is not a source. Where [V] and [R] disagree, both forms are read; where the
contract says "guess", only tolerant *reading* lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from nemo_sync.errors import ConfigurationError

# -- settings [V] -----------------------------------------------------------------------------

DEFAULT_API_URL: Final = "https://mega-api-prod.nemovideo.ai"
DEFAULT_WEB_URL: Final = "https://nemovideo.com"

ENV_TOKEN: Final = "NEMO_TOKEN"
ENV_API_URL: Final = "NEMO_API_URL"
ENV_API_URL_ALIAS: Final = "NEMO_BASE_URL"  # v1's name; the vendor's name wins when both are set
ENV_WEB_URL: Final = "NEMO_WEB_URL"
ENV_CLIENT_ID: Final = "NEMO_CLIENT_ID"
ENV_SKILL_SOURCE: Final = "SKILL_SOURCE"
ENV_SKILL_SOURCE_ALIAS: Final = "NEMO_PLATFORM"  # v1's name

# Shared with the vendor's skill and CLI: one machine is one anonymous client.
CLIENT_ID_DIR: Final = "nemovideo"
CLIENT_ID_FILE: Final = "client_id"

# -- headers [V][S] ---------------------------------------------------------------------------

HEADER_CLIENT_ID: Final = "X-Client-Id"
HEADER_SKILL_SOURCE: Final = "X-Skill-Source"
HEADER_SKILL_VERSION: Final = "X-Skill-Version"
HEADER_SKILL_PLATFORM: Final = "X-Skill-Platform"
SKILL_SOURCE: Final = "music-cog-online"
# The version of the skill whose frontmatter the service checks, not the SDK's version.
SKILL_VERSION: Final = "1.0.0"
# The platforms [V] detects from the install path; SKILL_SOURCE may say anything else
# (the vendor's own tools send claude_code, terminal...) and is sent as given [contract v3].
PLATFORMS: Final = ("clawhub", "cursor", "unknown")
UNKNOWN_PLATFORM: Final = "unknown"
MAX_PLATFORM_LENGTH: Final = 64  # longer, or with control characters, it is sent as "unknown"
ATTRIBUTION_HEADERS: Final = (HEADER_SKILL_SOURCE, HEADER_SKILL_VERSION, HEADER_SKILL_PLATFORM)

# -- paths ------------------------------------------------------------------------------------

APP_NAME: Final = "nemo_agent"
USER_ID: Final = "me"
ANONYMOUS_TOKEN_PATH: Final = "/api/auth/anonymous-token"
CREATE_SESSION_PATH: Final = f"/api/tasks/{USER_ID}/with-session/{APP_NAME}"
CLAIM_TOKEN_PATH: Final = "/api/auth/claim-token"
RUN_SSE_PATH: Final = "/run_sse"
CREDITS_PATH: Final = "/api/credits/balance/simple"
RENDER_PATH: Final = "/api/render/proxy/lambda"
CLAIM_LINK_PATH: Final = "/workspace/claim"
CLAIM_LINK_QUERY: Final = "ct"
# An anonymous user keeps their projects by registering through this link [V 1.9][R]:
# <NEMO_WEB_URL>/register?bind=<user_id>, the anon_... id from the token or session reply.
REGISTER_LINK_PATH: Final = "/register"
REGISTER_LINK_QUERY: Final = "bind"
ANONYMOUS_USER_PREFIX: Final = "anon_"


_SAFE_USER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def user_id_from(data: Mapping[str, Any]) -> str | None:
    """The ``user_id`` of a token or session reply [R], when it is a plain short id.

    It goes into a link (``?bind=``): anything else (a path, a URL, control characters, a
    huge string) is dropped rather than trusted.
    """
    for key in USER_ID_KEYS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and _SAFE_USER_ID.fullmatch(value):
            return value
    return None


def path_segment(value: str, what: str) -> str:
    """``value`` percent-encoded as one URL path segment (``/``, ``%``, ``?`` included).

    Ids come from replies, files and command lines: an id must never become a path.

    Raises:
        ConfigurationError: when the id is empty, ``.`` or ``..`` (no encoding makes those a
            safe segment: clients and proxies normalise them away).
    """
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise ConfigurationError(f"{what} must be a non-empty id, not {value!r}")
    return quote(value, safe="")


def upload_path(session_id: str) -> str:
    """``POST``: a file (multipart, field ``files``) or URLs (JSON) into a session [V]."""
    return f"/api/upload-video/{APP_NAME}/{USER_ID}/{path_segment(session_id, 'session_id')}"


def state_path(session_id: str) -> str:
    """``GET``: the session's latest state [V]."""
    return f"/api/state/{APP_NAME}/{USER_ID}/{path_segment(session_id, 'session_id')}/latest"


def render_status_path(render_id: str) -> str:
    """``GET``: poll a render job [V][R]."""
    return f"{RENDER_PATH}/{path_segment(render_id, 'render_id')}"


def render_download_path(render_id: str) -> str:
    """``GET`` on the API host, with the token: the download fallback [V]."""
    return f"/api/render/proxy/{path_segment(render_id, 'render_id')}/download"


def render_cancel_path(render_id: str) -> str:
    """``POST``, no body: cancel a render job [R]."""
    return f"{render_status_path(render_id)}/cancel"


# -- request bodies ---------------------------------------------------------------------------

UPLOAD_FILE_FIELD: Final = "files"  # curl -F "files=@path" [V]
URL_SOURCE_TYPE: Final = "url"
EXPORT_OUTPUT: Final[Mapping[str, str]] = {"format": "mp4", "quality": "high"}
RENDER_ID_PREFIX: Final = "render_"


def session_body(language: str) -> dict[str, Any]:
    """The create-session body [V]; ``language`` is an ISO code such as ``en`` or ``zh-CN`` [R]."""
    return {"task_name": "project", "language": language}


def claim_token_body(task_id: str, session_id: str) -> dict[str, Any]:
    """The claim-token body [V 1.9]."""
    return {"task_id": task_id, "session_id": session_id}


def chat_body(session_id: str, text: str) -> dict[str, Any]:
    """The ``/run_sse`` body, exactly as every vendor client sends it: nothing more [V][A]."""
    return {
        "app_name": APP_NAME,
        "user_id": USER_ID,
        "session_id": session_id,
        "new_message": {"parts": [{"text": text}]},
    }


def url_upload_body(urls: list[str]) -> dict[str, Any]:
    """The URL-upload body [V]."""
    return {"urls": list(urls), "source_type": URL_SOURCE_TYPE}


def export_body(render_id: str, session_id: str, draft: Mapping[str, Any]) -> dict[str, Any]:
    """The export body [V][R]. ``sessionId`` is camelCase: the API's one exception."""
    return {
        "id": render_id,
        "sessionId": session_id,
        "draft": draft,
        "output": dict(EXPORT_OUTPUT),
    }


# -- reading replies (tolerant) ---------------------------------------------------------------

SESSION_ID_KEYS: Final = ("session_id", "sessionId", "id")
TASK_ID_KEYS: Final = ("task_id", "taskId")
TOKEN_KEYS: Final = ("token", "access_token")
USER_ID_KEYS: Final = ("user_id", "userId")  # [R]: in the token and the session replies
CLAIM_TOKEN_KEYS: Final = ("claim_token", "claimToken")
# The upload reply [R]: files[] of {filename, file_type, cdn_url, duration (s), width, height,
# fps, hash}, with NO id. An id is kept when some reply has one, under any of these names.
MEDIA_ID_KEYS: Final = ("file_id", "media_id", "id", "asset_id", "fileId", "mediaId", "assetId")
MEDIA_URL_KEYS: Final = ("cdn_url", "cdnUrl", "url", "asset_url", "assetUrl")
MEDIA_NAME_KEYS: Final = ("filename", "name", "file_name", "fileName")
MEDIA_KIND_KEYS: Final = ("file_type", "fileType", "kind", "type")
MEDIA_LIST_KEYS: Final = ("files", "media", "items")  # where a reply lists its media
RENDER_ID_KEYS: Final = ("render_id", "renderId", "id")

# -- formats and limits [V] -------------------------------------------------------------------

VIDEO_FORMATS: Final = ("mp4", "mov", "avi", "webm", "mkv")
IMAGE_FORMATS: Final = ("jpg", "png", "gif", "webp")
AUDIO_FORMATS: Final = ("mp3", "wav", "m4a", "aac")
SUPPORTED_FORMATS: Final = (
    "mp4", "mov", "avi", "webm", "mkv", "jpg", "png", "gif", "webp", "mp3", "wav", "m4a", "aac",
)  # fmt: skip
FORMAT_ALIASES: Final[Mapping[str, str]] = {"jpeg": "jpg"}
MAX_UPLOAD_BYTES: Final = 500 * 1024 * 1024


def media_kind(extension: str) -> str:
    """``video``, ``audio``, ``image`` or ``unknown`` for an extension (no dot)."""
    ext = FORMAT_ALIASES.get(extension.lower(), extension.lower())
    if ext in VIDEO_FORMATS:
        return "video"
    if ext in AUDIO_FORMATS:
        return "audio"
    if ext in IMAGE_FORMATS:
        return "image"
    return "unknown"


# -- draft JSON [V] ---------------------------------------------------------------------------

TRACK_VIDEO: Final = 0
TRACK_AUDIO: Final = 1
TRACK_TEXT: Final = 7
TRACKS_KEY: Final = "t"
TRACK_TYPE_KEY: Final = "tt"
SEGMENTS_KEY: Final = "sg"
DURATION_KEY: Final = "d"
METADATA_KEY: Final = "m"


def is_exportable(draft: Any) -> bool:
    """Whether a wire draft has at least one track with a non-empty ``sg`` [V]."""
    if not isinstance(draft, Mapping):
        return False
    tracks = draft.get(TRACKS_KEY)
    if not isinstance(tracks, list):
        return False
    return any(
        isinstance(track, Mapping)
        and isinstance(track.get(SEGMENTS_KEY), list)
        and len(track[SEGMENTS_KEY]) > 0
        for track in tracks
    )


# -- state [V] --------------------------------------------------------------------------------

STATE_KEY: Final = "state"
STATE_DRAFT_KEY: Final = "draft"
STATE_MEDIA_KEY: Final = "video_infos"
STATE_CANVAS_KEY: Final = "canvas_config"
STATE_GENERATED_KEY: Final = "generated_media"

# -- errors [V] -------------------------------------------------------------------------------

CODE_OK: Final = 0
CODE_BAD_TOKEN: Final = 1001
CODE_SESSION_NOT_FOUND: Final = 1002
CODE_NO_CREDITS: Final = 2001
CODE_UNSUPPORTED_FILE: Final = 4001
CODE_FILE_TOO_LARGE: Final = 4002
# A rejected token [V][R]. (v2 added 1010 and 1011 from another backend's CLI: not this API's.)
TOKEN_REJECTED_CODES: Final = frozenset({1001})
STATUS_MISSING_CLIENT_ID: Final = 400
STATUS_TOKEN_REJECTED: Final = 401
STATUS_EXPORT_BLOCKED: Final = 402
STATUS_BODY_REJECTED: Final = 422
STATUS_RATE_LIMITED: Final = 429
RATE_LIMIT_DEFAULT_WAIT: Final = 30.0  # seconds, when a 429 has no Retry-After
ANONYMOUS_TOKEN_TTL: Final = 7 * 24 * 3600.0
CLAIM_TOKEN_TTL: Final = 7 * 24 * 3600.0  # expires_in when the reply does not say

# -- render jobs [V][R] -----------------------------------------------------------------------

RENDER_PENDING: Final = "pending"
RENDER_PROCESSING: Final = "processing"
RENDER_COMPLETED: Final = "completed"
RENDER_FAILED: Final = "failed"
# [R] has a cancel endpoint but names no status for a cancelled job (its list stops at
# completed / failed): "cancelled" is the emulator's word, and the SDK reads the US spelling
# as the same status.
RENDER_CANCELLED: Final = "cancelled"
RENDER_STATUS_ALIASES: Final[Mapping[str, str]] = {"canceled": RENDER_CANCELLED}
RENDER_STATUSES: Final = (
    RENDER_PENDING, RENDER_PROCESSING, RENDER_COMPLETED, RENDER_FAILED, RENDER_CANCELLED,
)  # fmt: skip
RENDER_DONE: Final = frozenset({RENDER_COMPLETED, RENDER_FAILED, RENDER_CANCELLED})
# Where a poll reply puts the video: [R] ``outputUrl``, [V] ``output.url``; the rest are
# older spellings read as fallbacks.
RENDER_URL_KEYS: Final = ("outputUrl", "output_url", "download_url", "downloadUrl", "url")
RENDER_CREATED_KEYS: Final = ("createdAt", "created_at")  # [R]: unix ms
RENDER_COMPLETED_KEYS: Final = ("completedAt", "completed_at")  # [R]: unix ms
RENDER_POLL_INTERVAL: Final = 30.0
RENDER_VENDOR_MAX_POLLS: Final = 10
# The download fallback is used when output.url is missing or answers one of these.
DOWNLOAD_FALLBACK_STATUSES: Final = frozenset({403, 404, 410})

# -- chat [V][A] ------------------------------------------------------------------------------

TURN_TIMEOUT: Final = 15 * 60.0  # a whole turn
IDLE_TIMEOUT: Final = 10 * 60.0  # heartbeats only for this long: timed out
STILL_WORKING_EVERY: Final = 2 * 60.0
TEMPORARY_ISSUE_PHRASE: Final = "I encountered a temporary issue"
# Disconnect recovery [V 3.6]: never re-send; wait, read the state, compare.
RECOVER_FIRST_WAIT: Final = 30.0
RECOVER_INTERVAL: Final = 60.0
RECOVER_MAX_UNCHANGED: Final = 5
