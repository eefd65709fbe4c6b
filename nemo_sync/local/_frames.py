"""Pictures for the render, kept in the encoder's own format (yuv420p) from decode to encode.

Each source frame is cropped to the canvas's aspect in the source's own pixels and only then
scaled, by one FFmpeg filter graph (crop, scale, format), so a 640x360 landscape clip shown
in a 1080x1920 portrait canvas scales a 202x360 window up rather than a 3414x1920 picture
down. No RGB round trip: the encoder takes the frames as they come. Titles are blended into
the Y, U and V planes directly.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from nemo_sync.local._probe import ffmpeg_reason, picture_problem, picture_size

PIX_FMT = "yuv420p"


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


class _Cover:
    """Crop to the canvas's aspect (centred), then scale to the canvas: one filter graph."""

    def __init__(self, frame: Any, width: int, height: int) -> None:
        self.key = (frame.width, frame.height, frame.format.name)
        scale = max(width / frame.width, height / frame.height)
        crop_w = min(frame.width, _even(math.ceil(width / scale)))
        crop_h = min(frame.height, _even(math.ceil(height / scale)))
        x0, y0 = (frame.width - crop_w) // 2 // 2 * 2, (frame.height - crop_h) // 2 // 2 * 2
        self._graph = av.filter.Graph()
        chain = [
            self._graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format.name,
                time_base=Fraction(1, 1000),
            ),
            self._graph.add("crop", f"{crop_w}:{crop_h}:{x0}:{y0}"),
            self._graph.add("scale", f"{width}:{height}:flags=bicubic"),
            self._graph.add("format", PIX_FMT),
            self._graph.add("buffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        self._graph.configure()

    def __call__(self, frame: Any) -> Any:
        self._graph.push(frame)
        return self._graph.pull()


def unusable(path: Path, why: str) -> ValueError:
    """The error for a file the renderer cannot use: its path first (the emulator puts the
    user's file name there), then what is wrong."""
    return ValueError(f"{path}: {why}")


def check_picture(path: Path) -> None:
    """Refuse an image too big to decode, by its header, before FFmpeg opens it: opening
    alone decodes the whole picture to learn its size.

    Raises:
        ValueError: naming the file and its size.
    """
    size = picture_size(path)
    problem = picture_problem(*size) if size is not None else None
    if problem is not None:
        raise unusable(path, problem)


class ClipReader:
    """Decodes one clip forward, handing out the picture shown at a given source time.

    A file it cannot use (FFmpeg cannot open it, it has no video stream, its picture is too
    big to decode, no frame decodes) is a ``ValueError`` that starts with the file's path
    (the emulator puts the user's file name in its place) and says what is wrong.
    """

    def __init__(self, path: Path, width: int, height: int) -> None:
        self._path = path
        self._size = (width, height)
        self._container: Any = None
        self._frames: Any = None
        self._current: Any = None
        self._upcoming: Any = None
        self._cover: _Cover | None = None
        self._cache: tuple[float, Any] | None = None
        self.duration = 0.0
        check_picture(path)
        self._open()

    def _unusable(self, why: str) -> ValueError:
        return unusable(self._path, why)

    def _open(self, at: float = 0.0) -> None:
        self.close()
        try:
            self._container = av.open(str(self._path))
        except av.FFmpegError as exc:
            why = f"cannot be read as a video or a picture ({ffmpeg_reason(exc)})"
            raise self._unusable(why) from exc
        if not self._container.streams.video:
            raise self._unusable("has no video stream: nothing in it can be shown")
        stream = self._container.streams.video[0]
        problem = picture_problem(stream.codec_context.width, stream.codec_context.height)
        if problem is not None:  # a video's frames (an image's size was checked before)
            raise self._unusable(problem)
        stream.thread_type = "AUTO"
        if not self.duration:
            self.duration = (self._container.duration or 0) / 1_000_000 or 1.0
        if at > 0:
            self._container.seek(int(at / float(stream.time_base)), stream=stream, backward=True)
        self._frames = self._container.decode(stream)
        self._current = None
        self._upcoming = self._next()

    def _next(self) -> Any:
        """The next decoded frame (``None`` at the end); a decoder failure names the file."""
        try:
            return next(self._frames, None)
        except av.FFmpegError as exc:
            stream = self._container.streams.video[0]
            context = stream.codec_context
            why = (
                f"its {context.width}x{context.height} {context.name} video does not decode "
                f"({ffmpeg_reason(exc)})"
            )
            raise self._unusable(why) from exc

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def frame_at(self, t: float) -> Any:
        """The picture (a yuv420p ``av.VideoFrame`` of the canvas size) at ``t`` seconds.

        Past the clip's end it loops. The same frame object comes back while the source
        frame does not change: callers set ``pts`` and never write into it.
        """
        if self.duration > 0 and t >= self.duration:
            t = math.fmod(t, self.duration)
        if self._current is not None and t < float(self._current.time or 0) - 1e-6:
            self._open(t)
        if self._current is None and self._upcoming is None:
            self._open(t)
        while self._upcoming is not None and float(self._upcoming.time or 0) <= t + 1e-6:
            self._current = self._upcoming
            self._upcoming = self._next()
        if self._current is None:
            self._current = self._upcoming
        if self._current is None:
            raise self._unusable("its video stream has no frame that decodes")
        key = float(self._current.time or 0)
        if self._cache is None or self._cache[0] != key:
            source = self._current
            if self._cover is None or self._cover.key != (
                source.width,
                source.height,
                source.format.name,
            ):
                self._cover = _Cover(source, *self._size)
            self._cache = (key, self._cover(source))
        return self._cache[1]


def black(width: int, height: int) -> Any:
    """A black yuv420p frame (video range: Y 16, chroma 128)."""
    planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    planes[:height] = 16
    return av.VideoFrame.from_ndarray(planes, format=PIX_FMT)


def _rgb_to_yuv(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """BT.601 video range, as swscale converts RGB for yuv420p by default."""
    matrix = np.array(
        [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
        dtype=np.float32,
    )
    yuv: npt.NDArray[np.float32] = rgb @ (matrix.T / 255.0) + np.array(
        [16.0, 128.0, 128.0], dtype=np.float32
    )
    return yuv


def _halve(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    total = plane[:h:2, :w:2] + plane[1:h:2, :w:2] + plane[:h:2, 1:w:2] + plane[1:h:2, 1:w:2]
    pooled: npt.NDArray[np.float32] = (total * np.float32(0.25)).astype(np.float32)
    return pooled


class Title:
    """A title rendered once with Pillow and alpha-blended into frames during its segment."""

    def __init__(self, text: str, width: int, height: int) -> None:
        size = max(16, int(min(width, height) * 0.08))
        font = ImageFont.load_default(size=size)
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=3)
        box_w = _even(min(width, int(right - left) + 8))
        box_h = _even(min(height, int(bottom - top) + 8))
        image = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
        ImageDraw.Draw(image).text(
            (4 - left, 4 - top),
            text,
            font=font,
            fill=(255, 255, 255, 255),
            stroke_width=3,
            stroke_fill=(0, 0, 0, 255),
        )
        rgba = np.asarray(image, dtype=np.float32)
        alpha = (rgba[..., 3] / 255.0).astype(np.float32)
        yuv = _rgb_to_yuv(rgba[..., :3])
        # Chroma is at half resolution: pool colour weighted by coverage, and the coverage.
        chroma_alpha = _halve(alpha)
        safe = np.where(chroma_alpha > 0, chroma_alpha, np.float32(1.0))
        self._layers: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int]] = [
            (yuv[..., 0], alpha, 1),
            ((_halve(yuv[..., 1] * alpha) / safe).astype(np.float32), chroma_alpha, 2),
            ((_halve(yuv[..., 2] * alpha) / safe).astype(np.float32), chroma_alpha, 2),
        ]
        self._x = max(0, (width - box_w) // 2) // 2 * 2
        self._y = int(height * 0.12) // 2 * 2
        self._size = (width, height)

    def draw(self, frame: Any) -> Any:
        """A new frame: ``frame`` with the title over it (``frame`` itself is untouched)."""
        width, height = self._size
        packed = frame.to_ndarray()  # (h * 3 / 2, w): the Y, U and V planes, one after another
        flat, luma = packed.reshape(-1), width * height
        planes = [
            flat[:luma].reshape(height, width),
            flat[luma : luma * 5 // 4].reshape(height // 2, width // 2),
            flat[luma * 5 // 4 :].reshape(height // 2, width // 2),
        ]
        for plane, (colour, alpha, step) in zip(planes, self._layers, strict=True):
            x, y = self._x // step, self._y // step
            region = plane[y : y + colour.shape[0], x : x + colour.shape[1]]
            h, w = region.shape
            blended = region * (1 - alpha[:h, :w]) + colour[:h, :w] * alpha[:h, :w]
            region[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return av.VideoFrame.from_ndarray(packed, format=PIX_FMT)
