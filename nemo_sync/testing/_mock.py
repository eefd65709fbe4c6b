"""One call that mocks a whole session on an ``aioresponses`` instance (no sockets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._contract import (
    ANONYMOUS_TOKEN_PATH,
    CREATE_SESSION_PATH,
    RENDER_PATH,
    RUN_SSE_PATH,
    render_download_path,
    render_status_path,
    state_path,
    upload_path,
)
from nemo_sync._settings import resolve_base_url
from nemo_sync.testing._replies import (
    ReplyStyle,
    media_item,
    render_status_reply,
    render_submitted_reply,
    session_reply,
    state_reply,
    token_reply,
    upload_reply,
)
from nemo_sync.testing._sse_bodies import adk_text, adk_tool_call, adk_tool_result, sse_body

if TYPE_CHECKING:
    from aioresponses import aioresponses

# An edit the agent made: one clip on the video track, the music under it.
SYNCED_DRAFT: Mapping[str, Any] = {
    "t": [
        {"tt": 0, "sg": [{"id": "seg_1", "n": "clip.mp4", "st": 0, "d": 4000}]},
        {"tt": 1, "sg": [{"id": "seg_2", "n": "song.mp3", "st": 0, "d": 4000, "v": 0.35}]},
    ],
    "d": 4000,
}
# Not a playable video: only the bytes a test compares.
FAKE_VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


@attrs.frozen
class HappyPath:
    """What :func:`mock_happy_path` registered, for a test's assertions.

    Attributes:
        base_url: The API the mocks answer for.
        session_id: The session the mocked service creates.
        render_id: The render job's id (the mocked service's: the SDK takes it).
        video: The bytes the download gives.
        video_url: Where the finished video is (another host: the SDK sends no token there).
        reply_text: What the agent says.
    """

    base_url: str
    session_id: str
    render_id: str
    video: bytes
    video_url: str
    reply_text: str


def mock_happy_path(
    m: aioresponses,
    *,
    base_url: str | None = None,
    uploads: Sequence[str] = ("song.mp3", "clip.mp4"),
    reply_text: str = "Done: the cuts follow the beat.",
    draft: Mapping[str, Any] = SYNCED_DRAFT,
    style: ReplyStyle = "reference",
    session_id: str = "sess-test",
    render_id: str = "render_test",
    video: bytes = FAKE_VIDEO,
    chat: bytes | Mapping[str, Any] | None = None,
) -> HappyPath:
    """Register a whole session on ``m``: token, session, one upload per name in
    ``uploads`` (in order), one chat turn saying ``reply_text``, the state (empty before the
    turn, ``draft`` after), an export, its poll (completed) and the download.

    ::

        from aioresponses import aioresponses
        from nemo_sync.testing import mock_happy_path

        with aioresponses() as m:
            path = mock_happy_path(m)
            ...  # code that uploads, sends, exports and downloads through NemoClient()

    Every route but the uploads repeats, so code may read the state or poll as often as it
    likes. ``style`` picks the vendor's documented reply shapes ([R] or [V]). ``chat``
    replaces the chat turn: an event-stream body (:func:`~nemo_sync.testing.sse_body`), or a
    JSON reply such as ``error_reply(2001, "no credits")`` for a turn the service refuses.
    """
    # The URL NemoClient() itself would use (NEMO_API_URL, else production), unless given.
    base = str(resolve_base_url(base_url)).rstrip("/")
    files = [media_item(name, style=style, duration=4.0) for name in uploads]
    finished = render_status_reply(render_id, style=style)
    output: str = (
        finished["data"]["outputUrl"] if style == "reference" else finished["output"]["url"]
    )
    m.post(f"{base}{ANONYMOUS_TOKEN_PATH}", payload=token_reply(), repeat=True)
    m.post(
        f"{base}{CREATE_SESSION_PATH}", payload=session_reply(session_id=session_id), repeat=True
    )
    for item in files:
        m.post(f"{base}{upload_path(session_id)}", payload=upload_reply(item, style=style))
    state = f"{base}{state_path(session_id)}"
    m.get(state, payload=state_reply(None, media=files, session_id=session_id))
    m.get(state, payload=state_reply(draft, media=files, session_id=session_id), repeat=True)
    if isinstance(chat, Mapping):
        m.post(f"{base}{RUN_SSE_PATH}", payload=dict(chat), repeat=True)
    else:
        stream = chat or sse_body(
            adk_tool_call("beat_sync", {"mode": "strong"}),
            adk_tool_result("beat_sync", {"status": "ok"}),
            adk_text(reply_text, turn_complete=True),
        )
        m.post(f"{base}{RUN_SSE_PATH}", body=stream, content_type="text/event-stream", repeat=True)
    m.post(
        f"{base}{RENDER_PATH}",
        payload=render_submitted_reply(render_id, style=style),
        repeat=True,
    )
    m.get(
        f"{base}{render_status_path(render_id)}",
        payload=finished,
        repeat=True,
    )
    m.get(output, body=video, content_type="video/mp4", repeat=True)
    m.get(
        f"{base}{render_download_path(render_id)}",
        body=video,
        content_type="video/mp4",
        repeat=True,
    )
    return HappyPath(
        base_url=base,
        session_id=session_id,
        render_id=render_id,
        video=video,
        video_url=output,
        reply_text=reply_text,
    )
