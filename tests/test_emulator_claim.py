"""Emulator: the claim token [V 1.9] and the browser page it opens; no token in a URL."""

from __future__ import annotations

import pytest

from nemo_sync._contract import CLAIM_TOKEN_PATH, CLAIM_TOKEN_TTL, claim_token_body
from nemo_sync.emulator import Emulator
from tests.emulator_raw import Raw, raw_client

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0)


async def new_project(raw: Raw, task_name: str = "project") -> tuple[str, str]:
    reply = await raw.call(
        "POST",
        "/api/tasks/me/with-session/nemo_agent",
        json_body={"task_name": task_name, "language": "en"},
    )
    return reply.data["task_id"], reply.data["session_id"]


async def claim(raw: Raw, task_id: str, session_id: str) -> str:
    reply = await raw.call(
        "POST", CLAIM_TOKEN_PATH, json_body=claim_token_body(task_id, session_id)
    )
    assert reply.status == 200, reply.body
    assert reply.data["expires_in"] == int(CLAIM_TOKEN_TTL) == 604800
    token: str = reply.data["claim_token"]
    assert token.startswith("clm_")
    return token


async def page(raw: Raw, query: str) -> tuple[int, str]:
    async with raw.http.get(f"{raw.emu.web_url}/workspace/claim{query}") as resp:
        assert resp.content_type == "text/html"
        return resp.status, await resp.text()


async def test_a_claim_link_opens_a_page_naming_the_project(raw: Raw, emu: Emulator) -> None:
    assert emu.web_url == emu.url
    task_id, session_id = await new_project(raw, "Urban Dreams")
    await raw.upload(session_id, "city.mp4", b"\x00" * 16)
    await raw.chat(session_id, "make it 16:9")
    token = await claim(raw, task_id, session_id)
    status, text = await page(raw, f"?ct={token}")
    assert status == 200
    assert "<h1>Urban Dreams</h1>" in text
    assert session_id in text
    assert "city.mp4" in text
    assert "Video: 1 segment(s)" in text
    assert raw.token not in text
    assert await claim(raw, task_id, session_id) != token  # each call makes a new one


async def test_the_page_escapes_everything(raw: Raw) -> None:
    task_id, session_id = await new_project(raw, "<script>alert(1)</script>")
    await raw.upload(session_id, "<b>x</b>.mp4", b"\x00" * 16)
    status, text = await page(raw, f"?ct={await claim(raw, task_id, session_id)}")
    assert status == 200
    assert "<script>" not in text
    assert "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_unknown_expired_and_bearer_tokens_get_a_404_page(raw: Raw, emu: Emulator) -> None:
    task_id, session_id = await new_project(raw)
    token = await claim(raw, task_id, session_id)
    for query in ("", "?ct=", "?ct=clm_nope", f"?ct={raw.token}", f"?token={raw.token}"):
        status, text = await page(raw, query)
        assert status == 404, query
        assert "unknown or has expired" in text
    emu.clock.advance(seconds=CLAIM_TOKEN_TTL - 1)
    assert (await page(raw, f"?ct={token}"))[0] == 200
    emu.clock.advance(seconds=1)
    assert (await page(raw, f"?ct={token}"))[0] == 404


async def test_a_claim_token_has_no_api_access(raw: Raw) -> None:
    task_id, session_id = await new_project(raw)
    raw.token = await claim(raw, task_id, session_id)
    reply = await raw.call("GET", "/api/credits/balance/simple")
    assert (reply.status, reply.code) == (401, 1001)


async def test_the_bearer_token_is_never_taken_from_a_url(raw: Raw) -> None:
    for query in (f"?token={raw.token}", f"?access_token={raw.token}"):
        reply = await raw.call("GET", f"/api/credits/balance/simple{query}", auth=False)
        assert (reply.status, reply.code) == (401, 1001), query


async def test_claim_token_refusals(raw: Raw, emu: Emulator) -> None:
    task_id, session_id = await new_project(raw)
    missing = await raw.call("POST", CLAIM_TOKEN_PATH, json_body={"session_id": session_id})
    assert (missing.status, missing.missing_fields()) == (422, ["task_id"])
    unknown = await raw.call("POST", CLAIM_TOKEN_PATH, json_body=claim_token_body(task_id, "nope"))
    assert (unknown.status, unknown.code) == (404, 1002)
    wrong_task = await raw.call(
        "POST", CLAIM_TOKEN_PATH, json_body=claim_token_body("task_other", session_id)
    )
    assert wrong_task.code == 1002
    anonymous = await raw.call(
        "POST", CLAIM_TOKEN_PATH, json_body=claim_token_body(task_id, session_id), auth=False
    )
    assert anonymous.code == 1001
    async with raw_client(emu) as other:
        await other.login("someone-else")
        foreign = await other.call(
            "POST", CLAIM_TOKEN_PATH, json_body=claim_token_body(task_id, session_id)
        )
        assert foreign.code == 1002
    assert not emu.state.claims
