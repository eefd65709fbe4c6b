"""The local render backend: a draft (wire JSON) plus media files in, an H.264/AAC MP4 out.

Frames flow one at a time (memory stays flat with duration): each output frame takes the
source frame of the segment covering it, centre-cropped and scaled to cover the canvas,
with the title burned in during its segment, all in the encoder's yuv420p
(:mod:`nemo_sync.local._frames`). Audio is mixed in numpy (music at its volume
plus the clips' own sound) and encoded alongside, interleaved with the video.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from nemo_sync.local._audio import decode
from nemo_sync.local._frames import PIX_FMT, ClipReader, Title, black

FPS = 30
AUDIO_RATE = 44100
AUDIO_FRAME = 1024
VIDEO, AUDIO, TEXT = 0, 1, 7


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
        readers: dict[str, ClipReader] = {}
        try:
            audio = _mix_audio(draft, media, total_ms)
            titles = [
                (
                    _ms(s, "st"),
                    _ms(s, "st") + _ms(s, "d"),
                    Title(str(s.get("x") or s.get("n") or ""), width, height),
                )
                for s in _segments(draft, TEXT)
                if (s.get("x") or s.get("n"))
            ]
            with av.open(
                str(tmp), "w", format="mp4", options={"movflags": "+faststart"}
            ) as container:
                vstream = container.add_stream("libx264", rate=self.fps)
                vstream.width, vstream.height, vstream.pix_fmt = width, height, PIX_FMT
                vstream.options = {"preset": self.preset, "crf": str(self.crf)}
                vstream.thread_type = "AUTO"
                astream = container.add_stream("aac", rate=AUDIO_RATE)
                astream.layout = "stereo"
                nothing = black(width, height)
                frame_rate = Fraction(1, self.fps)
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
                        picture = nothing
                    else:
                        reader = readers.get(str(path))
                        if reader is None:
                            reader = readers[str(path)] = ClipReader(path, width, height)
                        picture = reader.frame_at((_ms(segment, "in") + t_ms - start) / 1000.0)
                    for begin, end, title in titles:
                        if begin <= t_ms < end:
                            picture = title.draw(picture)
                    # A shared frame (the encoder takes its own reference to the pixels); its
                    # time base is the filter graph's, which the encoder would rebase.
                    picture.pts, picture.time_base = k, frame_rate
                    for packet in vstream.encode(picture):
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
