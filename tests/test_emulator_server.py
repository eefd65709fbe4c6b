"""Emulator: the envelope, request ids, sessions and state, ownership, unknown routes."""

from __future__ import annotations

import pytest

from nemo_sync._contract import session_body
from nemo_sync.emulator import Emulator
from tests.emulator_raw import Raw, raw_client


async def test_every_reply_carries_a_request_id(raw: Raw, emu: Emulator) -> None:
    ok = await raw.call("GET", "/api/credits/balance/simple")
    failed = await raw.call("GET", "/api/state/nemo_agent/me/nope/latest")
    missing = await raw.call("GET", "/no/such/route")
    ids = [r.headers["X-Request-Id"] for r in (ok, failed, missing)]
    assert all(i.startswith("req_") for i in ids)
    assert len(set(ids)) == 3
    assert [r.request_id for r in emu.requests][-3:] == ids


async def test_unknown_route_and_method_get_the_envelope(raw: Raw) -> None:
    missing = await raw.call("GET", "/no/such/route")
    assert missing.status == 404
    assert missing.code == 404
    wrong_method = await raw.call("GET", "/run_sse")
    assert wrong_method.status == 405
    assert "POST" in wrong_method.headers["Allow"]


async def test_create_session_and_read_its_state(raw: Raw, emu: Emulator) -> None:
    reply = await raw.call(
        "POST", "/api/tasks/me/with-session/nemo_agent", json_body=session_body("en")
    )
    assert reply.status == 200
    data = reply.data
    # [R]: task_id, session_id, user_id
    assert set(data) == {"task_id", "session_id", "user_id"}
    assert data["task_id"].startswith("task_")
    assert data["session_id"]
    assert data["user_id"] == emu.account(raw.token or "").id
    assert emu.sessions[data["session_id"]].task_id == data["task_id"]
    state = await raw.state(data["session_id"])
    assert state.status == 200
    assert "draft" not in state.data  # v2: everything is under data.state
    assert "media" not in state.data
    inner = state.data["state"]
    assert set(inner) == {"draft", "video_infos", "canvas_config", "generated_media"}
    assert inner["draft"]["t"] == []
    assert inner["draft"]["cv"] == {"w": 1080, "h": 1920}  # a key clients must keep
    assert inner["video_infos"] == []
    assert inner["generated_media"] == []
    assert inner["canvas_config"] == {"width": 1080, "height": 1920, "aspect_ratio": "9:16"}
    assert state.data["version"] == 0
    assert emu.sessions[data["session_id"]].account is emu.account(raw.token or "")


async def test_state_lists_uploads_as_video_infos(raw: Raw) -> None:
    session_id = await raw.new_session()
    uploaded = (await raw.upload(session_id, "clip.mp4", b"\x00" * 32)).data["files"]
    await raw.chat(session_id, "make it 16:9")
    inner = (await raw.state(session_id)).data["state"]
    assert inner["video_infos"] == uploaded
    assert inner["canvas_config"] == {"width": 1920, "height": 1080, "aspect_ratio": "16:9"}


async def test_unknown_session_is_1002_on_every_session_route(raw: Raw) -> None:
    state = await raw.state("nope")
    assert (state.status, state.code) == (404, 1002)
    upload = await raw.upload("nope", "a.mp3", b"abc")
    assert upload.code == 1002
    chat = await raw.call("POST", "/run_sse", json_body=raw.chat_body("nope", "hi"))
    assert chat.code == 1002
    render = await raw.render("nope")
    assert render.code == 1002


async def test_another_accounts_session_is_not_found(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    async with raw_client(emu) as other:
        await other.login("someone-else")
        assert (await other.state(session_id)).code == 1002


async def test_bad_chat_bodies_are_refused_as_adk_does(raw: Raw) -> None:
    session_id = await raw.new_session()
    not_json = await raw.call(
        "POST", "/run_sse", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status, not_json.detail[0]["type"]) == (422, "json_invalid")
    no_user = {"app_name": "nemo_agent", "session_id": session_id, "new_message": {}}
    missing_user = await raw.call("POST", "/run_sse", json_body=no_user)
    assert missing_user.status == 422
    assert missing_user.code is None  # FastAPI's body, not the envelope
    # ADK's models report a field under its camelCase alias.
    assert missing_user.missing_fields() == ["userId"]
    no_text = await raw.call(
        "POST", "/run_sse", json_body={**no_user, "user_id": "me", "new_message": {"parts": []}}
    )
    assert (no_text.status, no_text.missing_fields()) == (422, ["newMessage.parts.0.text"])
    nothing = await raw.call("POST", "/run_sse", json_body={})
    assert nothing.missing_fields() == ["userId", "sessionId"]
    wrong_type = await raw.call(
        "POST", "/run_sse", json_body={**raw.chat_body(session_id, "hi"), "session_id": 5}
    )
    assert [i["type"] for i in wrong_type.detail] == ["string_type"]
    no_app = {k: v for k, v in raw.chat_body(session_id, "hi").items() if k != "app_name"}
    missing_app = await raw.call("POST", "/run_sse", json_body=no_app)
    assert missing_app.status == 400
    assert "app_name is required" in missing_app.detail
    wrong_app = await raw.call(
        "POST", "/run_sse", json_body={**raw.chat_body(session_id, "hi"), "app_name": "other"}
    )
    assert (wrong_app.status, wrong_app.detail) == (404, "App not found: other")
    other_user = await raw.call(
        "POST", "/run_sse", json_body={**raw.chat_body(session_id, "hi"), "user_id": "you"}
    )
    assert other_user.code == 1002


async def test_extra_chat_keys_and_camel_case_names_are_accepted(raw: Raw) -> None:
    session_id = await raw.new_session()
    v1_extras = raw.chat_body(session_id, "hi")
    v1_extras["streaming"] = True
    v1_extras["new_message"]["role"] = "user"
    async with raw.http.post(
        raw.emu.url + "/run_sse", json=v1_extras, headers=raw.headers()
    ) as resp:
        assert resp.status == 200
        await resp.read()
    camel = {
        "appName": "nemo_agent",
        "userId": "me",
        "sessionId": session_id,
        "newMessage": {"parts": [{"text": "hi"}]},
    }
    async with raw.http.post(raw.emu.url + "/run_sse", json=camel, headers=raw.headers()) as resp:
        assert resp.status == 200
        await resp.read()


async def test_the_register_page_answers_for_an_anonymous_user_id(raw: Raw, emu: Emulator) -> None:
    """[V 1.9][R]: <web>/register?bind=<user_id>; the emulator serves its web links itself."""
    reply = await raw.call("POST", "/api/tasks/me/with-session/nemo_agent", json_body={})
    user_id: str = reply.data["user_id"]
    async with raw.http.get(f"{emu.web_url}/register", params={"bind": user_id}) as page:
        assert page.status == 200
        assert "registration" in (await page.text()).lower()
    async with raw.http.get(emu.web_url + "/register?bind=unknown") as page:
        assert page.status == 404
    emu.register(user_id)
    async with raw.http.get(f"{emu.web_url}/register", params={"bind": user_id}) as page:
        assert page.status == 404  # a registered account has nothing to bind


async def test_reset_forgets_everything(raw: Raw, emu: Emulator) -> None:
    await raw.new_session()
    emu.faults.add("GET /api/credits/balance/simple", status=500)
    emu.clock.advance(days=1)
    emu.reset()
    assert len(emu.sessions) == 0
    assert len(emu.faults) == 0
    assert len(emu.requests) == 0
    assert emu.clock.offset == 0
    assert (await raw.call("GET", "/api/credits/balance/simple")).code == 1001


async def test_not_started_emulator_says_so() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.url
    await emu.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
        assert emu.port > 0
        assert repr(emu).startswith(f"Emulator({emu.url}")
    finally:
        await emu.close()


async def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="silent_ratio"):
        Emulator(silent_ratio=1.5)
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Emulator(heartbeat_interval=0)


async def test_an_emulator_failure_is_a_500_envelope(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    (emu.data_dir / "media").write_text("a file where the media folder should be")
    reply = await raw.upload(session_id, "a.mp3", b"abc")
    assert (reply.status, reply.code) == (500, 500)
    assert reply.message.startswith("emulator error: ")
