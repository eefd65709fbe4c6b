"""Emulator: uploads (multipart streamed to disk, JSON URLs), formats, size limit, media URLs."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tracemalloc
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from nemo_sync._contract import url_upload_body
from nemo_sync.emulator import Emulator
from tests.emulator_raw import Raw, raw_client


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def stored_files(emu: Emulator) -> list[str]:
    folder = emu.data_dir / "media"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(max_upload_bytes=64 * 1024) as emulator:
        yield emulator


@pytest.fixture
async def raw(emu: Emulator) -> AsyncIterator[Raw]:
    async with raw_client(emu) as client:
        await client.login()
        yield client


async def test_multipart_upload_is_stored_hashed_and_probed(raw: Raw, emu: Emulator) -> None:
    """[R]: {"files": [{filename, file_type, cdn_url, duration (s), ..., hash}],
    "session_state_applied": true}, with no id."""
    session_id = await raw.new_session()
    content = wav_bytes(2.5)
    reply = await raw.upload(session_id, "Lo-fi.wav", content)
    assert reply.status == 200, reply.body
    assert reply.data["session_state_applied"] is True
    [media] = reply.data["files"]
    assert media == {
        "filename": "Lo-fi.wav",
        "file_type": "audio",
        "cdn_url": media["cdn_url"],
        "duration": 2.5,
        "hash": hashlib.sha256(content).hexdigest(),
    }
    record = emu.media_record(media["cdn_url"])
    assert record.sha256 == media["hash"]
    assert record.path.read_bytes() == content
    state = await raw.state(session_id)
    assert state.data["state"]["video_infos"] == [media]  # shaped like the upload's files


async def test_the_skill_style_upload_reply_has_ids_and_v2_fields() -> None:
    """SKILL.md's style (v2's guess, still read by clients): one file is the object itself."""
    async with Emulator(reply_style="skill") as emu, raw_client(emu) as raw:
        await raw.login()
        session_id = await raw.new_session()
        content = wav_bytes(2.5)
        reply = await raw.upload(session_id, "Lo-fi.wav", content)
        assert reply.status == 200, reply.body
        media = reply.data
        assert media["file_id"].startswith("med_")
        assert media["filename"] == "Lo-fi.wav"
        assert media["kind"] == media["type"] == "audio"
        assert media["size"] == len(content)
        assert media["sha256"] == hashlib.sha256(content).hexdigest()
        assert media["duration_ms"] == 2500
        assert media["duration_estimated"] is False
        assert emu.sessions[session_id].media[media["file_id"]].sha256 == media["sha256"]
        state = await raw.state(session_id)
        assert state.data["state"]["video_infos"] == [media]


async def test_several_files_parts_come_back_as_a_files_list(raw: Raw, emu: Emulator) -> None:
    """[R]: "Multiple files can be uploaded in one request"."""
    session_id = await raw.new_session()
    form = aiohttp.FormData()
    form.add_field("files", b"\x00" * 10, filename="a.mp4")
    form.add_field("note", "ignored, as a model ignores unknown fields")
    form.add_field("files", wav_bytes(0.5), filename="b.wav")
    reply = await raw.call("POST", f"/api/upload-video/nemo_agent/me/{session_id}", data=form)
    assert reply.status == 200, reply.body
    files = reply.data["files"]
    assert [(f["filename"], f["file_type"]) for f in files] == [
        ("a.mp4", "video"),
        ("b.wav", "audio"),
    ]
    records = list(emu.sessions[session_id].media.values())
    assert records == [emu.media_record(f["cdn_url"]) for f in files]
    assert records[0].duration_estimated is True
    assert files[0]["duration"] == 10.0


async def test_a_v1_file_field_is_422_with_a_detail(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    form = aiohttp.FormData()
    form.add_field("file", b"\x00" * 100, filename="clip.mp4")
    reply = await raw.call("POST", f"/api/upload-video/nemo_agent/me/{session_id}", data=form)
    assert reply.status == 422
    assert reply.body == {
        "detail": [
            {"type": "missing", "loc": ["body", "files"], "msg": "Field required", "input": None}
        ]
    }
    assert emu.sessions[session_id].media == {}
    assert stored_files(emu) == []
    not_a_form = await raw.call(
        "POST",
        f"/api/upload-video/nemo_agent/me/{session_id}",
        data=b"abc",
        headers={"Content-Type": "text/plain"},
    )
    assert (not_a_form.status, not_a_form.missing_fields()) == (422, ["files"])
    no_session = await raw.call("POST", "/api/upload-video/nemo_agent/me/", data=b"")
    assert no_session.status in (404, 405)  # v2 has the session in the path only


async def test_unsupported_format_is_4001_and_lists_formats(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    reply = await raw.upload(session_id, "notes.txt", b"hello")
    assert (reply.status, reply.code) == (400, 4001)
    assert "mp4" in reply.message
    assert "wav" in reply.message
    assert emu.sessions[session_id].media == {}
    assert stored_files(emu) == []


async def test_past_the_limit_is_4002_and_nothing_is_kept(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    limit = emu.config.max_upload_bytes
    exact = await raw.upload(session_id, "exact.mp3", b"\x01" * limit)
    assert exact.status == 200, exact.body
    over = await raw.upload(session_id, "big.mp3", b"\x01" * (limit + 1))
    assert (over.status, over.code) == (413, 4002)
    assert str(limit) in over.message
    assert len(emu.sessions[session_id].media) == 1
    assert stored_files(emu) == [emu.media_record(exact.data["files"][0]["cdn_url"]).path.name]


async def test_a_big_upload_does_not_sit_in_memory(raw: Raw, tmp_path: Path) -> None:
    async with Emulator(max_upload_bytes=64 * 1024 * 1024) as emu, raw_client(emu) as big:
        await big.login()
        session_id = await big.new_session()
        source = tmp_path / "big.mp4"
        size = 24 * 1024 * 1024
        with source.open("wb") as f:
            for _ in range(size // (1024 * 1024)):
                f.write(os.urandom(1024 * 1024))
        tracemalloc.start()
        try:
            with source.open("rb") as f:
                form = aiohttp.FormData()
                form.add_field("files", f, filename="big.mp4")
                reply = await big.call(
                    "POST", f"/api/upload-video/nemo_agent/me/{session_id}", data=form
                )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply.status == 200, reply.body
        assert emu.media_record(reply.data["files"][0]["cdn_url"]).size == size
        assert peak < 8 * 1024 * 1024, f"peak Python memory {peak} bytes for a {size}-byte upload"


@pytest.fixture
async def files_server(tmp_path: Path) -> AsyncIterator[str]:
    """Another host serving files, for JSON URL uploads."""
    (tmp_path / "song.wav").write_bytes(wav_bytes(1.0))
    (tmp_path / "huge.mp4").write_bytes(b"\x00" * (64 * 1024 + 1))
    app = web.Application()
    app.router.add_static("/files", tmp_path)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/files"
    await runner.cleanup()


async def test_json_url_upload_fetches_the_file(
    raw: Raw, emu: Emulator, files_server: str, tmp_path: Path
) -> None:
    session_id = await raw.new_session()
    url = f"{files_server}/song.wav"
    reply = await raw.call(
        "POST", f"/api/upload-video/nemo_agent/me/{session_id}", json_body=url_upload_body([url])
    )
    assert reply.status == 200, reply.body
    [media] = reply.data["files"]
    assert media["filename"] == "song.wav"
    assert media["duration"] == 1.0
    assert media["hash"] == hashlib.sha256((tmp_path / "song.wav").read_bytes()).hexdigest()
    record = emu.media_record(media["cdn_url"])
    assert record.source_url == url
    assert list(emu.sessions[session_id].media.values()) == [record]


async def test_a_url_upload_without_source_type_is_422(
    raw: Raw, emu: Emulator, files_server: str
) -> None:
    session_id = await raw.new_session()
    path = f"/api/upload-video/nemo_agent/me/{session_id}"
    v1 = {"urls": [f"{files_server}/song.wav"]}
    reply = await raw.call("POST", path, json_body=v1)
    assert reply.status == 422
    assert reply.code is None
    assert reply.detail == [
        {"type": "missing", "loc": ["body", "source_type"], "msg": "Field required", "input": v1}
    ]
    wrong = await raw.call("POST", path, json_body={**v1, "source_type": "file"})
    assert wrong.status == 422
    assert [(i["type"], i["loc"]) for i in wrong.detail] == [
        ("literal_error", ["body", "source_type"])
    ]
    assert emu.sessions[session_id].media == {}


async def test_json_url_upload_errors(raw: Raw, files_server: str) -> None:
    session_id = await raw.new_session()
    path = f"/api/upload-video/nemo_agent/me/{session_id}"
    unsupported = await raw.call(
        "POST", path, json_body=url_upload_body([f"{files_server}/notes.txt"])
    )
    assert unsupported.code == 4001
    missing = await raw.call(
        "POST", path, json_body=url_upload_body([f"{files_server}/absent.mp3"])
    )
    assert (missing.status, missing.code) == (400, 4000)
    assert "404" in missing.message
    too_big = await raw.call("POST", path, json_body=url_upload_body([f"{files_server}/huge.mp4"]))
    assert too_big.code == 4002
    not_http = await raw.call("POST", path, json_body=url_upload_body(["ftp://x/a.mp3"]))
    assert not_http.status == 400
    empty = await raw.call("POST", path, json_body=url_upload_body([]))
    assert (empty.status, empty.detail[0]["type"]) == (422, "too_short")
    not_strings = await raw.call("POST", path, json_body={"urls": [1], "source_type": "url"})
    assert (not_strings.status, not_strings.detail[0]["loc"]) == (422, ["body", "urls", 0])
    no_urls = await raw.call("POST", path, json_body={"source_type": "url"})
    assert no_urls.missing_fields() == ["urls"]


async def test_media_url_serves_the_upload_with_ranges(raw: Raw) -> None:
    session_id = await raw.new_session()
    content = bytes(range(256)) * 4
    reply = await raw.upload(session_id, "still.png", content)
    [media] = reply.data["files"]
    assert media["file_type"] == "image"
    assert "duration" not in media  # an image has no length
    url = media["cdn_url"]
    async with raw.http.get(url) as whole:
        assert whole.status == 200
        assert await whole.read() == content
    async with raw.http.get(url, headers={"Range": "bytes=10-19"}) as part:
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
        assert await part.read() == content[10:20]


async def test_a_client_that_leaves_mid_upload_is_not_an_emulator_error(
    raw: Raw, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await raw.new_session()

    async def body() -> AsyncIterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=files; filename=a.mp4\r\n\r\n"
        yield b"\x00" * 1000
        raise OSError("the client went away")

    with pytest.raises(aiohttp.ClientError):
        await raw.http.post(
            f"{emu.url}/api/upload-video/nemo_agent/me/{session_id}",
            data=body(),
            headers={**raw.headers(), "Content-Type": "multipart/form-data; boundary=b"},
        )
    for _ in range(100):  # the server notices the lost connection on its own time
        if emu.requests[-1].status is None and stored_files(emu) == []:
            break
        await asyncio.sleep(0.01)
    assert "emulator error" not in caplog.text
    assert emu.requests[-1].status is None
    assert stored_files(emu) == []
    assert emu.sessions[session_id].media == {}
