"""The local render backend: a draft (wire JSON) plus media files in, an H.264/AAC MP4 out.

Frames flow one at a time (memory stays flat with duration): each output frame takes the
source frame of the segment covering it, scaled to cover the canvas and centre-cropped,
with the title burned in during its segment. Audio is mixed in numpy (music at its volume
plus the clips' own sound) and encoded alongside, interleaved with the video.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from nemo_sync.local._audio import decode

FPS = 30
AUDIO_RATE = 44100
AUDIO_FRAME = 1024
VIDEO, AUDIO, TEXT = 0, 1, 7

Frame = npt.NDArray[np.uint8]


def _segments(draft: Mapping[str, Any], track_type: int) -> list[dict[str, Any]]:
    found = []
    for track in draft.get("t") or []:
        if isinstance(track, dict) and track.get("tt") == track_type:
            found += [s for s in track.get("sg") or [] if isinstance(s, dict)]
    return sorted(found, key=lambda s: int(s.get("st") or 0))


def _ms(segment: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = segment.get(key)
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    )


class _ClipReader:
    """Decodes one clip forward, handing out the frame shown at a given source time."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self._path = path
        self._size = (width, height)
        self._container: Any = None
        self._frames: Any = None
        self._current: Any = None
        self._upcoming: Any = None
        self._cache: tuple[float, Frame] | None = None
        self.duration = 0.0
        self._open()

    def _open(self, at: float = 0.0) -> None:
        self.close()
        self._container = av.open(str(self._path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if not self.duration:
            self.duration = (self._container.duration or 0) / 1_000_000 or 1.0
        if at > 0:
            self._container.seek(int(at / float(stream.time_base)), stream=stream, backward=True)
        self._frames = self._container.decode(stream)
        self._current = None
        self._upcoming = next(self._frames, None)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def frame_at(self, t: float) -> Frame:
        """The picture at source time ``t`` seconds (looping past the clip's end)."""
        if self.duration > 0 and t >= self.duration:
            t = math.fmod(t, self.duration)
        if self._current is not None and t < float(self._current.time or 0) - 1e-6:
            self._open(t)
        if self._current is None and self._upcoming is None:
            self._open(t)
        while self._upcoming is not None and float(self._upcoming.time or 0) <= t + 1e-6:
            self._current = self._upcoming
            self._upcoming = next(self._frames, None)
        if self._current is None:
            self._current = self._upcoming
        key = float(self._current.time or 0)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, _cover(self._current, *self._size))
        return self._cache[1]


def _cover(frame: Any, width: int, height: int) -> Frame:
    """Scale to cover ``width`` x ``height``, then crop the centre."""
    scale = max(width / frame.width, height / frame.height)
    sw = max(width, math.ceil(frame.width * scale / 2) * 2)
    sh = max(height, math.ceil(frame.height * scale / 2) * 2)
    rgb = frame.reformat(width=sw, height=sh, format="rgb24").to_ndarray()
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    cropped: Frame = np.ascontiguousarray(rgb[y0 : y0 + height, x0 : x0 + width])
    return cropped


class _Title:
    """A title rendered once with Pillow and alpha-blended onto frames during its segment."""

    def __init__(self, text: str, width: int, height: int) -> None:
        size = max(16, int(min(width, height) * 0.08))
        font = ImageFont.load_default(size=size)
        probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=3)
        box_w, box_h = min(width, int(right - left) + 8), int(bottom - top) + 8
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
        self._rgb = rgba[..., :3]
        self._alpha = rgba[..., 3:4] / 255.0
        self._x = max(0, (width - box_w) // 2)
        self._y = int(height * 0.12)

    def draw(self, frame: Frame) -> Frame:
        h, w = self._rgb.shape[:2]
        region = frame[self._y : self._y + h, self._x : self._x + w].astype(np.float32)
        h, w = region.shape[:2]
        blended = region * (1 - self._alpha[:h, :w]) + self._rgb[:h, :w] * self._alpha[:h, :w]
        out: Frame = frame.copy()
        out[self._y : self._y + h, self._x : self._x + w] = blended.astype(np.uint8)
        return out


def _mix_audio(
    draft: Mapping[str, Any], media: Mapping[str, Path], total_ms: int
) -> npt.NDArray[np.float32]:
    total = round(total_ms * AUDIO_RATE / 1000)
    mix = np.zeros((2, total), dtype=np.float32)
    sources = [(s, 0.35) for s in _segments(draft, AUDIO)] + [
        (s, 1.0) for s in _segments(draft, VIDEO)
    ]
    for segment, default_volume in sources:
        path = media.get(str(segment.get("mid")))
        length = _ms(segment, "d")
        if path is None or length <= 0:
            continue
        volume = segment.get("v")
        gain = float(volume) if isinstance(volume, (int, float)) else default_volume
        if gain <= 0:
            continue
        sound = decode(
            path,
            rate=AUDIO_RATE,
            channels=2,
            start_s=_ms(segment, "in") / 1000,
            duration_s=length / 1000,
        )
        start = round(_ms(segment, "st") * AUDIO_RATE / 1000)
        end = min(total, start + sound.shape[1])
        if start < end:
            mix[:, start:end] += gain * sound[:, : end - start]
    return np.clip(mix, -1.0, 1.0)


class LocalRenderBackend:
    """Renders drafts with FFmpeg's libraries (PyAV): H.264 (libx264) + AAC, faststart MP4."""

    name = "local"

    def __init__(self, *, fps: int = FPS, preset: str = "veryfast", crf: int = 23) -> None:
        self.fps = fps
        self.preset = preset
        self.crf = crf

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
        """Write the draft as an MP4 at ``out`` (atomically: complete, or not there).

        Raises:
            ValueError: when the draft has no video, or a size is not even.
        """
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs even sizes; got {width}x{height}")
        video_segments = _segments(draft, VIDEO)
        if not video_segments:
            raise ValueError("nothing to render: the draft has no video segments")
        ends = [
            _ms(s, "st") + _ms(s, "d") for t in (VIDEO, AUDIO, TEXT) for s in _segments(draft, t)
        ]
        total_ms = _ms(draft, "d") or max(ends)
        frames = max(1, round(total_ms * self.fps / 1000))
        out = Path(out)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part.mp4")
        readers: dict[str, _ClipReader] = {}
        try:
            audio = _mix_audio(draft, media, total_ms)
            titles = [
                (
                    _ms(s, "st"),
                    _ms(s, "st") + _ms(s, "d"),
                    _Title(str(s.get("x") or s.get("n") or ""), width, height),
                )
                for s in _segments(draft, TEXT)
                if (s.get("x") or s.get("n"))
            ]
            with av.open(
                str(tmp), "w", format="mp4", options={"movflags": "+faststart"}
            ) as container:
                vstream = container.add_stream("libx264", rate=self.fps)
                vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
                vstream.options = {"preset": self.preset, "crf": str(self.crf)}
                vstream.thread_type = "AUTO"
                astream = container.add_stream("aac", rate=AUDIO_RATE)
                astream.layout = "stereo"
                black = np.zeros((height, width, 3), dtype=np.uint8)
                audio_done = 0
                index = 0
                for k in range(frames):
                    t_ms = k * 1000.0 / self.fps
                    while (
                        index + 1 < len(video_segments)
                        and _ms(video_segments[index + 1], "st") <= t_ms
                    ):
                        index += 1
                    segment = video_segments[index]
                    start, length = _ms(segment, "st"), _ms(segment, "d")
                    path = media.get(str(segment.get("mid")))
                    if path is None or not start <= t_ms < start + length:
                        picture = black
                    else:
                        reader = readers.get(str(path))
                        if reader is None:
                            reader = readers[str(path)] = _ClipReader(path, width, height)
                        picture = reader.frame_at((_ms(segment, "in") + t_ms - start) / 1000.0)
                    for begin, end, title in titles:
                        if begin <= t_ms < end:
                            picture = title.draw(picture)
                    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                    frame.pts = k
                    for packet in vstream.encode(frame):
                        container.mux(packet)
                    # Keep audio level with video so the muxer interleaves without buffering.
                    audio_until = min(audio.shape[1], int((k + 1) * AUDIO_RATE / self.fps))
                    audio_done = self._encode_audio(
                        container, astream, audio, audio_done, audio_until
                    )
                    if k % 10 == 0 or k == frames - 1:
                        on_progress((k + 1) / frames)
                self._encode_audio(
                    container, astream, audio, audio_done, audio.shape[1], final=True
                )
                for packet in vstream.encode():
                    container.mux(packet)
                for packet in astream.encode():
                    container.mux(packet)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            for reader in readers.values():
                reader.close()

    @staticmethod
    def _encode_audio(
        container: Any,
        stream: Any,
        audio: npt.NDArray[np.float32],
        done: int,
        until: int,
        *,
        final: bool = False,
    ) -> int:
        while until - done >= AUDIO_FRAME or (final and until > done):
            size = min(AUDIO_FRAME, until - done)
            chunk = np.ascontiguousarray(audio[:, done : done + size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = done
            for packet in stream.encode(frame):
                container.mux(packet)
            done += size
        return done
