"""Contract v3, at the byte level: every request shape the SDK sends, every reply shape it reads.

Each case cites its source in ``API-CONTRACT.md`` v3: [V] the vendor's skill (SKILL.md 1.9),
[R] the vendor's API reference (``references/api-reference.md``, commit 7fe0b89), [S] the seed
skill, [A] Google ADK 2.13. The server here is :class:`tests.scripted.ScriptedServer`: it sends
exactly the bytes a case scripts and records exactly the bytes the SDK sent. The last part runs
the whole workflow on the emulator in both reply styles (reference and skill).
"""

from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from tests.render_doubles import BytesRenderBackend
from tests.scripted import ScriptedServer, envelope, raw

SID = "s-1"
TID = "t-1"
TOKEN = ("POST", "/api/auth/anonymous-token")
SESSION = ("POST", "/api/tasks/me/with-session/nemo_agent")
CLAIM = ("POST", "/api/auth/claim-token")
RUN = ("POST", "/run_sse")
UPLOAD = ("POST", f"/api/upload-video/nemo_agent/me/{SID}")
STATE = ("GET", f"/api/state/nemo_agent/me/{SID}/latest")
RENDER = ("POST", "/api/render/proxy/lambda")
CREDITS = ("GET", "/api/credits/balance/simple")
# A draft with keys the SDK does not model: an export must send them back unchanged [V].
DRAFT = {
    "t": [
        {"tt": 0, "sg": [{"n": "city", "st": 0, "d": 10000, "fx": {"blur": 2}}], "zz": 1},
        {"tt": 1, "sg": [{"n": "Lo-fi", "st": 0, "d": 10000, "v": 0.35}]},
    ],
    "d": 10000,
    "m": {"aspect": "9:16", "unknown_meta": [1, 2]},
    "canvas_extra": True,
}


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def bare(obj: Any, status: int = 200) -> web.Response:
    """A reply without the envelope (the render status is one [V])."""
    return web.json_response(obj, status=status)


def state_reply(draft: Any = DRAFT, **more: Any) -> web.Response:
    """The state as [V] documents it: everything under ``data.state``."""
    return envelope({"state": {"draft": draft, **more}})


def body_json(seen: Any) -> Any:
    return json.loads(seen.body)


# -- identity and attribution [V][S] -------------------------------------------------------


async def test_the_token_call_sends_the_client_id_and_attribution_and_no_body(
    api: ScriptedServer,
) -> None:
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    token_call, credits_call = api.seen
    assert token_call.body == b""
    assert "Authorization" not in token_call.headers
    assert re.fullmatch(r"[0-9a-f-]{36}", token_call.headers["X-Client-Id"])
    for call in (token_call, credits_call):
        assert call.headers["X-Skill-Source"] == "music-cog-online"
        assert call.headers["X-Skill-Version"] == "1.0.0"
        assert call.headers["X-Skill-Platform"] == "unknown"
    assert credits_call.headers["Authorization"] == "Bearer tok-1"


async def test_the_machine_client_id_file_is_shared_with_the_vendor_tools(
    api: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[V]: ~/.config/nemovideo/client_id (XDG_CONFIG_HOME honoured), reused, else written."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "xdg" / "nemovideo" / "client_id"
    shared.parent.mkdir(parents=True)
    shared.write_text("vendor-made-id\n")
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert api.seen[0].headers["X-Client-Id"] == "vendor-made-id"
    assert shared.read_text() == "vendor-made-id\n"  # read, never rewritten


async def test_a_missing_client_id_file_is_made_for_everyone(
    api: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    made = (tmp_path / "xdg" / "nemovideo" / "client_id").read_text().strip()
    assert made == api.seen[0].headers["X-Client-Id"]


async def test_a_stored_token_of_another_client_id_is_not_used(
    api: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "xdg" / "nemovideo" / "client_id"
    shared.parent.mkdir(parents=True)
    shared.write_text("machine-id")
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_text(
        json.dumps({"client_id": "old-sdk-id", "token": "old-token", "expires_at": 4e9})
    )
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert api.seen[0].headers["X-Client-Id"] == "machine-id"
    assert api.seen[1].headers["Authorization"] == "Bearer tok-1"


async def test_vendor_setting_names_win_over_the_v1_aliases(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[V]: NEMO_API_URL, NEMO_WEB_URL, NEMO_CLIENT_ID, SKILL_SOURCE."""
    monkeypatch.setenv("NEMO_API_URL", api.url)
    monkeypatch.setenv("NEMO_BASE_URL", "http://127.0.0.1:9")  # v1 alias: loses
    monkeypatch.setenv("NEMO_WEB_URL", "https://web.example")
    monkeypatch.setenv("NEMO_CLIENT_ID", "env-client")
    monkeypatch.setenv("SKILL_SOURCE", "cursor")
    monkeypatch.setenv("NEMO_PLATFORM", "clawhub")  # v1 alias: loses
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient() as nemo:
        await nemo.credits()
        assert nemo.web_url == "https://web.example"
    assert api.seen[0].headers["X-Client-Id"] == "env-client"
    assert api.seen[1].headers["X-Skill-Platform"] == "cursor"


async def test_the_v1_names_still_work_alone(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEMO_BASE_URL", api.url)
    monkeypatch.setenv("NEMO_PLATFORM", "clawhub")
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient() as nemo:
        await nemo.credits()
        assert nemo.web_url == "https://nemovideo.com"
    assert api.seen[1].headers["X-Skill-Platform"] == "clawhub"


@pytest.mark.parametrize("value", ["claude_code", "terminal", "my-own-tool"])
async def test_any_skill_source_is_sent_as_given(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """[V] SKILL_SOURCE is the X-Skill-Platform value; the vendor's own tools send values such
    as claude_code and terminal (contract v3): the client starts and sends it unchanged."""
    monkeypatch.setenv("SKILL_SOURCE", value)
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.credits()
    assert api.seen[0].headers["X-Skill-Platform"] == value


@pytest.mark.parametrize("value", ["bad\x1bvalue", "x" * 65, "tab\there", "caf\u00e9"])
async def test_a_skill_source_that_cannot_be_a_header_becomes_unknown_with_a_warning(
    api: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    value: str,
) -> None:
    monkeypatch.setenv("SKILL_SOURCE", value)
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}))
    with caplog.at_level("WARNING", logger="nemo_sync"):
        async with NemoClient(base_url=api.url, token="t") as nemo:
            await nemo.credits()
    assert api.seen[0].headers["X-Skill-Platform"] == "unknown"
    assert any("SKILL_SOURCE" in r.getMessage() for r in caplog.records)


def test_a_platform_argument_that_cannot_be_a_header_is_a_configuration_error() -> None:
    with pytest.raises(nemo_sync.ConfigurationError, match="platform"):
        NemoClient(base_url="http://127.0.0.1:9", token="t", platform="a\nb")


# -- session and browser link [V] ----------------------------------------------------------


async def test_create_session_sends_the_vendor_body_and_keeps_all_three_ids(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[V] the body; [R] the reply: task_id, session_id and user_id."""
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    api.reply(
        *SESSION, lambda: envelope({"task_id": TID, "session_id": SID, "user_id": "anon_abc123"})
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        session = await nemo.create_session()
    assert api.seen[0].body == b'{"task_name": "project", "language": "en"}'
    assert (session.id, session.task_id, session.user_id) == (SID, TID, "anon_abc123")


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "zh_TW.UTF-8"}, "zh-TW"),
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LANG": "es_ES@euro"}, "es"),
        ({"LANG": "fr_FR", "LC_ALL": "de_DE.UTF-8"}, "de"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({}, "en"),
    ],
)
async def test_the_session_language_is_the_users_locale_as_an_iso_code(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], language: str
) -> None:
    """[R]: "language: ISO code matching the user's language (zh-CN, en, ja, es, etc.)"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api.reply(*SESSION, lambda: envelope({"task_id": TID, "session_id": SID}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.create_session()
    assert body_json(api.seen[0])["language"] == language


async def test_the_session_language_can_be_set_and_is_checked_before_sending(
    api: ScriptedServer,
) -> None:
    api.reply(*SESSION, lambda: envelope({"task_id": TID, "session_id": SID}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.create_session(language="pt-BR")
        with pytest.raises(nemo_sync.ConfigurationError, match="language"):
            await nemo.create_session(language="english please")
    assert [body_json(s)["language"] for s in api.seen] == ["pt-BR"]


async def test_claim_url_is_a_web_link_with_a_claim_token_never_the_bearer(
    api: ScriptedServer,
) -> None:
    api.reply(*SESSION, lambda: envelope({"task_id": TID, "session_id": SID}))
    api.reply(*CLAIM, lambda: envelope({"claim_token": "clm_abc", "expires_in": 604800}))
    async with NemoClient(base_url=api.url, web_url="https://app.example/", token="secret") as n:
        session = await n.create_session()
        link = await session.claim_url()
        again = await session.claim_url()
    assert link == again == "https://app.example/workspace/claim?ct=clm_abc"
    assert "secret" not in link
    assert api.count(*CLAIM) == 1  # cached until it expires
    claim = next(s for s in api.seen if s.path == CLAIM[1])
    assert body_json(claim) == {"task_id": TID, "session_id": SID}
    assert claim.headers["Authorization"] == "Bearer secret"


async def test_claim_url_is_renewed_when_the_claim_token_expires(api: ScriptedServer) -> None:
    api.reply(
        *CLAIM,
        lambda: envelope({"claim_token": "clm_1", "expires_in": 1}),
        lambda: envelope({"claim_token": "clm_2", "expires_in": 604800}),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        session = nemo.session(SID, task_id=TID)
        first = await session.claim_url()
        second = await session.claim_url()
    assert first.endswith("ct=clm_1")
    assert second.endswith("ct=clm_2")


async def test_claim_url_without_a_task_id_says_how_to_give_one(api: ScriptedServer) -> None:
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.ConfigurationError, match="task_id="):
            await nemo.session(SID).claim_url()
    assert api.seen == []


# -- chat [V][A] ---------------------------------------------------------------------------


def _sse_reply(*events: dict[str, Any]) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write_eof()
        return response

    return handler


async def test_the_chat_body_is_exactly_the_vendor_body(api: ScriptedServer) -> None:
    api.reply(*STATE, state_reply)
    api.on(*RUN, _sse_reply({"content": {"parts": [{"text": "Done."}]}, "author": "a"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.session(SID).send("同步音乐 to my cuts")
    run = next(s for s in api.seen if s.path == RUN[1])
    assert body_json(run) == {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": SID,
        "new_message": {"parts": [{"text": "同步音乐 to my cuts"}]},
    }
    assert run.headers["Accept"] == "text/event-stream"
    assert result.text == "Done."


async def test_a_trailing_temporary_issue_after_normal_text_is_left_out(
    api: ScriptedServer,
) -> None:
    """[V]: ignore a trailing "I encountered a temporary issue" when earlier text was normal."""
    api.reply(*STATE, state_reply)
    api.on(
        *RUN,
        _sse_reply(
            {"content": {"parts": [{"text": "Synced the music to 12 cuts."}]}},
            {"content": {"parts": [{"text": "I encountered a temporary issue. Try again."}]}},
        ),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.session(SID).send("sync")
    assert result.text == "Synced the music to 12 cuts."
    assert len([e for e in result.events if isinstance(e, nemo_sync.TextEvent)]) == 2


async def test_a_temporary_issue_alone_is_the_reply(api: ScriptedServer) -> None:
    api.reply(*STATE, state_reply)
    api.on(*RUN, _sse_reply({"content": {"parts": [{"text": "I encountered a temporary issue."}]}}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.session(SID).send("sync")
    assert result.text == "I encountered a temporary issue."


async def test_ten_minutes_of_heartbeats_only_is_a_timeout_and_nothing_is_resent(
    api: ScriptedServer,
) -> None:
    """[V]: heartbeats only for idle_timeout -> timed out (scaled down to 0.6 s here)."""

    async def heartbeats(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"content": {"parts": [{"text": "On it"}]}}\n\n')
        for _ in range(100):
            await response.write(b": heartbeat\n\n")
            await __import__("asyncio").sleep(0.05)
        return response

    api.on(*RUN, heartbeats)
    async with NemoClient(base_url=api.url, token="t") as nemo:
        turn = nemo.session(SID).chat("sync", idle_timeout=0.6, track_changes=False)
        with pytest.raises(nemo_sync.APITimeoutError, match="nothing but heartbeats"):
            async with turn:
                async for _ in turn:
                    pass
    assert api.count(*RUN) == 1


def _dropped_stream() -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(
            b'data: {"content": {"parts": [{"text": "Working"}]}, "partial": true}\n\n'
        )
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


EDITED = {**DRAFT, "t": [*DRAFT["t"], {"tt": 7, "sg": [{"n": "Urban Dreams", "st": 0, "d": 3000}]}]}


async def test_send_recovers_a_dropped_stream_from_the_state(
    api: ScriptedServer, waits: list[float]
) -> None:
    """[V 3.6]: no re-send; wait 30 s, read; unchanged -> every 60 s; changed -> report it."""
    api.reply(
        *STATE,
        state_reply,  # before the turn
        state_reply,  # first recovery read: not yet
        lambda: state_reply(EDITED),  # second: the agent finished
    )
    api.on(*RUN, _dropped_stream())
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.session(SID).send("add a title")
    assert result.recovered
    assert [c.kind for c in result.changes] == ["track_added"]
    assert waits == [30.0, 60.0]
    assert api.count(*RUN) == 1


async def test_recovery_gives_up_after_five_unchanged_reads(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.reply(*STATE, state_reply)
    api.on(*RUN, _dropped_stream())
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.StreamInterruptedError, match="did not change in 5 reads"):
            await nemo.session(SID).send("add a title")
    assert waits == [30.0, 60.0, 60.0, 60.0, 60.0]
    assert api.count(*STATE) == 1 + 5
    assert api.count(*RUN) == 1


async def test_send_without_recovery_raises_at_once(api: ScriptedServer) -> None:
    api.reply(*STATE, state_reply)
    api.on(*RUN, _dropped_stream())
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.StreamInterruptedError, match="NOT sent again"):
            await nemo.session(SID).send("add a title", recover=False)
    assert api.count(*STATE) == 1


# -- uploads [V] ---------------------------------------------------------------------------


async def test_a_file_goes_in_the_multipart_field_files(
    api: ScriptedServer, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    api.reply(*UPLOAD, lambda: envelope({"file_id": "f1", "filename": "clip.mp4", "url": "u"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        media = await nemo.session(SID).upload(clip)
    body = api.seen[0].body
    assert b'Content-Disposition: form-data; name="files"; filename="clip.mp4"\r\n' in body
    assert b'name="file";' not in body
    assert api.seen[0].headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert (media.id, media.name, media.url, media.kind) == ("f1", "clip.mp4", "u", "video")


async def test_urls_are_sent_with_source_type_url(api: ScriptedServer) -> None:
    api.reply(*UPLOAD, lambda: envelope({"files": [{"file_id": "f1"}, {"file_id": "f2"}]}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        media = await nemo.session(SID).upload_urls(
            ["https://cdn.example/a.mp4", "https://b.example/x"]
        )
    assert body_json(api.seen[0]) == {
        "urls": ["https://cdn.example/a.mp4", "https://b.example/x"],
        "source_type": "url",
    }
    assert [m.id for m in media] == ["f1", "f2"]


@pytest.mark.parametrize(
    ("reply", "ids"),
    [
        ({"file_id": "a", "filename": "c.mp4", "url": "https://x/c.mp4"}, ["a"]),  # [V] newer
        ({"media_id": "a"}, ["a"]),
        ({"asset_id": "a", "asset_url": "https://x/a"}, ["a"]),
        ({"files": [{"id": "a"}, {"file_id": "b"}]}, ["a", "b"]),
        ([{"file_id": "a"}, {"media_id": "b"}], ["a", "b"]),
        ({"media": {"id": "a"}}, ["a"]),
    ],
)
async def test_every_upload_reply_shape_is_read(
    api: ScriptedServer, reply: Any, ids: list[str]
) -> None:
    """[V] calls the upload reply a guess: object, list or {"files": [...]}, any id name."""
    api.reply(*UPLOAD, lambda: envelope(reply))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        media = await nemo.session(SID).upload_urls(["https://cdn.example/a.mp4"])
    assert [m.id for m in media] == ids


# [R] (and the SKILL.md of commit 79e38a5): the upload reply has no id.
REFERENCE_UPLOAD = {
    "files": [
        {
            "filename": "video.mp4",
            "file_type": "video",
            "cdn_url": "https://cdn.example.com/videos/xxx/video.mp4",
            "duration": 30.5,
            "width": 1920,
            "height": 1080,
            "fps": 30,
            "hash": "abc123",
        }
    ],
    "session_state_applied": True,
}


async def test_the_reference_upload_reply_without_an_id_is_a_success(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R]: files[] with filename, file_type, cdn_url, duration (s), width, height, fps, hash."""
    clip = tmp_path / "video.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    api.reply(*UPLOAD, lambda: envelope(REFERENCE_UPLOAD))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        media = await nemo.session(SID).upload(clip)
    assert media.id is None
    assert media.name == "video.mp4"
    assert media.kind == "video"
    assert media.url == "https://cdn.example.com/videos/xxx/video.mp4"
    assert media.key == media.url  # what a draft segment refers to it by
    assert media.duration_ms == 30500
    assert (media.width, media.height, media.fps, media.hash) == (1920, 1080, 30, "abc123")
    assert media.raw["hash"] == "abc123"
    assert api.count(*UPLOAD) == 1  # read as a success: nothing invites a second upload


async def test_several_files_in_one_reference_reply_are_matched_to_the_upload(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R] allows several files per request: the one named like the upload is ours."""
    clip = tmp_path / "b.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    files = [
        {"filename": "a.mp4", "file_type": "video", "cdn_url": "https://cdn.example/a.mp4"},
        {"filename": "b.mp4", "file_type": "video", "cdn_url": "https://cdn.example/b.mp4"},
    ]
    api.reply(*UPLOAD, lambda: envelope({"files": files, "session_state_applied": True}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        media = await nemo.session(SID).upload(clip)
    assert media.url == "https://cdn.example/b.mp4"


@pytest.mark.parametrize(
    "reply",
    [
        {"files": []},
        {"files": [{"size": 3}]},  # nothing that names the media
        {"session_state_applied": True},
        [],
    ],
)
async def test_an_upload_reply_that_names_no_media_is_a_typed_error(
    api: ScriptedServer, reply: Any
) -> None:
    api.reply(*UPLOAD, lambda: envelope(reply))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIResponseError, match="POST /api/upload-video"):
            await nemo.session(SID).upload_urls(["https://cdn.example/a.mp4"])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"file_type": "audio", "duration": "x"}, ("audio", None, None, None)),
        ({"width": -5, "height": 10**9, "fps": float("inf")}, ("video", None, None, None)),
        ({"width": True, "height": 720.0, "fps": 29.97}, ("video", None, 720, 29.97)),
        ({"fileType": "image", "width": 640}, ("image", 640, None, None)),
    ],
)
def test_media_facts_from_the_network_are_checked(
    fields: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    media = nemo_sync.Media.from_data(
        {"filename": "v.mp4", "cdn_url": "https://cdn.example/v.mp4", **fields}, "POST /upload"
    )
    assert (media.kind, media.width, media.height, media.fps) == expected


# -- state [V] -----------------------------------------------------------------------------


@pytest.mark.parametrize("enveloped", [True, False])
async def test_state_is_read_from_data_state(api: ScriptedServer, enveloped: bool) -> None:
    data = {
        "state": {
            "draft": DRAFT,
            "video_infos": [{"file_id": "f1", "filename": "city.mp4", "url": "https://x/1"}],
            "canvas_config": {"width": 1080, "height": 1920},
            "generated_media": [{"id": "g1"}],
            "other": 1,
        }
    }
    api.reply(*STATE, lambda: envelope(data) if enveloped else bare(data))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        state = await nemo.session(SID).state()
    assert [m.id for m in state.media] == ["f1"]
    assert state.media[0].kind == "video"
    assert state.canvas_config == {"width": 1080, "height": 1920}
    assert state.generated_media == ({"id": "g1"},)
    assert state.draft_wire == DRAFT
    assert state.exportable
    assert state.draft.summary().startswith("Timeline (2 tracks)")


async def test_a_state_whose_draft_is_not_an_object_names_the_endpoint(
    api: ScriptedServer,
) -> None:
    api.reply(*STATE, lambda: state_reply([1, 2]))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIResponseError, match=r"GET /api/state.*data\.state\.draft"):
            await nemo.session(SID).state()


# -- export, poll, download [V][R] ---------------------------------------------------------


async def test_export_sends_the_vendor_body_with_the_service_draft_unchanged(
    api: ScriptedServer,
) -> None:
    api.reply(*STATE, state_reply)
    api.reply(*RENDER, lambda: envelope({"render_id": "r-server", "status": "pending"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        job = await nemo.session(SID).export()
    sent = body_json(api.seen[-1])
    assert set(sent) == {"id", "sessionId", "draft", "output"}
    assert re.fullmatch(r"render_\d{13}", sent["id"])
    assert sent["sessionId"] == SID
    assert sent["draft"] == DRAFT  # unknown keys and all, no model round trip
    assert sent["output"] == {"format": "mp4", "quality": "high"}
    assert job.id == "r-server"
    assert api.count(*CREDITS) == 0  # export is free: no credit pre-check


async def test_export_falls_back_to_the_id_it_sent(api: ScriptedServer) -> None:
    """[R]: the id is ``data.id``, else ``render_id``, else the ``id`` sent."""
    api.reply(*STATE, state_reply)
    api.reply(*RENDER, lambda: envelope({"status": "pending"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        job = await nemo.session(SID).export()
    assert job.id == body_json(api.seen[-1])["id"]


async def test_a_failed_submission_is_retried_once_with_a_new_id(api: ScriptedServer) -> None:
    api.reply(*STATE, state_reply)
    api.reply(
        *RENDER,
        lambda: envelope(None, code=500, message="lambda busy", status=500),
        lambda: envelope({"status": "pending"}),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        job = await nemo.session(SID).export()
        records = {r.id: r.status for r in await nemo.jobs()}
    first, second = (body_json(s)["id"] for s in api.seen if s.path == RENDER[1])
    assert first != second
    assert job.id == second
    assert records[first] == "submitted"  # it may have reached the service: kept, not lost


async def test_a_submission_failing_twice_raises(api: ScriptedServer) -> None:
    api.reply(*STATE, state_reply)
    api.reply(*RENDER, lambda: envelope(None, code=500, message="down", status=500))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.ServerError):
            await nemo.session(SID).export()
    assert api.count(*RENDER) == 2


async def test_a_422_detail_reaches_the_message_and_is_not_retried(api: ScriptedServer) -> None:
    detail = {
        "detail": [
            {"type": "missing", "loc": ["body", "sessionId"], "msg": "Field required"},
            {"type": "missing", "loc": ["body", "output"], "msg": "Field required"},
        ]
    }
    api.reply(*STATE, state_reply)
    api.reply(*RENDER, lambda: bare(detail, status=422))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIError) as caught:
            await nemo.session(SID).export()
    message = str(caught.value)
    assert "body.sessionId: Field required" in message
    assert "body.output: Field required" in message
    assert caught.value.status == 422
    assert api.count(*RENDER) == 1


async def test_a_string_detail_reaches_the_message(api: ScriptedServer) -> None:
    api.reply(*CREDITS, lambda: bare({"detail": "Not authenticated"}, status=403))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIError, match="Not authenticated"):
            await nemo.credits()


@pytest.mark.parametrize(
    "draft", [{}, {"t": []}, {"t": [{"tt": 0, "sg": []}]}, {"t": [{"tt": 1}]}, None]
)
async def test_nothing_to_export_is_refused_before_any_request(
    api: ScriptedServer, draft: Any
) -> None:
    """[V]: pre-check the state; no exportable draft -> tell the user to generate first."""
    api.reply(*STATE, lambda: state_reply(draft))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.NothingToExportError, match="Generate or edit first"):
            await nemo.session(SID).export()
        with pytest.raises(nemo_sync.NothingToExportError):
            await nemo.session(SID).export({"t": [{"tt": 0, "sg": []}]})
    assert api.count(*RENDER) == 0


@pytest.mark.parametrize("enveloped", [True, False])
async def test_the_poll_reply_is_read_at_top_level_with_output(
    api: ScriptedServer, enveloped: bool
) -> None:
    done = {
        "id": "r1",
        "status": "completed",
        "output": {"url": "https://cdn.example/r1.mp4", "duration": 12.5, "size": 123456},
    }
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: bare({"status": "pending"}) if not enveloped else envelope({"status": "pending"}),
        lambda: bare({"status": "processing", "progress": 40}),
        lambda: envelope(done) if enveloped else bare(done),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        job = nemo.render_job("r1")
        seen = [r.status async for r in job.watch(poll_interval=0)]
        result = job.last
    assert seen == ["pending", "processing", "completed"]
    assert result is not None
    assert (result.download_url, result.duration, result.size) == (
        "https://cdn.example/r1.mp4",
        12.5,
        123456,
    )


async def test_an_unknown_status_is_still_running(api: ScriptedServer) -> None:
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: bare({"status": "encoding"}),
        lambda: bare({"status": "failed", "error": "codec error"}),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.RenderFailedError, match="codec error"):
            await nemo.render_job("r1").wait(poll_interval=0)


MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def _video() -> web.Response:
    return web.Response(body=MP4, content_type="video/mp4")


@pytest.mark.parametrize("cdn_status", [None, 403, 404, 410])
async def test_the_download_falls_back_to_the_api_path_with_the_token(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path, cdn_status: int | None
) -> None:
    """[V]: output.url missing or failing -> GET /api/render/proxy/<id>/download (token)."""
    output = {} if cdn_status is None else {"url": f"{cdn.url}/r1.mp4"}
    if cdn_status is not None:
        cdn.reply("GET", "/r1.mp4", raw(cdn_status, "expired"))
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: bare({"status": "completed", "output": output}),
    )
    api.reply("GET", "/api/render/proxy/r1/download", _video)
    async with NemoClient(base_url=api.url, token="secret") as nemo:
        path = await nemo.render_job("r1").download(tmp_path)
    assert path == tmp_path / "r1.mp4"
    assert path.read_bytes() == MP4
    fallback = next(s for s in api.seen if s.path.endswith("/download"))
    assert fallback.headers["Authorization"] == "Bearer secret"
    assert all("Authorization" not in s.headers for s in cdn.seen)


async def test_the_download_uses_output_url_without_the_token(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    cdn.reply("GET", "/out/r1.mp4", _video)
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: bare({"status": "completed", "output": {"url": f"{cdn.url}/out/r1.mp4"}}),
    )
    async with NemoClient(base_url=api.url, token="secret") as nemo:
        path = await nemo.render_job("r1").download(tmp_path / "mine.mp4")
    assert path.read_bytes() == MP4
    assert "Authorization" not in cdn.seen[0].headers
    assert not any(s.path.endswith("/download") for s in api.seen)


async def test_a_cdn_server_error_is_not_hidden_by_the_fallback(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    cdn.reply("GET", "/r1.mp4", raw(500, "boom"))
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: bare({"status": "completed", "output": {"url": f"{cdn.url}/r1.mp4"}}),
    )
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.DownloadError, match="HTTP 500"):
            await nemo.render_job("r1").download(tmp_path)


# -- ids are path segments -----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".", "..", "  "])
async def test_dot_and_empty_ids_are_refused(api: ScriptedServer, bad: str) -> None:
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.ConfigurationError):
            nemo.render_job(bad)
        with pytest.raises(nemo_sync.ConfigurationError):
            nemo.session(bad)


async def test_an_id_with_slashes_stays_one_segment(api: ScriptedServer) -> None:
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIError):
            await nemo.render_job("../../credits/balance/simple").status()
    assert api.seen[0].path == "/api/render/proxy/lambda/..%2F..%2Fcredits%2Fbalance%2Fsimple"
    assert api.count(*CREDITS) == 0


async def test_a_session_id_with_dot_segments_never_reaches_another_route(
    api: ScriptedServer,
) -> None:
    """Row 9: ``s1/../../../../run_sse`` made upload() POST to /api/run_sse."""
    api.reply("POST", "/api/run_sse", lambda: envelope({"file_id": "x"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIError):
            await nemo.session("s1/../../../../run_sse").upload_urls(["https://x.example/a.mp4"])
    assert api.count("POST", "/api/run_sse") == 0
    assert api.seen[0].path == "/api/upload-video/nemo_agent/me/s1%2F..%2F..%2F..%2F..%2Frun_sse"


@pytest.mark.parametrize(
    ("fields", "ms"),
    [
        ({"duration_ms": 12000}, 12000),
        ({"duration": 12.5}, 12500),
        ({"duration": "12"}, None),
        ({"duration_ms": float("nan")}, None),
        ({"duration_ms": -1}, None),
        ({}, None),
    ],
)
def test_media_length_is_read_from_either_key(fields: dict[str, Any], ms: int | None) -> None:
    media = nemo_sync.Media.from_data({"file_id": "f", **fields}, "POST /upload")
    assert media.duration_ms == ms


# -- 2001 and the registration link [V 1.9][R] (contract v3) --------------------------------


def _token_reply(user_id: str | None = "anon_abc123") -> Any:
    """[R]: {"token": "nmv_usr_...", "user_id": "anon_...", "expires_at", "credits": 100}."""
    data: dict[str, Any] = {
        "token": "nmv_usr_xxxxxx",
        "expires_at": "2099-03-18T00:00:00Z",
        "credits": 100,
    }
    if user_id is not None:
        data["user_id"] = user_id
    return lambda: envelope(data)


def _no_credits() -> web.Response:
    return envelope(None, code=2001, message="Insufficient credits")


async def test_an_anonymous_users_2001_carries_the_register_bind_link(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, _token_reply())
    api.reply(*CREDITS, _no_credits)
    async with NemoClient(base_url=api.url, web_url="https://web.example/") as nemo:
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    link = "https://web.example/register?bind=anon_abc123"
    assert caught.value.bind_url == link
    assert link in str(caught.value)
    assert "nmv_usr_xxxxxx" not in str(caught.value)


async def test_the_user_id_is_kept_with_the_credentials_for_the_next_process(
    api: ScriptedServer,
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, _token_reply())
    api.reply(*CREDITS, lambda: envelope({"available": 1, "frozen": 0, "total": 1}), _no_credits)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    async with NemoClient(base_url=api.url) as again:  # a new process: the token is reused
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await again.credits()
    assert api.count(*TOKEN) == 1
    assert caught.value.bind_url == "https://nemovideo.com/register?bind=anon_abc123"


async def test_the_session_replys_anonymous_user_id_gives_the_link_for_a_given_token(
    api: ScriptedServer,
) -> None:
    """NEMO_TOKEN may hold an anonymous token: the session reply's user_id says so [R]."""
    api.reply(*SESSION, lambda: envelope({"task_id": TID, "session_id": SID, "user_id": "anon_q"}))
    api.reply(*CREDITS, _no_credits)
    async with NemoClient(base_url=api.url, token="nmv_usr_given") as nemo:
        session = await nemo.create_session()
        assert session.bind_url == "https://nemovideo.com/register?bind=anon_q"
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    assert caught.value.bind_url == "https://nemovideo.com/register?bind=anon_q"


@pytest.mark.parametrize("user_id", [None, "user_42"])
async def test_a_registered_users_2001_says_to_top_up(
    api: ScriptedServer, user_id: str | None
) -> None:
    data = {"task_id": TID, "session_id": SID} | ({"user_id": user_id} if user_id else {})
    api.reply(*SESSION, lambda: envelope(data))
    api.reply(*CREDITS, _no_credits)
    async with NemoClient(base_url=api.url, token="nmv_usr_given") as nemo:
        session = await nemo.create_session()
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    assert session.bind_url is None
    assert caught.value.bind_url is None
    assert "top up" in str(caught.value).lower()
    assert "nemovideo.com" in str(caught.value)


async def test_a_bind_url_the_service_gives_wins_over_the_one_made_from_the_user_id(
    api: ScriptedServer,
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, _token_reply())
    api.reply(*CREDITS, lambda: envelope({"bind_url": "https://x.example/?bind=S"}, code=2001))
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    assert caught.value.bind_url == "https://x.example/?bind=S"


@pytest.mark.parametrize("user_id", ["anon_a/../b?x=1", "anon_" + "x" * 300, "anon_\u202e"])
async def test_a_hostile_user_id_never_becomes_a_link(api: ScriptedServer, user_id: str) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, _token_reply(user_id))
    api.reply(*CREDITS, _no_credits)
    async with NemoClient(base_url=api.url) as nemo:
        with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
            await nemo.credits()
    link = caught.value.bind_url
    assert link is None or (
        link.startswith("https://nemovideo.com/register?bind=")
        and "/../" not in link
        and "?x=1" not in link
        and len(link) < 200
    )


# -- credits [V][R] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"available": 25000, "frozen": 40, "total": 25040}, (25000, 40, 25040)),  # [R]
        ({"available": 25000, "frozen": 40}, (25000, 40, 25040)),  # total = available + frozen
        ({"available": 7}, (7, 0, 7)),
        ({"available": 1.5, "frozen": 1}, (1.5, 1, 2.5)),
    ],
)
async def test_credits_total_is_available_plus_frozen_when_missing(
    api: ScriptedServer, data: dict[str, Any], expected: tuple[float, float, float]
) -> None:
    api.reply(*CREDITS, lambda: envelope(data))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        credits = await nemo.credits()
    assert (credits.available, credits.frozen, credits.total) == expected


# -- the whole workflow on the emulator, in both reply styles [R][V] --------------------------

STYLES = [
    pytest.param("reference", "adk", id="reference+adk"),
    pytest.param("reference", "simple", id="reference+simple-events"),
    pytest.param("skill", "adk", id="skill+adk"),
]


@pytest.mark.parametrize(("style", "events"), STYLES)
async def test_upload_chat_state_export_wait_download_in_each_style(
    tmp_path: Path, style: str, events: str
) -> None:
    """The reference's shapes (files[] without ids, success/data renders with outputUrl) and
    SKILL.md's (ids, a bare status with output.url): one user's code works on both."""
    backend = BytesRenderBackend()
    music, clip = tmp_path / "song.wav", tmp_path / "clip.mp4"
    music.write_bytes(_wav(2.0))
    clip.write_bytes(MP4)
    async with (
        Emulator(
            reply_style=style,  # type: ignore[arg-type]
            chat_events=events,  # type: ignore[arg-type]
            render_backend=backend,
            render_seconds=0.01,
            silent_ratio=0.0,
            cdn_host="localhost",
        ) as emu,
        NemoClient(base_url=emu.url, home=tmp_path / "home") as nemo,
    ):
        session = await nemo.create_session()
        assert (session.user_id or "").startswith("anon_")
        song, video = await session.upload_many([music, clip], concurrency=2)
        assert (song.kind, video.kind) == ("audio", "video")
        assert (song.id is None) == (style == "reference")
        assert song.url is not None
        assert song.duration_ms == 2000
        reply = await session.send("sync the background music to my video")
        assert reply.text
        state = await session.state()
        assert {m.url for m in state.media} == {song.url, video.url}  # in arrival order
        assert state.exportable
        job = await session.export()
        result = await job.wait(poll_interval=0.01)
        assert result.ok
        assert result.download_url is not None
        assert result.download_url.startswith(emu.cdn_url)
        path = await job.download(tmp_path / "out.mp4")
    assert path.read_bytes() == backend.payload
    downloads = [r for r in emu.requests if r.host.startswith("localhost")]
    assert downloads
    assert not any(r.has_token for r in downloads)


@pytest.mark.parametrize("style", ["reference", "skill"])
async def test_a_draft_built_from_uploads_without_ids_renders(tmp_path: Path, style: str) -> None:
    """A client-built draft names media by what the reply gave: the id, else the cdn_url [R]."""
    backend = BytesRenderBackend()
    async with (
        Emulator(reply_style=style, render_backend=backend, render_seconds=0.01) as emu,  # type: ignore[arg-type]
        NemoClient(base_url=emu.url, home=tmp_path / "home") as nemo,
    ):
        session = await nemo.create_session()
        clip = await session.upload(MP4, filename="clip.mp4")
        draft = nemo_sync.Draft()
        draft.add_video(clip, 0, 2)
        job = await session.export(draft)
        assert (await job.wait(poll_interval=0.01)).ok
    [call] = backend.calls
    assert list(call["media"]) == [clip.key]
