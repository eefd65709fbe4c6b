"""What a media file is (duration, streams, size), and whether the renderer can use it."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import av


@attrs.frozen
class MediaInfo:
    """A media file's basic facts."""

    duration_ms: int
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def probe(path: str | Path) -> MediaInfo:
    """Read a file's duration and streams (no full decode).

    Raises:
        av.error.FFmpegError: when FFmpeg cannot read the file.
    """
    with av.open(str(path)) as container:
        video = next((s for s in container.streams if s.type == "video"), None)
        audio = next((s for s in container.streams if s.type == "audio"), None)
        duration_s = container.duration / 1_000_000 if container.duration else 0.0
        if not duration_s:
            for stream in (video, audio):
                if stream is not None and stream.duration and stream.time_base:
                    duration_s = max(duration_s, float(stream.duration * stream.time_base))
        fps = float(video.average_rate) if video is not None and video.average_rate else None
        return MediaInfo(
            duration_ms=round(duration_s * 1000),
            has_video=video is not None,
            has_audio=audio is not None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=fps,
        )


# -- what the renderer can use ------------------------------------------------------------------

MAX_PICTURE_SIDE = 16384
"""The longest side of a picture (image or video frame) the renderer takes, in pixels. With
:data:`MAX_PICTURE_PIXELS` it keeps every accepted picture inside FFmpeg's own size check,
``(w + 128) * (h + 128) < 2**31 / 8``, which a long, thin picture would otherwise fail."""

MAX_PICTURE_PIXELS = 50_000_000
"""The most pixels in one picture the renderer takes. A picture is decoded whole before it is
cropped and scaled (``_frames.py``): 50 megapixels is about 150 MB as RGB and 200 MB as RGBA
(measured: a 48-megapixel RGB PNG peaks at +210 MB; a 16000x16000 one, which FFmpeg still
decodes, at +820 MB). Everyday photos pass, 48-50 megapixel phone photos included."""

PROBE_PACKETS = 600
"""How many packets of a video are tried for a first frame before it is judged undecodable
(20 s at 30 fps: a stream cut mid-GOP shows a picture long before that)."""

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    """Walk the JPEG segments to the first start-of-frame; reads a few bytes per segment."""
    f.seek(2)
    while True:
        marker = f.read(2)
        while len(marker) == 2 and marker[1] == 0xFF:  # fill bytes before a marker
            marker = marker[1:] + f.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0x01 or 0xD0 <= kind <= 0xD7:  # markers without a length
            continue
        head = f.read(2)
        if len(head) < 2:
            return None
        length = struct.unpack(">H", head)[0]
        if kind in _SOF:
            frame = f.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if kind == 0xDA or length < 2:  # the scan starts: no frame header came first
            return None
        f.seek(length - 2, os.SEEK_CUR)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: the key frame's header
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":  # lossless: 14 bits each, minus one
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, 24 bits each, minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def picture_size(path: str | Path) -> tuple[int, int] | None:
    """An image's ``(width, height)`` from its header alone (PNG, JPEG, GIF, WebP).

    Nothing is decoded, so memory stays flat whatever the picture's size. ``None`` when the
    size cannot be read (another format, a damaged header).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            size: tuple[int, int] | None = None
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                size = struct.unpack(">II", head[16:24])
            elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
                size = struct.unpack("<HH", head[6:10])
            elif head.startswith(b"\xff\xd8"):
                size = _jpeg_size(f)
            elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
                size = _webp_size(head)
    except (OSError, struct.error):
        return None
    return size if size is not None and min(size) > 0 else None


def picture_problem(width: int, height: int) -> str | None:
    """Why the renderer cannot take a picture of this size, or ``None`` when it can."""
    if max(width, height) <= MAX_PICTURE_SIDE and width * height <= MAX_PICTURE_PIXELS:
        return None
    return (
        f"it is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); pictures can "
        f"be at most {MAX_PICTURE_SIDE} pixels on a side and "
        f"{MAX_PICTURE_PIXELS / 1e6:.0f} megapixels. Scale it down and upload it again."
    )


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's words for a failure, without the file or function name PyAV appends."""
    reason = getattr(exc, "strerror", None)
    return str(reason) if reason else f"{type(exc).__name__}: {exc}"


def _first_frame_error(container: Any, stream: Any) -> str | None:
    """Why no frame of ``stream`` decodes, or ``None`` once one does.

    Packet by packet, so a bad packet early on (a stream cut mid-GOP) is skipped; gives up
    after :data:`PROBE_PACKETS`. Decodes one frame at most: the caller checked its size.
    """
    error = "no frame came out"
    for count, packet in enumerate(container.demux(stream)):
        try:
            if packet.decode():  # the last, empty packet flushes the decoder
                return None
        except av.FFmpegError as exc:
            error = ffmpeg_reason(exc)
        if count >= PROBE_PACKETS:
            break
    return error


def media_problem(path: str | Path, kind: str) -> str | None:
    """Why the renderer could not use this file, or ``None`` when it can (or cannot tell).

    Reads headers only, except for a video's first frame, which is decoded to prove the
    stream is more than a header. A picture's size comes from its header, before FFmpeg
    could open it (opening decodes it whole), whatever ``kind`` its name gave. A file FFmpeg
    cannot open at all is not judged here: it claims nothing, and a render names it if it
    ever gets that far.

    Args:
        path: The file.
        kind: ``"image"``, ``"video"`` or ``"audio"`` (audio is not judged here).
    """
    size = picture_size(path)
    if size is not None:  # a picture, whatever its name says: never opened with FFmpeg
        return picture_problem(*size)
    if kind != "video":
        return None
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return None
    with container:
        video = next(iter(container.streams.video), None)
        if video is None:
            return "it has no video stream. Export it again as a video and upload that."
        context = video.codec_context
        too_big = picture_problem(context.width, context.height)
        if too_big is not None:
            return too_big
        error = _first_frame_error(container, video)
        if error is None:
            return None
        return (
            f"its {context.width}x{context.height} {context.name} video does not decode "
            f"({error}). Export it again and upload that."
        )
