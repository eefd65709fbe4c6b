"""Reply bodies in the documented shapes, for mocking the API without sockets.

Each builder returns the whole JSON body a route answers with, in one of the vendor's two
documented styles: its API reference [R] (``"reference"``, what the emulator answers by
default) or SKILL.md 1.9 [V] (``"skill"``). Key names come from ``nemo_sync._contract``,
the same facts the SDK reads with, and ``tests/test_testing_builders.py`` parses every body
with the SDK's own readers, so these cannot drift from what the SDK understands.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from nemo_sync._contract import (
    CODE_OK,
    RENDER_COMPLETED,
    RENDER_FAILED,
    RENDER_PENDING,
    STATE_CANVAS_KEY,
    STATE_DRAFT_KEY,
    STATE_GENERATED_KEY,
    STATE_KEY,
    STATE_MEDIA_KEY,
    media_kind,
)

ReplyStyle = Literal["reference", "skill"]
"""``"reference"``: the vendor's API reference [R]; ``"skill"``: SKILL.md 1.9 [V]."""

CDN = "https://cdn.example.com"


def envelope(data: Any, *, code: int = CODE_OK, message: str = "ok") -> dict[str, Any]:
    """``{"code", "message", "data"}``: the envelope of every route but the render ones [V][R]."""
    return {"code": code, "message": message, "data": data}


def error_reply(code: int, message: str = "", data: Any = None) -> dict[str, Any]:
    """A failed call in the envelope: ``code`` 1001, 1002, 2001, 4001, 4002 ... [V][R].

    Pair it with the HTTP status the service uses (1001: 401, 1002: 404, 2001: 200) in the
    mock, e.g. ``m.get(url, status=200, payload=error_reply(2001, "no credits"))``.
    """
    return envelope(data, code=code, message=message or f"error {code}")


def refused_reply(error: str | Mapping[str, Any]) -> dict[str, Any]:
    """``{"success": false, "error": ...}``: a render route refusing, with HTTP 200 [R]."""
    return {"success": False, "error": error if isinstance(error, str) else dict(error)}


def token_reply(
    token: str = "nmv_usr_test",  # noqa: S107 - a fake token for mocks
    *,
    user_id: str = "anon_test",
    expires_at: str = "2099-01-01T00:00:00Z",
    credits: int = 100,
) -> dict[str, Any]:
    """``POST /api/auth/anonymous-token`` [R]."""
    return envelope(
        {"token": token, "user_id": user_id, "expires_at": expires_at, "credits": credits}
    )


def session_reply(
    session_id: str = "sess-test", *, task_id: str = "task-test", user_id: str = "anon_test"
) -> dict[str, Any]:
    """``POST /api/tasks/me/with-session/nemo_agent`` [V][R]."""
    return envelope({"task_id": task_id, "session_id": session_id, "user_id": user_id})


def credits_reply(
    available: int = 100, frozen: int = 0, *, total: int | None = None
) -> dict[str, Any]:
    """``GET /api/credits/balance/simple`` [V][R] (``total``: available + frozen)."""
    return envelope(
        {"available": available, "frozen": frozen, "total": available + frozen
         if total is None else total}
    )  # fmt: skip


def media_item(
    filename: str,
    *,
    style: ReplyStyle = "reference",
    cdn_url: str | None = None,
    file_type: str | None = None,
    duration: float | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    media_id: str | None = None,
) -> dict[str, Any]:
    """One media object, as the upload reply and the state's ``video_infos`` list them.

    ``"reference"`` [R]: ``filename``, ``file_type``, ``cdn_url``, ``duration`` (seconds),
    ``width``, ``height``, ``fps``, ``hash``, and no id. ``"skill"``: v2's reading of
    SKILL.md, with ``file_id``, ``url`` and ``duration_ms``.
    """
    kind = file_type or media_kind(filename.rsplit(".", 1)[-1] if "." in filename else "")
    url = cdn_url or f"{CDN}/media/{filename}"
    if style == "skill":
        item: dict[str, Any] = {
            "file_id": media_id or f"med_{zlib.crc32(filename.encode()):08x}",
            "filename": filename,
            "url": url,
            "kind": kind,
        }
        if duration is not None:
            item["duration_ms"] = round(duration * 1000)
        return item
    item = {"filename": filename, "file_type": kind, "cdn_url": url}
    if media_id is not None:
        item["file_id"] = media_id
    for key, value in (("duration", duration), ("width", width), ("height", height)):
        if value is not None:
            item[key] = value
    if fps is not None:
        item["fps"] = fps
    item["hash"] = f"hash-{filename}"
    return item


def upload_reply(
    *items: str | Mapping[str, Any], style: ReplyStyle = "reference"
) -> dict[str, Any]:
    """``POST /api/upload-video/nemo_agent/me/<sid>``: file names or :func:`media_item`\\ s.

    ``"reference"`` [R]: ``{"files": [...], "session_state_applied": true}`` always;
    ``"skill"``: one file is the object itself, several a ``files`` list.
    """
    files = [media_item(i, style=style) if isinstance(i, str) else dict(i) for i in items]
    if style == "skill":
        return envelope(files[0] if len(files) == 1 else {"files": files})
    return envelope({"files": files, "session_state_applied": True})


def state_reply(
    draft: Mapping[str, Any] | None = None,
    *,
    media: Sequence[Mapping[str, Any]] = (),
    session_id: str = "sess-test",
    task_id: str = "task-test",
) -> dict[str, Any]:
    """``GET /api/state/nemo_agent/me/<sid>/latest`` [V][R]: everything under ``data.state``."""
    return envelope(
        {
            "session_id": session_id,
            "task_id": task_id,
            STATE_KEY: {
                STATE_DRAFT_KEY: dict(draft) if draft is not None else {"t": []},
                STATE_MEDIA_KEY: [dict(m) for m in media],
                STATE_CANVAS_KEY: {"width": 1080, "height": 1920, "aspect_ratio": "9:16"},
                STATE_GENERATED_KEY: [],
            },
        }
    )


def render_submitted_reply(render_id: str, *, style: ReplyStyle = "reference") -> dict[str, Any]:
    """``POST /api/render/proxy/lambda`` accepted: [R] ``{"success": true, "data": {"id",
    "status": "pending", "progress"}}``; ``"skill"``: ``data: {"render_id", "status"}``."""
    if style == "skill":
        return envelope({"render_id": render_id, "status": RENDER_PENDING})
    return {"success": True, "data": {"id": render_id, "status": RENDER_PENDING, "progress": 5}}


def render_status_reply(
    render_id: str,
    status: str = RENDER_COMPLETED,
    *,
    style: ReplyStyle = "reference",
    progress: int | None = None,
    output_url: str | None = None,
    error: str | None = None,
    created_at_ms: int = 1773423613616,
) -> dict[str, Any]:
    """``GET /api/render/proxy/lambda/<id>``.

    [R]: ``{"success": true, "data": {"id", "status", "progress", "outputUrl", "createdAt",
    "completedAt"}}`` ("inside data, NOT top-level"); ``"skill"`` [V]: a bare object with a
    top-level ``status`` and ``output.url``. A completed job gets
    ``https://cdn.example.com/render-result/<id>.mp4`` unless ``output_url`` says otherwise.
    """
    done = status in (RENDER_COMPLETED, RENDER_FAILED)
    if progress is None:
        progress = 100 if status == RENDER_COMPLETED else 0
    url = output_url or f"{CDN}/render-result/{render_id}.mp4"
    if style == "skill":
        body: dict[str, Any] = {"id": render_id, "status": status, "progress": progress}
        if status == RENDER_COMPLETED:
            body["output"] = {"url": url}
        if error is not None:
            body["error"] = error
        return body
    data: dict[str, Any] = {
        "id": render_id,
        "status": status,
        "progress": progress,
        "createdAt": created_at_ms,
    }
    if status == RENDER_COMPLETED:
        data["outputUrl"] = url
    if done:
        data["completedAt"] = created_at_ms + 27_606
    if error is not None:
        data["error"] = error
    return {"success": True, "data": data}
