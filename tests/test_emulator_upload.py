"""Emulator: uploads (multipart streamed to disk, JSON URLs), formats, size limit, media URLs."""

from __future__ import annotations

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
    session_id = await raw.new_session()
    content = wav_bytes(2.5)
    reply = await raw.upload(session_id, "Lo-fi.wav", content)
    assert reply.status == 200, reply.body
    media = reply.data
    assert media["name"] == "Lo-fi.wav"
    assert media["kind"] == "audio"
    assert media["size"] == len(content)
    assert media["sha256"] == hashlib.sha256(content).hexdigest()
    assert media["duration_ms"] == 2500
    assert media["duration_estimated"] is False
    assert media["media"] == [{k: v for k, v in media.items() if k != "media"}]
    record = emu.sessions[session_id].media[media["media_id"]]
    assert record.sha256 == media["sha256"]
    assert record.path.read_bytes() == content
    state = await raw.state(session_id)
    assert [m["media_id"] for m in state.data["media"]] == [media["media_id"]]


async def test_session_id_may_come_as_a_form_field(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    reply = await raw.upload(session_id, "clip.mp4", b"\x00" * 100, in_path=False)
    assert reply.status == 200, reply.body
    assert reply.data["kind"] == "video"
    assert reply.data["duration_estimated"] is True
    assert reply.data["duration_ms"] == 10_000
    assert len(emu.sessions[session_id].media) == 1
    missing = await raw.call(
        "POST", "/api/upload-video/nemo_agent/me/", data={"file": io.BytesIO(b"x")}
    )
    assert missing.status == 400


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
    assert stored_files(emu) == [emu.sessions[session_id].media[exact.data["media_id"]].path.name]


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
                form.add_field("file", f, filename="big.mp4")
                reply = await big.call(
                    "POST", f"/api/upload-video/nemo_agent/me/{session_id}", data=form
                )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply.status == 200, reply.body
        assert reply.data["size"] == size
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
        "POST", f"/api/upload-video/nemo_agent/me/{session_id}", json_body={"urls": [url]}
    )
    assert reply.status == 200, reply.body
    assert reply.data["source_url"] == url
    assert reply.data["duration_ms"] == 1000
    assert reply.data["sha256"] == hashlib.sha256((tmp_path / "song.wav").read_bytes()).hexdigest()


async def test_json_url_upload_errors(raw: Raw, files_server: str) -> None:
    session_id = await raw.new_session()
    path = "/api/upload-video/nemo_agent/me/"
    with_id = {"session_id": session_id}
    unsupported = await raw.call(
        "POST", path, json_body={"urls": [f"{files_server}/notes.txt"], **with_id}
    )
    assert unsupported.code == 4001
    missing = await raw.call(
        "POST", path, json_body={"urls": [f"{files_server}/absent.mp3"], **with_id}
    )
    assert (missing.status, missing.code) == (400, 4000)
    assert "404" in missing.message
    too_big = await raw.call(
        "POST", path, json_body={"urls": [f"{files_server}/huge.mp4"], **with_id}
    )
    assert too_big.code == 4002
    not_http = await raw.call("POST", path, json_body={"urls": ["ftp://x/a.mp3"], **with_id})
    assert not_http.status == 400
    empty = await raw.call("POST", path, json_body={"urls": [], **with_id})
    assert empty.status == 400
    wrong_type = await raw.call("POST", path, data=b"abc", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 400


async def test_media_url_serves_the_upload_with_ranges(raw: Raw) -> None:
    session_id = await raw.new_session()
    content = bytes(range(256)) * 4
    reply = await raw.upload(session_id, "still.png", content)
    assert reply.data["kind"] == "image"
    assert reply.data["duration_ms"] is None
    url = reply.data["url"]
    async with raw.http.get(url) as whole:
        assert whole.status == 200
        assert await whole.read() == content
    async with raw.http.get(url, headers={"Range": "bytes=10-19"}) as part:
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
        assert await part.read() == content[10:20]
