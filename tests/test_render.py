"""Export, wait, resume and download, against the emulator over real sockets."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from tests.render_doubles import BytesRenderBackend
from tests.scripted import ScriptedServer, envelope

# A minimal ISO-BMFF header: enough for the upload checks; the test backend never decodes it.
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)


def wire(media_id: str) -> dict[str, Any]:
    return {"t": [{"tt": 0, "sg": [{"mid": media_id, "st": 0, "d": 1000}]}], "d": 1000}


def tiny_wav(seconds: float = 2.0) -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(int(16000 * seconds)))
    return buffer.getvalue()


async def new_session(nemo: NemoClient) -> tuple[nemo_sync.Session, dict[str, Any]]:
    session = await nemo.create_session()
    media = await session.upload(CLIP, filename="clip.mp4")
    return session, wire(media.id)


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, so downloads take several chunks


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        render_backend=BytesRenderBackend(PAYLOAD), render_seconds=0.2, cdn_host="localhost"
    ) as emulator:
        yield emulator


@pytest.fixture
async def nemo(emu: Emulator, tmp_path: Path) -> AsyncIterator[NemoClient]:
    async with NemoClient(base_url=emu.url, home=tmp_path / "home") as client:
        yield client


async def test_export_wait_download_from_the_cdn_without_the_token(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    seen: list[nemo_sync.RenderResult] = []
    result = await job.wait(poll_interval=0.02, on_progress=seen.append)
    assert result.ok
    assert result.download_url is not None
    assert result.download_url.startswith("http://localhost:")
    assert [r.status for r in seen][-1] == "completed"
    assert seen == sorted(seen, key=lambda r: r.progress or 0)  # progress only grows
    got: list[tuple[int, int | None]] = []
    path = await job.download(tmp_path, on_progress=lambda n, total: got.append((n, total)))
    assert path.read_bytes() == PAYLOAD
    assert path.parent == tmp_path
    assert path.name == f"{job.id}.mp4"
    assert got[-1] == (len(PAYLOAD), len(PAYLOAD))
    downloads = [r for r in emu.requests if r.path.startswith("/downloads/")]
    assert downloads
    assert all("Authorization" not in r.headers for r in downloads)
    post = next(r for r in emu.requests if r.path == "/api/render/proxy/lambda")
    assert post.headers["Authorization"] == "Bearer ***"  # the API host does get it
    records = await nemo.jobs()
    assert [(r.id, r.status, r.output_path) for r in records] == [(job.id, "completed", str(path))]
    assert list(tmp_path.glob(".*.part")) == []


async def test_export_sends_the_current_draft_and_a_client_render_id(
    emu: Emulator, nemo: NemoClient
) -> None:
    session, _ = await new_session(nemo)
    await session.upload(tiny_wav(), filename="beat.wav")
    await session.send("sync the background music to my video")
    assert (await session.state()).draft.tracks  # the agent built a timeline
    job = await session.export()
    body_sizes = [r.body_size for r in emu.requests if r.path == "/api/render/proxy/lambda"]
    assert body_sizes[0] > 0
    await job.wait(poll_interval=0.02)
    assert (await nemo.jobs())[0].session_id == session.id


async def test_a_failed_render_raises_with_the_reason(emu: Emulator, nemo: NemoClient) -> None:
    emu.faults.add("POST /api/render/proxy/lambda", render_fail="the GPU node fell over")
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    with pytest.raises(nemo_sync.RenderFailedError, match="GPU node fell over") as caught:
        await job.wait(poll_interval=0.02)
    assert caught.value.job_id == job.id
    assert (await nemo.jobs())[0].status == "failed"
    credits = await nemo.credits()
    assert credits.frozen == 0  # released


async def test_a_deadline_raises_but_the_job_goes_on(emu: Emulator, nemo: NemoClient) -> None:
    emu.config.render_seconds = 1.0
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    with pytest.raises(nemo_sync.RenderTimeoutError, match=r"render_job\(") as caught:
        await job.wait(poll_interval=0.02, timeout=0.1)
    assert caught.value.job_id == job.id
    result = await nemo.render_job(job.id).wait(poll_interval=0.05, timeout=10)
    assert result.ok


async def test_poll_faults_are_ridden_out(emu: Emulator, nemo: NemoClient) -> None:
    emu.faults.add("GET /api/render/proxy/lambda/{render_id}", status=503, times=4)
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    assert (await job.wait(poll_interval=0.02)).ok


async def test_a_dropped_download_resumes_and_completes(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    await job.wait(poll_interval=0.02)
    emu.faults.add("GET /downloads/*", drop=True, times=1)
    path = await job.download(tmp_path / "out.mp4")
    assert path.read_bytes() == PAYLOAD
    ranges = [r.headers.get("Range") for r in emu.requests if r.path.startswith("/downloads/")]
    assert ranges[0] is None
    assert ranges[1] is not None
    assert ranges[1].startswith("bytes=")


async def test_an_empty_timeline_is_refused_before_any_request(
    emu: Emulator, nemo: NemoClient
) -> None:
    session = await nemo.create_session()
    before = len(emu.requests)
    with pytest.raises(nemo_sync.NothingToExportError, match="Generate or edit first"):
        await session.export()  # the new session's timeline is empty
    assert not [r for r in emu.requests[before:] if r.path == "/api/render/proxy/lambda"]


async def test_export_is_free_even_with_no_credits(emu: Emulator, nemo: NemoClient) -> None:
    """[V]: export is free, so it is never refused (nor checked) for lack of credits."""
    session, draft = await new_session(nemo)
    emu.set_credits(nemo._auth.client_id or "", available=0)  # type: ignore[attr-defined]
    job = await session.export(draft)
    assert (await job.wait(poll_interval=0.02)).ok
    assert not [r for r in emu.requests if r.path == "/api/credits/balance/simple"]


async def test_the_download_falls_back_when_output_url_is_gone(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    session, draft = await new_session(nemo)
    job = await session.export(draft)
    await job.wait(poll_interval=0.02)
    emu.faults.add("GET /downloads/{name}", status=410)
    path = await job.download(tmp_path)
    assert path.read_bytes() == PAYLOAD
    fallback = [r for r in emu.requests if r.path.endswith(f"/{job.id}/download")]
    assert fallback
    assert fallback[0].headers["Authorization"] == "Bearer ***"


_RESUME = """
import asyncio, json, sys
from nemo_sync import NemoClient

async def main():
    async with NemoClient(base_url=sys.argv[1], home=sys.argv[2]) as nemo:
        pending = await nemo.jobs(include_finished=False)
        result = await nemo.render_job(pending[0].id).wait(poll_interval=0.05, timeout=30)
        path = await nemo.render_job(pending[0].id).download(sys.argv[3])
        print(json.dumps({"id": pending[0].id, "status": result.status, "path": str(path)}))

asyncio.run(main())
"""


async def test_a_new_process_resumes_a_job_after_a_crash(emu: Emulator, tmp_path: Path) -> None:
    emu.config.render_seconds = 1.0
    home = tmp_path / "home"
    async with NemoClient(base_url=emu.url, home=home) as nemo:
        session, draft = await new_session(nemo)
        job = await session.export(draft)
    # The first process is gone; a second one finds the job in the store and finishes it.
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RESUME,
        emu.url,
        str(home),
        str(tmp_path / "resumed.mp4"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["id"] == job.id
    assert report["status"] == "completed"
    assert Path(report["path"]).read_bytes() == PAYLOAD


async def test_a_redirect_to_another_host_drops_the_token(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    from aiohttp import web

    cdn.reply("GET", "/files/out.mp4", lambda: web.Response(body=b"video-bytes"))
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1",
        lambda: envelope({"status": "completed", "url": "/api/render/proxy/lambda/r1/file"}),
    )
    api.reply(
        "GET",
        "/api/render/proxy/lambda/r1/file",
        lambda: web.Response(
            status=302,
            headers={"Location": f"{cdn.url.replace('127.0.0.1', 'localhost')}/files/out.mp4"},
        ),
    )
    async with NemoClient(base_url=api.url, token="secret") as nemo:
        path = await nemo.render_job("r1").download(tmp_path / "v.mp4")
    assert path.read_bytes() == b"video-bytes"
    api_file = next(s for s in api.seen if s.path.endswith("/file"))
    assert api_file.headers["Authorization"] == "Bearer secret"  # same host: allowed
    cdn_get = next(s for s in cdn.seen if s.path == "/files/out.mp4")
    assert "Authorization" not in cdn_get.headers


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://cdn.example/a/..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("https://cdn.example/v/my%20video.mp4?sig=1", "my_video.mp4"),
        ("https://cdn.example/", "render-x.mp4"),
        ("https://cdn.example/..", "render-x.mp4"),
    ],
)
def test_file_names_from_urls_are_sanitised(url: str, name: str) -> None:
    from yarl import URL

    from nemo_sync._download import safe_name

    assert safe_name(URL(url), "render-x.mp4") == name


@pytest.mark.parametrize(
    ("render_id", "name"),
    [
        ("render_1732000000000", "render_1732000000000.mp4"),  # the vendor's ids, unchanged
        ("../../etc/passwd", "etc_passwd.mp4"),
        ("a/b\\c:d", "a_b_c_d.mp4"),
        ("\u202eevil\x1b[31m", "evil_31m.mp4"),  # no bidi override or escape in a file name
        ("...", "render.mp4"),
        ("x" * 300, "x" * 100 + ".mp4"),
    ],
)
def test_render_videos_are_named_after_their_id_made_safe(render_id: str, name: str) -> None:
    from nemo_sync._render_job import video_file_name

    assert video_file_name(render_id) == name


async def test_a_downloaded_file_gets_the_usual_permissions(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    # The temporary file is private while it fills (mkstemp makes it 0600); the finished
    # video is an ordinary file, 0666 less the umask, like anything else the user saves.
    import os

    old = os.umask(0o022)
    try:
        session, draft = await new_session(nemo)
        job = await session.export(draft)
        await job.wait(poll_interval=0.02)
        path = await job.download(tmp_path / "out.mp4")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
