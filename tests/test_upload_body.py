"""The upload body on the wire: exact framing and length, sources read again, the stall guard."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from nemo_sync import NemoClient
from nemo_sync._upload import UploadFile, prepare, send
from nemo_sync._upload_body import (
    CHUNK_SIZE,
    FileSource,
    InvalidUploadError,
    MultipartBody,
    PathSource,
    Prepared,
    Progress,
    StreamSource,
    _quote_filename,
    _StallGuard,
)
from nemo_sync.errors import APITimeoutError
from tests.scripted import ScriptedServer, envelope

PATH = "/api/upload-video/nemo_agent/me/s1"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@pytest.fixture
def accept(api: ScriptedServer) -> ScriptedServer:
    api.reply("POST", PATH, lambda: envelope({"media_id": "m1", "name": "x"}))
    return api


def open_files(folder: Path) -> list[str]:
    """The files under ``folder`` this process has open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


async def test_the_body_is_exact_multipart_with_an_exact_length(accept: ScriptedServer) -> None:
    data = MP4_HEAD + os.urandom(900_000)  # the scripted server takes up to 1 MiB
    async with NemoClient(base_url=accept.url, token="t") as nemo:
        await nemo.session("s1").upload(data, filename='Ünïcode "cut".mp4')
    (seen,) = accept.seen
    content_type = seen.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=nemo-sync-")
    boundary = content_type.split("boundary=", 1)[1].encode()
    assert int(seen.headers["Content-Length"]) == len(seen.body)
    assert "Transfer-Encoding" not in seen.headers
    part_headers = (
        b'Content-Disposition: form-data; name="files"; '
        b'filename="\xc3\x9cn\xc3\xafcode %22cut%22.mp4"\r\n'  # UTF-8, quotes as browsers do
        b"Content-Type: video/mp4\r\n\r\n"
    )
    expected = b"--" + boundary + b"\r\n" + part_headers + data + b"\r\n--" + boundary + b"--\r\n"
    assert seen.body == expected


async def test_each_attempt_gets_a_fresh_boundary_and_the_whole_file(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.reply(
        "POST",
        PATH,
        lambda: envelope(None, code=429, status=429, headers={"Retry-After": "1"}),
        lambda: envelope({"media_id": "m1"}),
    )
    path = tmp_path / "clip.mp4"
    data = MP4_HEAD + os.urandom(100_000)
    path.write_bytes(data)
    async with NemoClient(base_url=api.url, token="t") as nemo:
        await nemo.session("s1").upload(path)
    first, second = api.seen
    assert first.headers["Content-Type"] != second.headers["Content-Type"]
    assert len(first.body) == len(second.body) == int(second.headers["Content-Length"])
    assert data in first.body
    assert data in second.body


async def test_a_connection_that_takes_no_data_is_given_up(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def never_reads(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"code": 0, "data": {"media_id": "m"}})

    app = web.Application()
    app.router.add_post(PATH, never_reads)
    # No lingering: the server would otherwise try for 10 s to drain the unread body.
    runner = web.AppRunner(app, access_log=None, lingering_time=0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with NemoClient(base_url=url, token="t") as nemo:
            # More than the socket buffers on both ends hold: the writes must block.
            prepared = await prepare(
                UploadFile(MP4_HEAD + bytes(64 * 1024 * 1024), filename="clip.mp4")
            )
            started = time.perf_counter()
            with pytest.raises(APITimeoutError) as caught:
                await send(nemo._api, "s1", prepared, stall_timeout=0.05)
            assert time.perf_counter() - started < 2.0
    finally:
        release.set()
        await runner.cleanup()
    message = caught.value.message
    assert "The upload of clip.mp4 stalled" in message
    assert "no data for 0.05 s" in message
    assert caught.value.endpoint == f"POST {PATH}"


async def test_an_abandoned_upload_closes_its_file(accept: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(MP4_HEAD + os.urandom(4 * CHUNK_SIZE))

    def stop_early(sent: int, total: int) -> None:
        if sent:
            raise LookupError("stop")

    async with NemoClient(base_url=accept.url, token="t") as nemo:
        with pytest.raises(LookupError, match="stop"):
            await nemo.session("s1").upload(path, on_progress=stop_early)
    for _ in range(100):  # the read in flight finishes in its thread, then the file closes
        if not open_files(tmp_path):
            break
        await asyncio.sleep(0.001)
    assert open_files(tmp_path) == []


async def test_a_file_that_changed_since_the_check_is_not_sent(
    accept: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(MP4_HEAD + bytes(1000))
    prepared = await prepare(UploadFile(path))
    with path.open("ab") as f:
        f.write(b"more")
    async with NemoClient(base_url=accept.url, token="t") as nemo:
        with pytest.raises(InvalidUploadError, match="changed since it was checked"):
            await send(nemo._api, "s1", prepared)


async def read_all(source: FileSource | PathSource | StreamSource) -> bytes:
    return b"".join([bytes(chunk) async for chunk in source.chunks()])


async def test_a_file_object_that_got_shorter_says_so() -> None:
    source = FileSource(io.BytesIO(b"x" * 10), start=2, size=20)
    with pytest.raises(InvalidUploadError, match=r"got shorter .*\(8 of 20 bytes read\)"):
        await read_all(source)


async def test_a_file_object_is_read_from_its_start_every_time(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    buffer = io.BytesIO(b"abc" + data + b"trailing bytes not part of the upload")
    source = FileSource(buffer, start=3, size=len(data))
    assert await read_all(source) == data
    assert await read_all(source) == data


async def test_a_stream_is_read_once_only() -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield b"abc"

    source = StreamSource(stream(), size=3)
    assert await read_all(source) == b"abc"
    with pytest.raises(InvalidUploadError, match="already read"):
        await read_all(source)


async def test_a_stream_of_text_is_refused() -> None:
    async def stream() -> AsyncIterator[str]:
        yield "abc"

    source = StreamSource(stream(), size=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidUploadError, match="gave str; it must give bytes"):
        await read_all(source)


class CollectingWriter:
    """Stands in for aiohttp's stream writer where no socket is involved."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, chunk: bytes | memoryview) -> None:
        self.data += chunk


async def test_a_body_is_never_sent_twice() -> None:
    prepared = Prepared(
        name="a.mp4",
        size=3,
        content_type="video/mp4",
        source=StreamSource(_one(b"abc"), size=3),
    )
    body = MultipartBody(prepared, Progress(None, 3), endpoint="POST /x", stall_timeout=1)
    assert body.size is not None
    writer = CollectingWriter()
    await body.write(writer)  # type: ignore[arg-type]
    assert len(writer.data) == body.size
    with pytest.raises(RuntimeError, match="sent twice"):
        await body.write(writer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="streamed"):
        body.decode()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_stall_guard_waits_while_data_still_flows() -> None:
    """A slow link that keeps taking data is not given up; one that stops is."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await asyncio.open_connection("127.0.0.1", port)
    peer, peer_writer = await accepted.get()
    client.transport.set_write_buffer_limits(high=1 << 30)  # keep what the kernel refuses
    client.write(bytes(32 * 1024 * 1024))  # more than the socket buffers hold
    await asyncio.sleep(0)
    assert client.transport.get_write_buffer_size() > 0
    stalled = asyncio.get_running_loop().create_future()
    started = time.perf_counter()
    guard = _StallGuard(client, 0.1, lambda: stalled.set_result(time.perf_counter()))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.02)
        await peer.readexactly(4 * 1024 * 1024)  # the link takes some data, then none
        when = await asyncio.wait_for(stalled, 1.0)
    finally:
        guard.cancel()
        client.transport.abort()
        peer_writer.transport.abort()
        server.close()
        await server.wait_closed()
    assert when - started >= 0.19  # the first look saw data flow; the second saw none
    assert client.transport.is_closing()


async def test_a_file_opened_after_its_attempt_was_cancelled_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp cancels the body writer when the reply (a 429, say) comes first. A cancelled
    # await of the open must not cancel the open itself: the thread still opens the file,
    # and nobody would close it (a ResourceWarning in CI, a leaked fd in a service).
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 1000)
    opened: list[io.BufferedReader] = []
    real_open = PathSource._open

    def slow_open(self: PathSource) -> io.BufferedReader:
        time.sleep(0.2)
        file = real_open(self)
        opened.append(file)  # type: ignore[arg-type]
        return file  # type: ignore[return-value]

    monkeypatch.setattr(PathSource, "_open", slow_open)
    source = PathSource(path, 1000)

    async def consume() -> None:
        async for _ in source.chunks():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if opened and opened[0].closed:
            break
        await asyncio.sleep(0.01)
    assert opened
    assert opened[0].closed


# -- the file name in the part's header ---------------------------------------------------------
#
# What the service reads back (FastAPI: python-multipart >= 0.0.7) is the plain ``filename``
# parameter with quoted-pairs undone (``\\`` -> ``\``); it ignores ``filename*`` (RFC 7578
# section 4.2 forbids it in form data), so none is sent and non-ASCII goes as raw UTF-8, as
# browsers send it. Control characters never reach the wire: each run becomes ``_``.

PART = b'Content-Disposition: form-data; name="files"; filename="%s"\r\n'


async def part_header(name: str) -> bytes:
    """The Content-Disposition line of the body sent for ``name``."""
    prepared = Prepared(
        name=name, size=3, content_type="video/mp4", source=StreamSource(_one(b"abc"), 3)
    )
    writer = CollectingWriter()
    await MultipartBody(prepared, Progress(None, 3), endpoint="POST /x", stall_timeout=1).write(
        writer  # type: ignore[arg-type]
    )
    head = bytes(writer.data).split(b"\r\n", 1)[1]
    return head[: head.index(b"\r\n") + 2]


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("line\nbreak \x1b[31mred\x07.mp4", b"line_break _[31mred_.mp4"),
        ("cr\r\nlf\r.mp4", b"cr_lf_.mp4"),  # a run of controls is one _
        ("tab\tnul\x00del\x7fc1\x9b.mp4", b"tab_nul_del_c1_.mp4"),  # C0, DEL and C1 alike
        ('say "hi".mp4', b"say %22hi%22.mp4"),  # as browsers and curl send a quote
        ("a\\b.mp4", b"a\\\\b.mp4"),  # a quoted-pair: read back as one backslash
        ("ends with \\", b"ends with \\\\"),  # never escapes the closing quote
        ("a;b=c.mp4", b"a;b=c.mp4"),  # inside the quotes: not a separator
        ("café 🎵.mp4", "café 🎵.mp4".encode()),  # raw UTF-8, no filename*
        ("clip\udcff.mp4", "clip\ufffd.mp4".encode()),  # undecodable bytes on disk
    ],
)
async def test_the_file_name_is_sent_safely(name: str, sent: bytes) -> None:
    assert await part_header(name) == PART % sent


async def test_a_long_name_is_cut_to_255_bytes_keeping_its_extension() -> None:
    assert await part_header("x" * 300 + ".mp4") == PART % (b"x" * 251 + b".mp4")
    # Cut between characters, never inside one: 125 two-byte letters fit in 251 bytes.
    assert await part_header("é" * 200 + ".mp4") == PART % ("é" * 125 + ".mp4").encode()
    assert await part_header("x" * 255) == PART % (b"x" * 255)  # at the limit: untouched


def test_the_name_sent_is_the_name_the_upload_reports() -> None:
    # Errors and the match against the reply's file name use the name sent, which never
    # carries a control character a terminal would act on.
    prepared = Prepared(name="a\x1b[2Jb.mp4", size=1, content_type="video/mp4", source=None)  # type: ignore[arg-type]
    assert prepared.name == "a_[2Jb.mp4"


def test_the_header_escapes_whatever_it_is_given() -> None:
    # The second line of defence: even a name that was not made safe first gives a valid
    # header line (no raw control byte, no unbalanced quote).
    assert _quote_filename('a"\\\r\n\x1b\x7f.mp4') == "a%22\\\\%0D%0A%1B%7F.mp4"
