"""Session.upload / upload_urls / upload_many on the emulator: sources, checks, retries, batches."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from nemo_sync import NemoClient
from nemo_sync._session import Session
from nemo_sync._upload import UploadFile, media_from_reply
from nemo_sync.emulator import Emulator
from nemo_sync.errors import (
    APIResponseError,
    FileTooLargeError,
    InvalidUploadError,
    RateLimitError,
    UnsupportedFileError,
    UploadBatchError,
)
from tests.scripted import ScriptedServer, envelope

UPLOAD = "POST /api/upload-video/nemo_agent/me/{session_id}"


def mp4(size: int, seed: int = 0) -> bytes:
    """Bytes that sniff as MP4 (an ``ftyp`` box), then deterministic filler."""
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 64
    body = (block * (size // len(block) + 1))[: size - len(head)]
    return head + body


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uploads(emu: Emulator) -> list[int]:
    """The statuses of the upload requests the emulator saw."""
    return [r.status or 0 for r in emu.requests if r.path.startswith("/api/upload-video/")]


@pytest.fixture
async def session(nemo_client: NemoClient) -> Session:
    return await nemo_client.create_session()


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


# -- sources ---------------------------------------------------------------------------------


async def test_a_path_is_streamed_and_stored_intact(
    session: Session, nemo_emulator: Emulator, tmp_path: Path
) -> None:
    data = mp4(3 * 1024 * 1024 + 17)  # not a whole number of chunks
    path = tmp_path / "city timelapse.mp4"
    path.write_bytes(data)
    media = await session.upload(path)
    assert media.name == "city timelapse.mp4"
    assert media.size == len(data)
    assert media.kind == "video"
    record = nemo_emulator.media_record(media)
    assert record.sha256 == sha(data)
    request = next(r for r in nemo_emulator.requests if r.path.startswith("/api/upload"))
    assert int(request.headers["Content-Length"]) > len(data)  # the exact multipart length
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert (await session.state()).media == (media,)


async def test_str_paths_and_user_dirs_work(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.mp4").write_bytes(mp4(1000))
    assert (await session.upload(str(tmp_path / "a.mp4"))).size == 1000
    assert (await session.upload("~/a.mp4")).name == "a.mp4"


async def test_bytes_need_a_filename_and_carry_it(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(5000)
    with pytest.raises(InvalidUploadError, match="filename="):
        await session.upload(data)
    media = await session.upload(bytearray(data), filename="clip.mp4")
    assert nemo_emulator.media_record(media).sha256 == sha(data)
    assert uploads(nemo_emulator) == [200]


async def test_a_file_object_is_read_from_its_position(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(200_000)
    buffer = io.BytesIO(b"junk before the file" + data)
    buffer.seek(len(b"junk before the file"))
    media = await session.upload(buffer, filename="clip.mp4")
    assert media.size == len(data)
    assert nemo_emulator.media_record(media).sha256 == sha(data)


async def test_an_open_file_gives_its_own_name(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 2000)
    with path.open("rb") as f:
        media = await session.upload(f)
    assert (media.name, media.kind) == ("song.wav", "audio")


async def test_a_stream_needs_size_and_filename(session: Session, nemo_emulator: Emulator) -> None:
    data = mp4(250_000)
    with pytest.raises(InvalidUploadError, match="filename= and size="):
        await session.upload(chunks_of(data), filename="clip.mp4")
    media = await session.upload(chunks_of(data), filename="clip.mp4", size=len(data))
    assert nemo_emulator.media_record(media).sha256 == sha(data)


async def test_an_unseekable_file_object_is_streamed(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(50_000)
    read_end, write_end = os.pipe()
    os.write(write_end, data)  # fits the pipe's buffer (64 KiB)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        with pytest.raises(InvalidUploadError, match=r"cannot seek.*size="):
            await session.upload(pipe, filename="clip.mp4")
        media = await session.upload(pipe, filename="clip.mp4", size=len(data))
    assert nemo_emulator.media_record(media).sha256 == sha(data)


async def test_the_content_type_follows_the_format_or_the_caller(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.reply("POST", "/api/upload-video/nemo_agent/me/s1", lambda: envelope({"media_id": "m"}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        session = nemo.session("s1")
        await session.upload(b"ID3" + b"\x00" * 100, filename="song.mp3")
        await session.upload(mp4(100), filename="clip.mov", content_type="video/x-custom")
    first, second = (s.body for s in api.seen)
    assert b"Content-Type: audio/mpeg\r\n" in first
    assert b"Content-Type: video/x-custom\r\n" in second


# -- local checks: nothing is sent -----------------------------------------------------------


async def test_local_checks_send_nothing(
    session: Session, nemo_emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "fake.mp4").write_bytes(b"%PDF-1.5\n" + b"\x00" * 100)
    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "pipe.mp4")
    cases: list[tuple[object, type[Exception], str]] = [
        (tmp_path / "missing.mp4", InvalidUploadError, "no such file"),
        ("https://example.com/a.mp4", InvalidUploadError, "upload_urls"),
        (tmp_path / "folder.mp4", InvalidUploadError, "is a folder"),
        (tmp_path / "pipe.mp4", InvalidUploadError, "not a regular file"),
        (tmp_path / "empty.mp4", InvalidUploadError, "is empty"),
        (tmp_path / "notes.txt", UnsupportedFileError, "'.txt' files are not accepted"),
        (tmp_path / "fake.mp4", UnsupportedFileError, "PDF document"),
        (io.StringIO("text"), InvalidUploadError, "binary mode"),
        (12345, TypeError, "got int"),
    ]
    for source, error, words in cases:
        with pytest.raises(error, match=words):
            await session.upload(source)  # type: ignore[arg-type]
    with pytest.raises(InvalidUploadError, match="size=10 was given"):
        await session.upload(mp4(100), filename="a.mp4", size=10)
    assert uploads(nemo_emulator) == []


async def test_over_500_mb_is_refused_before_sending(
    session: Session, nemo_emulator: Emulator, tmp_path: Path
) -> None:
    big = tmp_path / "long take.mp4"
    with big.open("wb") as f:
        f.write(mp4(64))
        f.truncate(500 * 1024 * 1024 + 1)  # sparse: no disk used
    with pytest.raises(FileTooLargeError) as caught:
        await session.upload(big)
    err = caught.value
    assert (err.size, err.limit, err.status) == (500 * 1024 * 1024 + 1, 500 * 1024 * 1024, None)
    assert "500.0 MB" in err.message
    assert "Compress it" in err.message
    assert "trim it" in err.message
    assert uploads(nemo_emulator) == []


@pytest.mark.nemo_emulator(max_upload_bytes=1000)
async def test_the_services_own_limit_is_the_same_error(session: Session) -> None:
    with pytest.raises(FileTooLargeError) as caught:
        await session.upload(mp4(2000), filename="clip.mp4")
    assert caught.value.code == 4002


# -- progress --------------------------------------------------------------------------------


async def test_progress_runs_from_zero_to_exactly_the_total(session: Session) -> None:
    data = mp4(2 * 1024 * 1024 + 5)
    seen: list[tuple[int, int]] = []
    await session.upload(data, filename="clip.mp4", on_progress=lambda s, t: seen.append((s, t)))
    assert seen[0] == (0, len(data))
    assert seen[-1] == (len(data), len(data))
    sent = [s for s, _ in seen]
    assert sent == sorted(sent)
    assert len(seen) >= 3  # called per chunk, not only at the ends


async def test_an_async_progress_callback_is_awaited(session: Session) -> None:
    seen: list[int] = []

    async def on_progress(sent: int, total: int) -> None:
        await asyncio.sleep(0)
        seen.append(sent)

    await session.upload(mp4(1000), filename="clip.mp4", on_progress=on_progress)
    assert seen == [0, 1000]


async def test_a_failing_progress_callback_stops_the_upload(
    session: Session, nemo_emulator: Emulator
) -> None:
    class Stop(Exception):
        pass

    def on_progress(sent: int, total: int) -> None:
        if sent > 0:
            raise Stop(sent)

    with pytest.raises(Stop):
        await session.upload(mp4(3 * 1024 * 1024), filename="clip.mp4", on_progress=on_progress)
    assert nemo_emulator.sessions[session.id].media == {}


# -- retries ---------------------------------------------------------------------------------


async def test_a_retry_reads_the_file_again_from_the_start(
    session: Session, nemo_emulator: Emulator, tmp_path: Path, nemo_waits: list[float]
) -> None:
    data = mp4(300_000)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    buffer = io.BytesIO(data)
    seen: list[int] = []
    for source in (path, buffer, data):
        nemo_emulator.faults.add(UPLOAD, status=429, retry_after=2)
        name = {"filename": "clip.mp4"} if not isinstance(source, Path) else {}
        media = await session.upload(source, on_progress=lambda s, t: seen.append(s), **name)  # type: ignore[arg-type]
        assert nemo_emulator.media_record(media).sha256 == sha(data)
    assert uploads(nemo_emulator) == [429, 200] * 3
    assert nemo_waits == [2.0] * 3
    assert seen.count(0) == 6  # each attempt starts its progress again


async def test_an_expired_anonymous_token_is_renewed_and_the_file_sent_again(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(100_000)
    nemo_emulator.clock.advance(days=7)  # the token expires: 1001, and a new one may be had
    media = await session.upload(data, filename="clip.mp4")
    assert nemo_emulator.media_record(media).sha256 == sha(data)
    assert uploads(nemo_emulator) == [401, 200]


async def test_a_stream_is_not_retried(session: Session, nemo_emulator: Emulator) -> None:
    data = mp4(10_000)
    nemo_emulator.faults.add(UPLOAD, status=429, retry_after=1)
    with pytest.raises(RateLimitError):
        await session.upload(chunks_of(data), filename="clip.mp4", size=len(data))
    assert uploads(nemo_emulator) == [429]


async def test_a_stream_of_the_wrong_length_fails_clearly(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(10_000)
    with pytest.raises(InvalidUploadError, match="more bytes than size=9000"):
        await session.upload(chunks_of(data), filename="clip.mp4", size=9000)
    with pytest.raises(InvalidUploadError, match=r"fewer bytes than size=11000 \(10000 so far\)"):
        await session.upload(chunks_of(data), filename="clip.mp4", size=11000)
    assert nemo_emulator.sessions[session.id].media == {}


# -- replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"media_id": "m1", "name": "clip.mp4", "size": 4},
        {"id": "m1", "name": "clip.mp4"},
        {"media": {"mediaId": "m1", "name": "clip.mp4"}},
        {"media": [{"media_id": "m1"}], "media_id": "m1"},
        [{"media_id": "m1", "name": "clip.mp4"}],
    ],
)
def test_media_from_reply_is_tolerant(data: object) -> None:
    (media,) = media_from_reply(data, "POST /x")
    assert media.id == "m1"


@pytest.mark.parametrize("data", [None, [], {}, {"media": []}, "m1"])
def test_media_from_reply_names_the_endpoint_when_it_holds_no_media(data: object) -> None:
    with pytest.raises(APIResponseError) as caught:
        media_from_reply(data, "POST /x")
    assert caught.value.endpoint == "POST /x"


# -- upload_urls -----------------------------------------------------------------------------


async def test_upload_urls_has_the_service_fetch_them(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = mp4(20_000)
    first = await session.upload(data, filename="clip.mp4")
    url = first.url
    assert url is not None
    fetched = await session.upload_urls([url, url])
    assert [m.name for m in fetched] == [url.rsplit("/", 1)[1]] * 2
    assert len({m.key for m in fetched}) == 2  # two media, though no ids [R]
    assert {nemo_emulator.media_record(m).sha256 for m in fetched} == {sha(data)}


async def test_upload_urls_checks_the_urls_first(session: Session, nemo_emulator: Emulator) -> None:
    with pytest.raises(InvalidUploadError, match="not one string"):
        await session.upload_urls("https://example.com/a.mp4")
    with pytest.raises(InvalidUploadError, match="at least one URL"):
        await session.upload_urls([])
    with pytest.raises(InvalidUploadError, match="not an http"):
        await session.upload_urls(["ftp://example.com/a.mp4"])
    with pytest.raises(UnsupportedFileError, match=r"https://example.com/report\.pdf: "):
        await session.upload_urls(["https://example.com/a.mp4", "https://example.com/report.pdf"])
    assert uploads(nemo_emulator) == []


# -- upload_many -----------------------------------------------------------------------------


async def test_upload_many_keeps_input_order_and_reports_the_batch(
    session: Session, nemo_emulator: Emulator, tmp_path: Path
) -> None:
    sources = [mp4(300_000, seed=n) for n in range(4)]
    (tmp_path / "zero.mp4").write_bytes(sources[0])
    seen: list[tuple[int, int]] = []
    media = await session.upload_many(
        [
            tmp_path / "zero.mp4",
            UploadFile(sources[1], filename="one.mp4"),
            UploadFile(io.BytesIO(sources[2]), filename="two.mp4"),
            UploadFile(chunks_of(sources[3]), filename="three.mp4", size=len(sources[3])),
        ],
        concurrency=2,
        on_progress=lambda s, t: seen.append((s, t)),
    )
    assert [m.name for m in media] == ["zero.mp4", "one.mp4", "two.mp4", "three.mp4"]
    assert [nemo_emulator.media_record(m).sha256 for m in media] == [sha(s) for s in sources]
    total = sum(len(s) for s in sources)
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen)
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)


async def test_upload_many_runs_at_most_concurrency_at_once(api: ScriptedServer) -> None:
    running = peak = 0

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return envelope({"media_id": f"m{len(api.seen)}"})

    api.on("POST", "/api/upload-video/nemo_agent/me/s1", slow)
    async with NemoClient(base_url=api.url, token="t") as nemo:
        files = [UploadFile(mp4(1000), filename=f"{n}.mp4") for n in range(6)]
        media = await nemo.session("s1").upload_many(files, concurrency=2)
    assert len(media) == 6
    assert peak == 2


async def test_upload_many_checks_everything_before_sending(
    session: Session, nemo_emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "good.mp4").write_bytes(mp4(1000))
    with pytest.raises(InvalidUploadError, match=r"missing\.mp4: no such file"):
        await session.upload_many([tmp_path / "good.mp4", tmp_path / "missing.mp4"])
    with pytest.raises(ValueError, match="concurrency"):
        await session.upload_many([tmp_path / "good.mp4"], concurrency=0)
    with pytest.raises(TypeError, match="for one file use upload"):
        await session.upload_many(tmp_path / "good.mp4")  # type: ignore[arg-type]
    assert uploads(nemo_emulator) == []
    assert await session.upload_many([]) == []


async def broken_stream(data: bytes) -> AsyncIterator[bytes]:
    yield data[:100]
    raise OSError("the camera went away")


async def test_a_failure_lets_running_uploads_finish_and_sends_no_more(
    session: Session, nemo_emulator: Emulator
) -> None:
    data = [mp4(50_000, seed=n) for n in range(4)]
    items = [
        UploadFile(broken_stream(data[0]), filename="zero.mp4", size=len(data[0])),
        UploadFile(data[1], filename="one.mp4"),
        UploadFile(data[2], filename="two.mp4"),
        UploadFile(data[3], filename="three.mp4"),
    ]
    with pytest.raises(UploadBatchError) as caught:
        await session.upload_many(items, concurrency=3)
    err = caught.value
    assert set(err.errors) == {0}
    assert isinstance(err.errors[0], InvalidUploadError)
    assert "camera went away" in str(err.errors[0])
    assert err.__cause__ is err.errors[0]
    assert err.results[0] is None
    assert [m.name for m in err.results[1:3] if m is not None] == ["one.mp4", "two.mp4"]
    assert err.not_sent == (3,)
    assert "1 of 4 uploads failed (first: zero.mp4:" in str(err)
    assert "1 not sent; 2 completed" in str(err)
    assert len(nemo_emulator.sessions[session.id].media) == 2
