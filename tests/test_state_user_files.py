"""Files from the user (issue 24, item 7), with real files, from the user's side.

- A file named with a newline, ESC and BEL uploads, under a name with none of them (the
  multipart header stays valid).
- A picture too big to decode (30000x30000), or a video whose header claims 10 hours of
  something no decoder reads, is refused when the emulator analyses the upload (4001, naming
  the file and what is wrong), before any render; the render engine names such a file too.

Each case ends in one line that names the user's file and says what was done.
"""

from __future__ import annotations

import io
import shutil
import struct
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from nemo_sync import NemoClient, UnsupportedFileError
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._local import ProbeInfo, probe_media
from nemo_sync.errors import RenderFailedError
from nemo_sync.local import LocalRenderBackend, SampleMedia, make_sample_media
from nemo_sync.local._probe import (
    MAX_PICTURE_PIXELS,
    MAX_PICTURE_SIDE,
    media_problem,
    picture_problem,
    picture_size,
)
from tests.emulator_raw import Raw

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0, render_seconds=0.0)

# -- real files, made cheaply ------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_png(path: Path, width: int, height: int, *, pixels: bool = True) -> Path:
    """A real, all-black 1-bit greyscale PNG: 30000x30000 deflates to about 110 KB.

    ``pixels=False`` writes the signature and the IHDR chunk only: a reader that gets the
    size from such a file cannot be decoding the picture.
    """
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    body = b""
    if pixels:
        deflate = zlib.compressobj(9)
        row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the row's bits
        data = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
        body = _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + body)
    return path


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def write_ten_hour_mp4(path: Path) -> Path:
    """An MP4 whose ``mvhd`` says 10 hours, with no track and a junk ``mdat``."""
    mvhd = b"\x00" * 12 + struct.pack(">II", 1000, 10 * 3600 * 1000) + b"\x00" * 80
    path.write_bytes(
        _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
        + _box(b"moov", _box(b"mvhd", mvhd))
        + _box(b"mdat", b"\x00" * 4096)
    )
    return path


def write_mp4_with_junk_frames(path: Path) -> Path:
    """A real H.264 MP4 (64x48, 1 s) whose ``mdat`` was then zeroed: the header is whole,
    the stream is declared with its size, and not one frame decodes."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            picture = np.full((48, 64, 3), i * 20, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(out.getvalue())
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"mdat":
            data[pos + 8 : pos + size] = bytes(size - 8)
        pos += size
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=3.0)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_png(tmp_path_factory.mktemp("huge") / "huge.png", 30000, 30000)


def one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message, message
    assert "Traceback" not in message, message
    return message


def stored_files(emu: Emulator) -> list[Path]:
    folder = emu.data_dir / "media"
    return sorted(folder.iterdir()) if folder.exists() else []


# -- item 1: a file name with control characters --------------------------------------------


async def test_a_file_named_with_a_newline_esc_and_bel_uploads_under_a_safe_name(
    nemo_client: NemoClient, emu: Emulator, media: SampleMedia, tmp_path: Path
) -> None:
    clip = tmp_path / "line\nbreak \x1b[31mred\x07.mp4"
    shutil.copyfile(media.clips[0], clip)
    session = await nemo_client.create_session()
    uploaded = await session.upload(clip)
    # What the service returned is the name sent: each control character became "_".
    assert uploaded.name == "line_break _[31mred_.mp4"
    stored = emu.media_record(uploaded)
    assert stored.name == uploaded.name
    assert not [c for c in stored.name if unicodedata.category(c) == "Cc"]
    assert (uploaded.width, uploaded.height) == (stored.width, stored.height)
    [listed] = (await session.state()).media
    assert listed.name == uploaded.name


async def test_a_non_ascii_name_arrives_as_it_is(
    nemo_client: NemoClient, emu: Emulator, media: SampleMedia, tmp_path: Path
) -> None:
    clip = tmp_path / 'café 🎵 "live" a;b.mp4'
    shutil.copyfile(media.clips[0], clip)
    session = await nemo_client.create_session()
    uploaded = await session.upload(clip)
    # The quote goes as %22, as browsers send it; the service shows what it read.
    assert uploaded.name == "café 🎵 %22live%22 a;b.mp4"
    assert emu.media_record(uploaded).name == uploaded.name


# -- item 2: pictures and videos the renderer cannot use, refused at upload ---------------------


async def refused(
    nemo_client: NemoClient, raw: Raw, emu: Emulator, path: Path
) -> tuple[UnsupportedFileError, str]:
    """Upload ``path`` through the SDK and over plain HTTP; both must be refused with 4001,
    leaving nothing in the session or on the emulator's disk. Returns the SDK's error and
    the service's message."""
    session = await nemo_client.create_session()
    with pytest.raises(UnsupportedFileError) as caught:
        await session.upload(path)
    assert caught.value.code == 4001
    assert (await session.state()).media == ()
    session_id = await raw.new_session()
    reply = await raw.upload(session_id, path.name, path.read_bytes())
    assert (reply.status, reply.code) == (400, 4001)
    assert stored_files(emu) == []
    one_line(caught.value)
    return caught.value, reply.message


async def test_a_30000_pixel_png_is_refused_at_upload_naming_it_and_its_size(
    nemo_client: NemoClient, raw: Raw, emu: Emulator, huge_png: Path
) -> None:
    assert huge_png.stat().st_size < 200_000  # a real PNG, all 900 megapixels of it
    _, message = await refused(nemo_client, raw, emu, huge_png)
    assert message.startswith("huge.png: it is 30000x30000 pixels (900 megapixels)"), message
    assert f"at most {MAX_PICTURE_SIDE} pixels on a side" in message
    assert "Scale it down" in message
    assert str(emu.data_dir) not in message


async def test_an_mp4_that_claims_10_hours_with_no_picture_is_refused_at_upload(
    nemo_client: NemoClient, raw: Raw, emu: Emulator, tmp_path: Path
) -> None:
    video = write_ten_hour_mp4(tmp_path / "ten_hours.mp4")
    _, message = await refused(nemo_client, raw, emu, video)
    assert message.startswith(
        "ten_hours.mp4: its header says it lasts 10:00:00, but it has no video stream"
    ), message


async def test_an_mp4_whose_frames_do_not_decode_is_refused_at_upload(
    nemo_client: NemoClient, raw: Raw, emu: Emulator, tmp_path: Path
) -> None:
    video = write_mp4_with_junk_frames(tmp_path / "junk_frames.mp4")
    _, message = await refused(nemo_client, raw, emu, video)
    assert message.startswith(
        "junk_frames.mp4: its header says it lasts 0:00:01, but its 64x48 h264 video does "
        "not decode (Invalid data found when processing input)"
    ), message


async def test_the_sdk_error_says_which_file_and_why(
    nemo_client: NemoClient, huge_png: Path
) -> None:
    session = await nemo_client.create_session()
    with pytest.raises(UnsupportedFileError) as caught:
        await session.upload(huge_png)
    assert "huge.png" in str(caught.value)
    assert "30000x30000" in str(caught.value)


async def test_a_picture_at_the_limits_is_accepted(
    nemo_client: NemoClient, emu: Emulator, tmp_path: Path
) -> None:
    height = MAX_PICTURE_PIXELS // MAX_PICTURE_SIDE
    photo = write_png(tmp_path / "wide.png", MAX_PICTURE_SIDE, height)
    session = await nemo_client.create_session()
    uploaded = await session.upload(photo)
    assert (uploaded.width, uploaded.height) == (MAX_PICTURE_SIDE, height)
    assert emu.media_record(uploaded).name == "wide.png"


async def test_real_clips_music_and_pictures_still_upload(
    nemo_client: NemoClient, media: SampleMedia, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (640, 480), (200, 40, 40)).save(photo)
    session = await nemo_client.create_session()
    uploaded = await session.upload_many([media.music, *media.clips, photo])
    assert [m.kind for m in uploaded] == ["audio"] + ["video"] * len(media.clips) + ["image"]


# -- the local render engine names the file -----------------------------------------------------


def render_one(path: Path, tmp_path: Path) -> ValueError:
    draft: dict[str, Any] = {
        "d": 1000,
        "t": [{"tt": 0, "sg": [{"mid": "v", "st": 0, "d": 1000, "in": 0}]}],
    }
    out = tmp_path / "out.mp4"
    with pytest.raises(ValueError) as caught:
        LocalRenderBackend().render(
            draft, {"v": path}, out, width=64, height=64, on_progress=lambda _: None
        )
    assert not out.exists()
    assert list(tmp_path.glob(".out.mp4*")) == []  # no partial file left
    return caught.value


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("ten hours.mp4", write_ten_hour_mp4, "has no video stream"),
        ("junk.mp4", write_mp4_with_junk_frames, "its 64x48 h264 video does not decode"),
        (
            "huge.png",
            lambda p: write_png(p, 30000, 30000),
            "it is 30000x30000 pixels (900 megapixels)",
        ),
    ],
    ids=["no-stream", "junk-frames", "huge-png"],
)
def test_the_render_engine_names_a_file_it_cannot_use(
    name: str, make: Any, says: str, tmp_path: Path
) -> None:
    path = make(tmp_path / name)
    message = one_line(render_one(path, tmp_path))
    assert message.startswith(f"{path}: "), message
    assert says in message
    assert "tuple index" not in message


async def test_a_clip_damaged_on_disk_after_upload_fails_the_render_naming_it(
    nemo_client: NemoClient, emu: Emulator, media: SampleMedia, tmp_path: Path
) -> None:
    clip = tmp_path / "holiday.mp4"
    shutil.copyfile(media.clips[0], clip)
    session = await nemo_client.create_session()
    await session.upload(media.music)
    uploaded = await session.upload(clip)
    await session.send("sync the background music to my video")
    stored = emu.media_record(uploaded).path
    write_ten_hour_mp4(stored)  # the disk now holds something else under its name
    job = await session.export()
    with pytest.raises(RenderFailedError) as caught:
        await job.wait(poll_interval=0.05)
    message = one_line(caught.value)
    assert "holiday.mp4: has no video stream" in message, message
    assert stored.name not in message
    assert str(emu.data_dir) not in message


# -- reading a picture's size from its header ---------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        (".png", {}),
        (".jpg", {}),
        (".jpg", {"progressive": True}),
        (".gif", {}),
        (".webp", {}),  # lossy: a VP8 chunk
        (".webp", {"lossless": True}),  # VP8L
        (".webp", {"exif": b"Exif\x00\x00"}),  # extended: VP8X first
    ],
)
def test_a_pictures_size_is_read_from_its_header(
    suffix: str, options: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / f"picture{suffix}"
    Image.new("RGB", (321, 123), (10, 200, 30)).save(path, **options)
    assert picture_size(path) == (321, 123)


def test_a_pictures_size_needs_no_pixels(tmp_path: Path) -> None:
    # A signature and an IHDR chunk, nothing else: the size comes from the header alone, so
    # a 30000x30000 picture is never decoded to find out it is too big.
    header_only = write_png(tmp_path / "huge.png", 30000, 30000, pixels=False)
    assert picture_size(header_only) == (30000, 30000)
    assert media_problem(header_only, "image") == (
        "it is 30000x30000 pixels (900 megapixels); pictures can be at most 16384 pixels on "
        "a side and 50 megapixels. Scale it down and upload it again."
    )


def test_a_picture_too_big_is_measured_by_its_header_never_opened(tmp_path: Path) -> None:
    # 16000x16000 is inside FFmpeg's own limit: opening it decodes all 256 megapixels to
    # learn the size (+770 MB, measured). With no pixels in the file, FFmpeg cannot open it
    # at all, so a size here, and this message, can only come from the header.
    header_only = write_png(tmp_path / "big.png", 16000, 16000, pixels=False)
    assert probe_media(header_only) == ProbeInfo(width=16000, height=16000)
    # Named as a video (a raw client can send that), it is still measured as a picture.
    assert media_problem(header_only, "video") == media_problem(header_only, "image")
    assert media_problem(header_only, "video") is not None
    message = one_line(render_one(header_only, tmp_path))
    assert message.startswith(f"{header_only}: it is 16000x16000 pixels (256 megapixels);")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(64),
        b"GIF89a",
        b"\xff\xd8\xff\xe0\x00",
        b"RIFF1234WEBPVP8 ",
    ],
)
def test_a_picture_whose_size_cannot_be_read_is_left_alone(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    assert picture_size(path) is None
    assert media_problem(path, "image") is None


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [
        (8160, 6120, True),  # a 50-megapixel phone photo
        (MAX_PICTURE_SIDE, MAX_PICTURE_PIXELS // MAX_PICTURE_SIDE, True),
        (MAX_PICTURE_SIDE + 1, 1, False),  # too long a side (FFmpeg's own size check)
        (7072, 7072, False),  # 50.01 megapixels
    ],
)
def test_the_picture_limits(width: int, height: int, ok: bool) -> None:
    assert (picture_problem(width, height) is None) is ok


def test_a_file_ffmpeg_cannot_open_is_left_to_the_render(tmp_path: Path) -> None:
    # Placeholder bytes (many tests upload them) claim nothing: the upload keeps accepting
    # them, with an estimated length, and a render names the file if it comes to that.
    junk = tmp_path / "a.mp4"
    junk.write_bytes(b"\x00" * 64)
    assert media_problem(junk, "video") is None
