"""What a media file is: duration, streams, size."""

from __future__ import annotations

from pathlib import Path

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
