"""Emulator: render jobs, credits held and settled, export checks, CDN downloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from nemo_sync.emulator import NO_RENDERER, Emulator, RenderBackend
from tests.emulator_raw import ATTRIBUTION, Raw, raw_client


class FakeBackend:
    """TEST DOUBLE: writes known bytes that are not a video. For the emulator's own tests only;
    real renders come from nemo_sync.local.LocalRenderBackend."""

    name = "fake-test-double"

    def __init__(self, payload: bytes = b"not-a-video:" + bytes(range(256)) * 64) -> None:
        self.payload = payload
        self.fail: str | None = None
        self.calls: list[dict[str, Any]] = []

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
        self.calls.append({"draft": draft, "media": dict(media), "size": (width, height)})
        for done in (0.25, 0.5, 1.0):
            on_progress(done)
        if self.fail:
            raise RuntimeError(self.fail)
        out.write_bytes(self.payload)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def emu(backend: FakeBackend) -> AsyncIterator[Emulator]:
    async with Emulator(render_backend=backend, render_seconds=0.05, silent_ratio=0) as emulator:
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
        seen.append(reply.data)
        if reply.data["status"] in ("completed", "failed"):
            return seen
        await asyncio.sleep(0.002)
    raise AssertionError(f"render {render_id} did not finish: {seen[-1]}")


def test_the_fake_backend_is_a_render_backend() -> None:
    assert isinstance(FakeBackend(), RenderBackend)


async def test_a_render_goes_through_its_states_and_charges(
    raw: Raw, emu: Emulator, backend: FakeBackend
) -> None:
    session_id = await edited_session(raw)
    before = await raw.credits()
    reply = await raw.render(session_id, render_id="client-1", resolution="720p")
    assert reply.status == 200, reply.body
    job = reply.data
    assert job["render_id"].startswith("rnd_")  # the server's id
    assert job["client_render_id"] == "client-1"
    assert job["status"] == "queued"
    assert (job["width"], job["height"]) == (1280, 720)  # the draft says 16:9
    held = await raw.credits()
    assert held == {"available": before["available"] - 10, "frozen": 10, "total": before["total"]}
    seen = await finish(raw, job["render_id"])
    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "completed"
    assert statuses.index("processing") < statuses.index("completed")
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert await raw.credits() == {
        "available": before["available"] - 10,
        "frozen": 0,
        "total": before["total"] - 10,
    }
    [call] = backend.calls
    assert call["size"] == (1280, 720)
    media_id = next(iter(emu.sessions[session_id].media))
    assert call["media"] == {media_id: emu.sessions[session_id].media[media_id].path}
    async with raw.http.get(seen[-1]["download_url"]) as download:
        assert download.status == 200
        assert download.headers["Content-Type"] == "video/mp4"
        assert await download.read() == backend.payload


async def test_without_a_renderer_the_job_fails_and_says_what_to_install(raw: Raw) -> None:
    async with Emulator(render_backend=None, render_seconds=0.01) as emu, raw_client(emu) as cli:
        await cli.login()
        session_id = await edited_session(cli)
        assert emu.render_backend is None
        job = (await cli.render(session_id)).data
        seen = await finish(cli, job["render_id"])
        assert seen[-1]["status"] == "failed"
        assert seen[-1]["error"] == NO_RENDERER
        assert "download_url" not in seen[-1]
        assert (await cli.credits())["frozen"] == 0
        assert (await cli.credits())["available"] == 99  # only the chat turn was charged


async def test_render_fail_fault_releases_the_credits(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    before = await raw.credits()
    emu.faults.add("POST /api/render/proxy/lambda", render_fail="GPU node lost")
    job = (await raw.render(session_id)).data
    assert job["status"] == "queued"
    seen = await finish(raw, job["render_id"])
    assert (seen[-1]["status"], seen[-1]["error"]) == ("failed", "GPU node lost")
    assert await raw.credits() == before


async def test_a_backend_error_fails_the_job(raw: Raw, emu: Emulator, backend: FakeBackend) -> None:
    backend.fail = "encoder exploded"
    session_id = await edited_session(raw)
    seen = await finish(raw, (await raw.render(session_id)).data["render_id"])
    assert seen[-1]["error"] == "encoder exploded"


async def test_empty_timeline_and_unknown_media_fail(raw: Raw) -> None:
    session_id = await raw.new_session()
    empty = await finish(raw, (await raw.render(session_id)).data["render_id"])
    assert "nothing to render" in empty[-1]["error"]
    draft = {"t": [{"id": "v", "tt": 0, "sg": [{"id": "s", "mid": "med_ghost", "st": 0, "d": 1}]}]}
    ghost = await finish(raw, (await raw.render(session_id, draft=draft)).data["render_id"])
    assert "med_ghost" in ghost[-1]["error"]


async def test_the_same_client_render_id_is_the_same_job(raw: Raw) -> None:
    session_id = await edited_session(raw)
    first = await raw.render(session_id, render_id="r-1")
    again = await raw.render(session_id, render_id="r-1")
    assert first.data["render_id"] == again.data["render_id"]
    assert (await raw.credits())["frozen"] + (await raw.credits())["available"] == 99
    other = await raw.render(session_id, render_id="r-2")
    assert other.data["render_id"] != first.data["render_id"]


async def test_not_enough_credits_is_2001_with_a_link(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    emu.set_credits(raw.token or "", available=9)
    reply = await raw.render(session_id)
    assert (reply.status, reply.code) == (200, 2001)
    assert reply.data["bind_url"].startswith(f"{emu.url}/bind?bind=")
    assert "10 needed, 9 available" in reply.message


async def test_registered_accounts_get_no_link_on_2001(raw: Raw, emu: Emulator) -> None:
    emu.add_token("tok_reg", credits=0, registered=True)
    raw.token = "tok_reg"
    session_id = await raw.new_session()
    reply = await raw.render(session_id)
    assert reply.code == 2001
    assert reply.data is None
    assert "top up" in reply.message


async def test_missing_attribution_headers_block_export_with_402(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    for missing in ATTRIBUTION:
        headers = {k: v for k, v in ATTRIBUTION.items() if k != missing}
        headers["Authorization"] = f"Bearer {raw.token}"
        reply = await raw.call(
            "POST",
            "/api/render/proxy/lambda",
            json_body={"session_id": session_id},
            raw_headers=headers,
        )
        assert reply.status == 402, missing
        assert missing in reply.message
    wrong = {**ATTRIBUTION, "X-Skill-Platform": "vscode", "Authorization": f"Bearer {raw.token}"}
    reply = await raw.call(
        "POST", "/api/render/proxy/lambda", json_body={"session_id": session_id}, raw_headers=wrong
    )
    assert reply.status == 402
    # Other routes do not check them (as the service does not).
    credits = await raw.call(
        "GET", "/api/credits/balance/simple", raw_headers={"Authorization": f"Bearer {raw.token}"}
    )
    assert credits.status == 200
    assert not emu.renders


async def test_plan_blocks_anonymous_export(backend: FakeBackend) -> None:
    async with Emulator(render_backend=backend, export_requires_plan=True) as emu:
        async with raw_client(emu) as raw:
            await raw.login("anon")
            session_id = await raw.new_session()
            blocked = await raw.render(session_id)
            assert blocked.status == 402
            assert "register or upgrade" in blocked.message
            emu.register("anon")
            assert (await raw.render(session_id)).status == 200


async def test_bad_render_options_are_400(raw: Raw) -> None:
    session_id = await raw.new_session()
    assert (await raw.render(session_id, resolution="4k")).status == 400
    assert (await raw.render(session_id, aspect="4:3")).status == 400
    assert (await raw.render(session_id, draft=[1, 2])).status == 400
    assert (await raw.call("POST", "/api/render/proxy/lambda", json_body={})).status == 400
    ok = await raw.render(session_id, resolution=1080, aspect="1:1")
    assert (ok.data["width"], ok.data["height"]) == (1080, 1080)


async def test_jobs_belong_to_their_account(raw: Raw, emu: Emulator) -> None:
    session_id = await edited_session(raw)
    render_id = (await raw.render(session_id)).data["render_id"]
    async with raw_client(emu) as other:
        await other.login("other")
        reply = await other.render_status(render_id)
        assert (reply.status, reply.code) == (404, 4004)
    await emu.wait_for_renders()
    assert emu.renders[render_id].status == "completed"


async def completed_download(raw: Raw, emu: Emulator) -> str:
    session_id = await edited_session(raw)
    render_id = (await raw.render(session_id)).data["render_id"]
    await emu.wait_for_renders()
    url: str = (await raw.render_status(render_id)).data["download_url"]
    return url


async def test_downloads_need_no_token_and_support_ranges(
    raw: Raw, emu: Emulator, backend: FakeBackend
) -> None:
    url = await completed_download(raw, emu)
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


async def test_downloads_on_a_cdn_host(backend: FakeBackend) -> None:
    async with Emulator(render_backend=backend, render_seconds=0.01, cdn_host="localhost") as emu:
        assert emu.cdn_url == f"http://localhost:{emu.port}"
        async with raw_client(emu) as raw:
            await raw.login()
            url = await completed_download(raw, emu)
            assert url.startswith(emu.cdn_url + "/downloads/")
            async with raw.http.get(url, headers={"Authorization": "Bearer leaked"}) as resp:
                assert await resp.read() == backend.payload
        [download] = emu.requests.matching("GET", "/downloads/*")
        assert download.host == f"localhost:{emu.port}"
        assert download.has_token  # recorded, so a test can catch a leak
        assert download.headers["Authorization"] == "Bearer ***"


async def test_drop_fault_on_a_download(raw: Raw, emu: Emulator) -> None:
    url = await completed_download(raw, emu)
    emu.faults.add("GET /downloads/{name}", drop=True)
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with raw.http.get(url) as resp:
            async for chunk in resp.content.iter_any():
                received += chunk
    assert 0 < len(received) < int(resp.headers["Content-Length"])
