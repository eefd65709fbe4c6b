"""Emulator: render jobs, credits held and settled, export checks, CDN downloads, cancel.

Most tests here read SKILL.md 1.9's shapes [V] (``reply_style="skill"``: a bare poll with
``output.url``); the ones named ``reference`` read the API reference's [R], the default.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from nemo_sync._contract import export_body
from nemo_sync.emulator import NO_RENDERER, Emulator, RenderBackend
from nemo_sync.emulator._config import ReplyStyle
from nemo_sync.emulator._render_worker import NOTHING_TO_EXPORT
from tests.emulator_raw import ATTRIBUTION, Raw, Reply, raw_client
from tests.render_doubles import BytesRenderBackend


@pytest.fixture
def backend() -> BytesRenderBackend:
    return BytesRenderBackend()


@pytest.fixture
async def emu(backend: BytesRenderBackend) -> AsyncIterator[Emulator]:
    async with Emulator(
        render_backend=backend, render_seconds=0.05, silent_ratio=0, reply_style="skill"
    ) as emulator:
        yield emulator


@pytest.fixture
async def raw(emu: Emulator) -> AsyncIterator[Raw]:
    async with raw_client(emu) as client:
        await client.login()
        yield client


async def edited_session(raw: Raw) -> str:
    session_id = await raw.new_session()
    await raw.upload(session_id, "city.mp4", b"\x00" * 64)
    await raw.chat(session_id, "make it 16:9")
    return session_id


async def finish(raw: Raw, render_id: str) -> list[dict[str, Any]]:
    """Poll until the job ends; every status seen, in order."""
    seen: list[dict[str, Any]] = []
    for _ in range(400):
        reply = await raw.render_status(render_id)
        assert reply.status == 200, reply.body
        seen.append(reply.payload)
        if reply.payload["status"] in ("completed", "failed"):
            return seen
        await asyncio.sleep(0.002)
    raise AssertionError(f"render {render_id} did not finish: {seen[-1]}")


def test_the_fake_backend_is_a_render_backend() -> None:
    assert isinstance(BytesRenderBackend(), RenderBackend)


async def test_a_render_goes_through_its_states_for_free(
    raw: Raw, emu: Emulator, backend: BytesRenderBackend
) -> None:
    session_id = await edited_session(raw)
    before = await raw.credits()
    reply = await raw.render(session_id, render_id="render_1700000000000")
    assert reply.status == 200, reply.body
    assert reply.code == 0
    assert reply.data == {"render_id": "render_1700000000000", "status": "pending"}
    assert await raw.credits() == before  # export is free: nothing held
    seen = await finish(raw, "render_1700000000000")
    assert "code" not in seen[0]  # the poll reply is bare by default [V]
    assert {s["id"] for s in seen} == {"render_1700000000000"}
    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "completed"
    assert statuses.index("processing") < statuses.index("completed")
    assert all("output" not in s for s in seen[:-1])
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert await raw.credits() == before  # and nothing charged
    [call] = backend.calls
    assert call["size"] == (1920, 1080)  # the draft's canvas says 16:9
    media_id = next(iter(emu.sessions[session_id].media))
    assert call["media"] == {media_id: emu.sessions[session_id].media[media_id].path}
    output = seen[-1]["output"]
    assert output["size"] == len(backend.payload)
    assert output["duration"] == emu.sessions[session_id].draft["d"] / 1000
    async with raw.http.get(output["url"]) as download:
        assert download.status == 200
        assert download.headers["Content-Type"] == "video/mp4"
        assert await download.read() == backend.payload


async def test_the_status_can_come_enveloped(backend: BytesRenderBackend) -> None:
    async with (
        Emulator(
            render_backend=backend,
            render_seconds=0.01,
            reply_style="skill",
            render_status_enveloped=True,
        ) as emu,
        raw_client(emu) as raw,
    ):
        await raw.login()
        session_id = await edited_session(raw)
        render_id = (await raw.render(session_id)).data["render_id"]
        await emu.wait_for_renders()
        reply = await raw.render_status(render_id)
        assert reply.code == 0
        assert reply.data["id"] == render_id
        assert reply.data["status"] == "completed"
        assert reply.data["output"]["url"].startswith(emu.cdn_url + "/downloads/")


async def test_an_export_needs_no_credits(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    emu.set_credits(raw.token or "", available=0)
    reply = await raw.render(session_id)
    assert (reply.status, reply.code) == (200, 0), reply.body
    seen = await finish(raw, reply.data["render_id"])
    assert seen[-1]["status"] == "completed"
    assert await raw.credits() == {"available": 0, "frozen": 0, "total": 0}


async def test_without_a_renderer_the_job_fails_and_says_what_to_install(raw: Raw) -> None:
    async with (
        Emulator(render_backend=None, render_seconds=0.01, reply_style="skill") as emu,
        raw_client(emu) as cli,
    ):
        await cli.login()
        session_id = await edited_session(cli)
        assert emu.render_backend is None
        job = (await cli.render(session_id)).data
        seen = await finish(cli, job["render_id"])
        assert seen[-1]["status"] == "failed"
        assert seen[-1]["error"] == NO_RENDERER
        assert "output" not in seen[-1]


async def test_render_fail_fault(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    emu.faults.add("POST /api/render/proxy/lambda", render_fail="GPU node lost")
    job = (await raw.render(session_id)).data
    assert job["status"] == "pending"
    seen = await finish(raw, job["render_id"])
    assert (seen[-1]["status"], seen[-1]["error"]) == ("failed", "GPU node lost")
    assert "output" not in seen[-1]


async def test_a_backend_error_fails_the_job(
    raw: Raw, emu: Emulator, backend: BytesRenderBackend
) -> None:
    backend.fail = "encoder exploded"
    session_id = await edited_session(raw)
    seen = await finish(raw, (await raw.render(session_id)).data["render_id"])
    assert seen[-1]["error"] == "encoder exploded"


async def test_nothing_to_render_and_unknown_media_fail_clearly(raw: Raw) -> None:
    session_id = await raw.new_session()
    empty = await finish(raw, (await raw.render(session_id)).data["render_id"])
    assert empty[-1]["error"] == NOTHING_TO_EXPORT
    assert "generate or edit" in empty[-1]["error"]
    audio_only = {"t": [{"id": "a", "tt": 1, "sg": [{"id": "s", "st": 0, "d": 1}]}]}
    no_video = await finish(raw, (await raw.render(session_id, draft=audio_only)).data["render_id"])
    assert "no video segments" in no_video[-1]["error"]
    draft = {"t": [{"id": "v", "tt": 0, "sg": [{"id": "s", "mid": "med_ghost", "st": 0, "d": 1}]}]}
    ghost = await finish(raw, (await raw.render(session_id, draft=draft)).data["render_id"])
    assert "med_ghost" in ghost[-1]["error"]


async def test_a_reused_id_is_409_and_ids_are_per_account(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    first = await raw.render(session_id, render_id="render_1")
    again = await raw.render(session_id, render_id="render_1")
    assert (again.status, again.code) == (409, 409)
    assert "render_1" in again.message
    assert len(emu.renders) == 1
    async with raw_client(emu) as other:
        await other.login("other")
        theirs = await other.render(await edited_session(other), render_id="render_1")
        assert theirs.status == 200, theirs.body
        await emu.wait_for_renders()
        assert (await other.render_status("render_1")).payload["status"] == "completed"
    assert (await raw.render_status("render_1")).payload["status"] == "completed"
    assert first.data["render_id"] == "render_1"


async def test_the_canvas_comes_from_the_draft(
    raw: Raw, backend: BytesRenderBackend, emu: Emulator
) -> None:
    session_id = await edited_session(raw)
    draft = {**emu.sessions[session_id].draft, "cv": {"w": 1080, "h": 1080}}
    job = (await raw.render(session_id, draft=draft)).data
    seen = await finish(raw, job["render_id"])
    assert (seen[-1]["width"], seen[-1]["height"]) == (1080, 1080)
    assert backend.calls[-1]["size"] == (1080, 1080)


async def test_missing_attribution_headers_block_export_with_402(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    body = export_body("render_9", session_id, emu.sessions[session_id].draft)
    for missing in ATTRIBUTION:
        headers = {k: v for k, v in ATTRIBUTION.items() if k != missing}
        headers["Authorization"] = f"Bearer {raw.token}"
        reply = await raw.call(
            "POST", "/api/render/proxy/lambda", json_body=body, raw_headers=headers
        )
        assert reply.status == 402, missing
        assert missing in reply.message
    # Other routes do not check them (as the service does not).
    credits = await raw.call(
        "GET", "/api/credits/balance/simple", raw_headers={"Authorization": f"Bearer {raw.token}"}
    )
    assert credits.status == 200
    assert not emu.renders
    # Another skill's platform is no reason to refuse: only missing headers are (contract v3).
    other = {**ATTRIBUTION, "X-Skill-Platform": "vscode", "Authorization": f"Bearer {raw.token}"}
    reply = await raw.call("POST", "/api/render/proxy/lambda", json_body=body, raw_headers=other)
    assert reply.status == 200, reply.body


async def test_plan_blocks_anonymous_export(backend: BytesRenderBackend) -> None:
    async with Emulator(render_backend=backend, export_requires_plan=True) as emu:
        async with raw_client(emu) as raw:
            await raw.login("anon")
            session_id = await raw.new_session()
            blocked = await raw.render(session_id)
            assert blocked.status == 402
            assert "register or upgrade" in blocked.message
            emu.register("anon")
            assert (await raw.render(session_id)).status == 200


async def test_a_v1_export_body_is_422_with_a_detail(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    v1 = {
        "render_id": "r-1",
        "session_id": session_id,
        "draft": emu.sessions[session_id].draft,
        "resolution": "1080p",
    }
    reply = await raw.call("POST", "/api/render/proxy/lambda", json_body=v1)
    assert reply.status == 422
    assert reply.code is None  # FastAPI's body, not the envelope
    assert reply.missing_fields() == ["id", "sessionId"]
    assert reply.detail[0] == {
        "type": "missing",
        "loc": ["body", "id"],
        "msg": "Field required",
        "input": v1,
    }
    assert not emu.renders


@pytest.mark.parametrize(
    ("change", "where", "kind"),
    [
        ({"draft": None}, "draft", "dict_type"),
        ({"draft": "{}"}, "draft", "dict_type"),
        ({"id": 17}, "id", "string_type"),
        ({"output": {"format": "webm", "quality": "high"}}, "output.format", "literal_error"),
        ({"id": ""}, "id", "string_too_short"),
    ],
)
async def test_a_mistyped_export_body_is_422(
    raw: Raw, emu: Emulator, change: dict[str, Any], where: str, kind: str
) -> None:
    session_id = await raw.new_session()
    body = {**export_body("render_5", session_id, {"t": []}), **change}
    reply = await raw.call("POST", "/api/render/proxy/lambda", json_body=body)
    assert reply.status == 422, reply.body
    [item] = reply.detail
    assert (".".join(str(p) for p in item["loc"][1:]), item["type"]) == (where, kind)
    assert not emu.renders


async def test_no_draft_and_no_body_are_422(raw: Raw) -> None:
    session_id = await raw.new_session()
    no_draft = await raw.call(
        "POST", "/api/render/proxy/lambda", json_body={"id": "render_2", "sessionId": session_id}
    )
    assert no_draft.missing_fields() == ["draft"]
    empty = await raw.call("POST", "/api/render/proxy/lambda", data=b"")
    assert (empty.status, empty.detail[0]["loc"]) == (422, ["body"])
    broken = await raw.call(
        "POST",
        "/api/render/proxy/lambda",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert (broken.status, broken.detail[0]["type"]) == (422, "json_invalid")


async def test_jobs_belong_to_their_account(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    render_id = (await raw.render(session_id)).data["render_id"]
    async with raw_client(emu) as other:
        await other.login("other")
        reply = await other.render_status(render_id)
        assert (reply.status, reply.code) == (404, 4004)
        fallback = await other.call("GET", f"/api/render/proxy/{render_id}/download")
        assert fallback.status == 404
    unknown = await raw.render_status("render_404")
    assert (unknown.status, unknown.code) == (404, 4004)
    await emu.wait_for_renders()
    assert emu.renders[render_id].status == "completed"


async def completed_output(raw: Raw, emu: Emulator) -> tuple[str, dict[str, Any]]:
    session_id = await edited_session(raw)
    render_id = (await raw.render(session_id)).data["render_id"]
    await emu.wait_for_renders()
    output: dict[str, Any] = (await raw.render_status(render_id)).payload["output"]
    return render_id, output


async def test_downloads_need_no_token_and_support_ranges(
    raw: Raw, emu: Emulator, backend: BytesRenderBackend
) -> None:
    _, output = await completed_output(raw, emu)
    url = output["url"]
    payload, size = backend.payload, len(backend.payload)
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(url, headers={"Range": "bytes=100-"}) as part:
            assert part.status == 206
            assert part.headers["Accept-Ranges"] == "bytes"
            assert part.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
            assert int(part.headers["Content-Length"]) == size - 100
            assert await part.read() == payload[100:]
        async with anonymous.get(url, headers={"Range": "bytes=-10"}) as tail:
            assert await tail.read() == payload[-10:]
        async with anonymous.get(url, headers={"Range": f"bytes={size}-"}) as past:
            assert past.status == 416
            assert past.headers["Content-Range"] == f"bytes */{size}"
        async with anonymous.head(url) as head:
            assert head.status == 200
            assert int(head.headers["Content-Length"]) == size
        async with anonymous.get(url.split("?")[0]) as unsigned:
            assert unsigned.status == 403
        async with anonymous.get(emu.url + "/downloads/rnd_nope.mp4?sig=x") as unknown:
            assert unknown.status == 404
    download = emu.requests.matching("GET", "/downloads/*")[0]
    assert not download.has_token


async def test_the_download_fallback_needs_the_token_and_serves_the_same_bytes(
    raw: Raw, emu: Emulator, backend: BytesRenderBackend
) -> None:
    render_id, _ = await completed_output(raw, emu)
    path = f"/api/render/proxy/{render_id}/download"
    async with raw.http.get(emu.url + path, headers=raw.headers()) as whole:
        assert whole.status == 200
        assert whole.headers["Content-Type"] == "video/mp4"
        assert await whole.read() == backend.payload
    ranged = {**raw.headers(), "Range": "bytes=5-9"}
    async with raw.http.get(emu.url + path, headers=ranged) as part:
        assert part.status == 206
        assert await part.read() == backend.payload[5:10]
    anonymous = await raw.call("GET", path, auth=False)
    assert (anonymous.status, anonymous.code) == (401, 1001)
    in_query = await raw.call("GET", f"{path}?token={raw.token}", auth=False)
    assert in_query.status == 401  # a token in a URL is never accepted


async def test_the_download_fallback_before_the_video_exists(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    render_id = (await raw.render(session_id)).data["render_id"]
    early = await raw.call("GET", f"/api/render/proxy/{render_id}/download")
    assert (early.status, early.code) == (404, 4004)
    await emu.wait_for_renders()  # fails: nothing to render
    failed = await raw.call("GET", f"/api/render/proxy/{render_id}/download")
    assert "failed" in failed.message


async def test_fault_omit_output_url(raw: Raw, emu: Emulator) -> None:
    render_id, output = await completed_output(raw, emu)
    emu.faults.add("GET /api/render/proxy/lambda/{render_id}", omit_output_url=True)
    reply = await raw.render_status(render_id)
    assert reply.payload["status"] == "completed"
    assert reply.payload["output"] == {k: v for k, v in output.items() if k != "url"}
    assert "url" in (await raw.render_status(render_id)).payload["output"]  # once only


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_fault_output_url_fails(raw: Raw, emu: Emulator, status: int) -> None:
    render_id, output = await completed_output(raw, emu)
    emu.faults.add("GET /downloads/{name}", status=status)
    async with raw.http.get(output["url"]) as resp:
        assert resp.status == status
    fallback = await raw.http.get(
        emu.url + f"/api/render/proxy/{render_id}/download", headers=raw.headers()
    )
    assert fallback.status == 200
    fallback.release()


async def test_downloads_on_a_cdn_host(backend: BytesRenderBackend) -> None:
    async with Emulator(
        render_backend=backend, render_seconds=0.01, cdn_host="localhost", reply_style="skill"
    ) as emu:
        assert emu.cdn_url == f"http://localhost:{emu.port}"
        async with raw_client(emu) as raw:
            await raw.login()
            _, output = await completed_output(raw, emu)
            url = output["url"]
            assert url.startswith(emu.cdn_url + "/downloads/")
            async with raw.http.get(url, headers={"Authorization": "Bearer leaked"}) as resp:
                assert await resp.read() == backend.payload
        [download] = emu.requests.matching("GET", "/downloads/*")
        assert download.host == f"localhost:{emu.port}"
        assert download.has_token  # recorded, so a test can catch a leak
        assert download.headers["Authorization"] == "Bearer ***"


async def test_drop_fault_on_a_download(raw: Raw, emu: Emulator) -> None:
    _, output = await completed_output(raw, emu)
    emu.faults.add("GET /downloads/{name}", drop=True)
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with raw.http.get(output["url"]) as resp:
            async for chunk in resp.content.iter_any():
                received += chunk
    assert 0 < len(received) < int(resp.headers["Content-Length"])


# -- [R]: the default reply style, and cancel --------------------------------------------------


class GatedBackend:
    """TEST DOUBLE: a render that runs until the test opens its gate, or it is cancelled.

    It reports progress while it waits (which is where a cancelled job stops it) and writes a
    partial file first; ``started`` and ``stopped`` tell the test where it is, no timing.
    """

    name = "gated-test-double"

    def __init__(self, payload: bytes = b"gated-video" * 100) -> None:
        self.payload = payload
        self.gate = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()

    def render(
        self,
        draft: dict[str, Any],
        media: Mapping[str, Path],
        out: Path,
        *,
        width: int,
        height: int,
        on_progress: Callable[[float], None],
    ) -> None:
        self.started.set()
        try:
            out.write_bytes(b"partial")
            while not self.gate.wait(0.01):
                on_progress(0.3)
            out.write_bytes(self.payload)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        finally:
            self.stopped.set()


async def until(event: threading.Event) -> None:
    """Wait for a render thread's event without blocking the loop (30 s: a hung test fails)."""
    assert await asyncio.to_thread(event.wait, 30)


def data_of(reply: Reply) -> Any:
    """[R]'s ``{"success": true, "data": ...}``, checked."""
    assert reply.status == 200, reply.body
    assert reply.body["success"] is True, reply.body
    return reply.body["data"]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
async def ref(backend: BytesRenderBackend) -> AsyncIterator[Emulator]:
    """The emulator as it starts by default: [R]'s shapes."""
    async with Emulator(render_backend=backend, render_seconds=0.05, silent_ratio=0) as emulator:
        assert emulator.config.reply_style == "reference"
        yield emulator


async def test_reference_submit_and_poll_shapes(ref: Emulator, backend: BytesRenderBackend) -> None:
    """[R]: submit -> ``data: {id, status: pending, progress}``; poll -> ``data: {id, status,
    progress, outputUrl, createdAt, completedAt}``, "status and outputUrl inside data"."""
    async with raw_client(ref) as raw:
        await raw.login()
        session_id = await edited_session(raw)
        submitted = await raw.render(session_id, render_id="render_1773423613616")
        assert submitted.body == {
            "success": True,
            "data": {"id": "render_1773423613616", "status": "pending", "progress": 0},
        }
        seen = []
        while not seen or seen[-1]["status"] not in ("completed", "failed"):
            seen.append(data_of(await raw.render_status("render_1773423613616")))
            await asyncio.sleep(0.002)
        assert {s["status"] for s in seen} <= {"pending", "processing", "completed"}
        assert all(set(s) == {"id", "status", "progress", "createdAt"} for s in seen[:-1])
        done = seen[-1]
        assert set(done) == {"id", "status", "progress", "outputUrl", "createdAt", "completedAt"}
        assert (done["status"], done["progress"]) == ("completed", 100)
        assert isinstance(done["createdAt"], int)
        assert isinstance(done["completedAt"], int)
        assert abs(done["createdAt"] - ref.renders["render_1773423613616"].created_at * 1000) < 1
        assert done["completedAt"] >= done["createdAt"]
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(done["outputUrl"]) as video:
                assert await video.read() == backend.payload


async def test_reference_failed_poll_carries_the_error(ref: Emulator) -> None:
    """[R] lists ``failed`` among the statuses; its ``error`` and ``completedAt`` come too."""
    ref.faults.add("POST /api/render/proxy/lambda", render_fail="GPU node lost")
    async with raw_client(ref) as raw:
        await raw.login()
        render_id = data_of(await raw.render(await edited_session(raw)))["id"]
        await ref.wait_for_renders()
        failed = data_of(await raw.render_status(render_id))
    assert (failed["status"], failed["error"]) == ("failed", "GPU node lost")
    assert "outputUrl" not in failed
    assert failed["completedAt"] >= failed["createdAt"]


async def test_reference_refusals(ref: Emulator) -> None:
    """[R]: a refused render is ``{"success": false, "error": ...}`` with HTTP 200 (a reused
    id: "fails with duplicate id error"). What a gateway in front refuses keeps its HTTP
    status: 402 for missing attribution [V], FastAPI's 422 for a body of the wrong shape,
    1002 for an unknown session; an unknown render id is a 404."""
    async with raw_client(ref) as raw:
        await raw.login()
        session_id = await edited_session(raw)
        assert (await raw.render(session_id, render_id="render_1")).status == 200
        again = await raw.render(session_id, render_id="render_1")
        assert again.status == 200
        assert again.body["success"] is False
        assert "duplicate" in again.body["error"]
        assert "render_1" in again.body["error"]
        unknown = await raw.render_status("render_404")
        assert unknown.status == 404
        assert unknown.body == {"success": False, "error": "render job not found: render_404"}
        wrong_shape = await raw.call(
            "POST", "/api/render/proxy/lambda", json_body={"id": "render_2", "draft": {}}
        )
        assert (wrong_shape.status, wrong_shape.missing_fields()) == (422, ["sessionId"])
        no_session = await raw.render("nope")
        assert (no_session.status, no_session.code) == (404, 1002)
        headers = {"Authorization": f"Bearer {raw.token}"}
        body = export_body("render_3", session_id, ref.sessions[session_id].draft)
        blocked = await raw.call(
            "POST", "/api/render/proxy/lambda", json_body=body, raw_headers=headers
        )
        assert blocked.status == 402
    assert sorted(ref.renders) == ["render_1"]


async def cancel(raw: Raw, render_id: str) -> Reply:
    """[R]: ``POST /api/render/proxy/lambda/{render_id}/cancel``, "No request body needed"."""
    return await raw.call("POST", f"/api/render/proxy/lambda/{render_id}/cancel")


@pytest.mark.parametrize("style", ["reference", "skill"])
async def test_cancel_stops_the_render_and_polls_say_cancelled(style: ReplyStyle) -> None:
    """[R]'s cancel endpoint, answered in [R]'s envelope or [V]'s bare form."""
    gated = GatedBackend()
    async with (
        Emulator(render_backend=gated, render_seconds=0.01, reply_style=style) as emu,
        raw_client(emu) as raw,
    ):
        await raw.login()

        def body(reply: Reply) -> Any:
            return data_of(reply) if style == "reference" else reply.body

        session_id = await edited_session(raw)
        await raw.render(session_id, render_id="render_7")
        await until(gated.started)
        cancelled = body(await cancel(raw, "render_7"))
        # The render stopped before the answer: its thread ended, its partial file is gone.
        assert gated.stopped.is_set()
        assert not gated.gate.is_set()
        assert not emu.renders["render_7"].running_here
        assert files_in(emu.data_dir / "renders") == []
        assert cancelled["status"] == "cancelled"
        polled = body(await raw.render_status("render_7"))
        assert polled["status"] == "cancelled"
        assert "outputUrl" not in polled
        assert "output" not in polled
        if style == "reference":
            assert polled["completedAt"] >= polled["createdAt"]
        # Again: the same answer (a cancel is idempotent).
        assert body(await cancel(raw, "render_7"))["status"] == "cancelled"
        fallback = await raw.call("GET", "/api/render/proxy/render_7/download")
        assert fallback.status == 404
        # A job that completed cannot be cancelled; an unknown one gets the poll's not-found.
        gated.gate.set()
        await raw.render(session_id, render_id="render_8")
        await emu.wait_for_renders()
        late = await cancel(raw, "render_8")
        unknown, unknown_poll = (
            await cancel(raw, "render_404"),
            await raw.render_status("render_404"),
        )
        if style == "reference":
            assert (late.status, late.body["success"]) == (200, False)
        else:
            assert (late.status, late.code) == (409, 409)
        assert "already completed" in json.dumps(late.body)
        assert (unknown.status, unknown.body) == (unknown_poll.status, unknown_poll.body)
        assert unknown.status == 404
        assert emu.renders["render_8"].status == "completed"


async def test_a_pending_render_cancelled_never_starts(backend: BytesRenderBackend) -> None:
    """[R]: "Cancel a pending render job": the engine is never called."""
    async with (
        Emulator(render_backend=backend, render_seconds=3600) as emu,
        raw_client(emu) as raw,
    ):
        await raw.login()
        render_id = data_of(await raw.render(await edited_session(raw)))["id"]
        assert data_of(await cancel(raw, render_id))["status"] == "cancelled"
        await emu.wait_for_renders()  # nothing left running
        assert backend.calls == []
        assert data_of(await raw.render_status(render_id))["status"] == "cancelled"


async def test_a_cancel_reaches_the_process_rendering_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    """[R]'s cancel on the persistent emulator (one SQLite folder, many processes: here two
    emulators): a cancel through one stops the render another runs, and stays cancelled
    after a restart."""
    folder = tmp_path / "backend"
    gated = GatedBackend()
    async with (
        Emulator(data_dir=folder, render_backend=gated, render_seconds=0.01) as one,
        Emulator(data_dir=folder, render_backend=BytesRenderBackend()) as two,
    ):
        async with raw_client(one) as raw_one, raw_client(two) as raw_two:
            await raw_one.login()
            session_id = await edited_session(raw_one)
            await raw_one.render(session_id, render_id="render_5")
            await until(gated.started)
            raw_two.token = raw_one.token  # the same account, through the other process
            assert data_of(await cancel(raw_two, "render_5"))["status"] == "cancelled"
            # The rendering process learns it at its next heartbeat and stops.
            await until(gated.stopped)
            await one.wait_for_renders()
            assert data_of(await raw_one.render_status("render_5"))["status"] == "cancelled"
    assert not gated.gate.is_set()
    assert files_in(folder / "renders") == []
    async with Emulator(data_dir=folder, render_backend=BytesRenderBackend()) as three:
        async with raw_client(three) as raw:
            raw.token = raw_one.token
            polled = data_of(await raw.render_status("render_5"))
            assert polled["status"] == "cancelled"
            assert polled["completedAt"] >= polled["createdAt"]
            await three.wait_for_renders()
            assert not three.renders["render_5"].running_here  # not taken for an orphan
