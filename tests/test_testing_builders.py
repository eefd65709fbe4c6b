"""nemo_sync.testing's reply builders parse with the SDK's own readers, in both styles.

If a builder drifted from what the SDK reads (a key renamed in ``_contract``, a shape the
readers stopped accepting), these fail: the builders are what users mock the API with.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import nemo_sync
from nemo_sync import testing
from nemo_sync._envelope import parse_reply
from nemo_sync._events import from_sse
from nemo_sync._models import Credits
from nemo_sync._render_job import RenderResult
from nemo_sync._session_state import SessionState
from nemo_sync._sse import SSEDecoder
from nemo_sync._upload import media_from_reply

STYLES = ["reference", "skill"]


def read(body: dict[str, Any], status: int = 200) -> Any:
    """What the transport hands the SDK's readers: the body as sent, through the envelope."""
    return parse_reply(status=status, headers={}, body=json.dumps(body).encode(), endpoint="X")


@pytest.mark.parametrize("style", STYLES)
def test_upload_and_state_replies_read_as_media(style: Any) -> None:
    item = testing.media_item("clip.mp4", style=style, duration=4.0, width=1920, height=1080)
    [media] = media_from_reply(read(testing.upload_reply(item, style=style)), "X")
    assert (media.name, media.kind, media.duration_ms) == ("clip.mp4", "video", 4000)
    assert media.url == "https://cdn.example.com/media/clip.mp4"
    assert (media.id is None) == (style == "reference")  # [R] has no id
    state = SessionState.from_data(read(testing.state_reply(media=[item])), "X")
    assert state.media == (media,)
    assert not state.exportable


@pytest.mark.parametrize("style", STYLES)
def test_render_replies_read_as_results(style: Any) -> None:
    submitted = RenderResult.from_data(read(testing.render_submitted_reply("r1", style=style)), "X")
    assert submitted.status == "pending"
    done = RenderResult.from_data(read(testing.render_status_reply("r1", style=style)), "X")
    assert done.ok
    assert done.download_url == "https://cdn.example.com/render-result/r1.mp4"
    failed = testing.render_status_reply("r1", "failed", style=style, error="codec")
    assert RenderResult.from_data(read(failed), "X").error == "codec"


def test_account_replies_read() -> None:
    assert Credits.from_data(read(testing.credits_reply(7, 3)), "X") == Credits(7, 3, 10)
    assert read(testing.token_reply())["user_id"] == "anon_test"
    assert read(testing.session_reply("s9"))["session_id"] == "s9"


def test_error_builders_raise_the_typed_errors() -> None:
    with pytest.raises(nemo_sync.InsufficientCreditsError):
        read(testing.error_reply(2001, "no credits"))
    with pytest.raises(nemo_sync.SessionNotFoundError):
        read(testing.error_reply(1002), status=404)
    with pytest.raises(nemo_sync.RequestRefusedError, match="duplicate id"):
        read(testing.refused_reply("duplicate id"))


def test_sse_bodies_decode_to_the_typed_events() -> None:
    body = testing.sse_body(
        testing.heartbeat("comment"),
        testing.adk_tool_call("beat_sync", {"mode": "bar"}),
        testing.adk_tool_result("beat_sync", {"status": "ok"}),
        testing.simple_tool_call("add_title", {"text": "Hi"}),
        testing.simple_tool_result("add_title", {"ok": True}),
        testing.heartbeat("empty"),
        testing.heartbeat("named"),
        testing.heartbeat("json"),
        testing.adk_text("Synced "),
        testing.simple_text("and titled."),
    )
    decoder = SSEDecoder()
    events = [e for item in decoder.feed(body) for e in from_sse(item)]
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "HeartbeatEvent",
        "ToolCallEvent",
        "ToolResultEvent",
        "ToolCallEvent",
        "ToolResultEvent",
        "HeartbeatEvent",
        "HeartbeatEvent",
        "HeartbeatEvent",
        "TextEvent",
        "TextEvent",
    ]
    texts = [e.text for e in events if isinstance(e, nemo_sync.TextEvent)]
    assert texts == ["Synced ", "and titled."]


def test_the_agent_error_frame_is_an_agent_error() -> None:
    [item] = SSEDecoder().feed(testing.adk_error("quota exhausted"))
    with pytest.raises(nemo_sync.AgentError, match="quota exhausted"):
        from_sse(item)
