"""Small pieces every route uses: the success envelope, timestamps, the attribution check."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from nemo_sync._contract import ATTRIBUTION_HEADERS


def envelope(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A successful JSON reply in the ``{code, message, data}`` envelope [V][R]."""
    return web.json_response(
        {"code": 0, "message": "ok", "data": data}, status=status, headers=headers
    )


def iso(timestamp: float) -> str:
    """A UTC timestamp as ISO 8601 with ``Z``."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def attribution_problem(request: web.Request) -> str | None:
    """Which of the three ``X-Skill-*`` headers is missing, if any.

    Presence only: the vendor documents 402 for missing attribution [V CHANGELOG 1.5], and
    every skill sends its own name, version and platform, so no value is refused (contract v3).
    """
    headers = request.headers
    for name in ATTRIBUTION_HEADERS:
        if not headers.get(name, "").strip():
            return f"missing attribution header {name}"
    return None


def bearer_token(request: web.Request) -> str:
    """The bearer token from the ``Authorization`` header ("" when there is none).

    Only the header: a token in a URL is never accepted [V 1.9: "NEVER put $TOKEN in a URL"].
    """
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
