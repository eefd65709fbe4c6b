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
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from nemo_sync._contract import TRACK_AUDIO, TRACK_TEXT, TRACK_VIDEO
from nemo_sync.local._audio import decode
from nemo_sync.local._frames import PIX_FMT, ClipReader, Title, black, check_picture
from nemo_sync.local._probe import ffmpeg_reason

FPS = 30
AUDIO_RATE = 44100
AUDIO_FRAME = 1024
VIDEO, AUDIO, TEXT = TRACK_VIDEO, TRACK_AUDIO, TRACK_TEXT  # the API's track types


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
        check_picture(path)  # before FFmpeg opens it for its sound (see check_picture)
        volume = segment.get("v")
        gain = float(volume) if isinstance(volume, (int, float)) else default_volume
        if gain <= 0:
            continue
        try:
            sound = decode(
                path,
                rate=AUDIO_RATE,
                channels=2,
                start_s=_ms(segment, "in") / 1000,
                duration_s=length / 1000,
            )
        except av.FFmpegError as exc:
            # PyAV names the failing call (avcodec_send_packet()), not the file: name it.
            raise ValueError(f"{path}: its sound cannot be read ({ffmpeg_reason(exc)})") from exc
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
            ValueError: when the draft has no video, or a size is not even; or naming the
                file, when a media file cannot be used (see ``ClipReader``).
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
        stack = contextlib.ExitStack()
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
                # Open every codec and write the header now: the audio thread must not race
                # the first mux to open its codec.
                container.start_encoding()
                sound = _AudioEncoder(astream, audio)
                stack.callback(sound.stop)
                index = 0
                for k in range(frames):
                    t_ms = k * 1000.0 / self.fps
                    # A frame shows the segment covering its middle: a cut lands on the frame
                    # nearest its time (at most half a frame off), not on the next one.
                    mid_ms = t_ms + 500.0 / self.fps
                    while (
                        index + 1 < len(video_segments)
                        and _ms(video_segments[index + 1], "st") <= mid_ms
                    ):
                        index += 1
                    segment = video_segments[index]
                    start, length = _ms(segment, "st"), _ms(segment, "d")
                    path = media.get(str(segment.get("mid")))
                    if path is None or not start <= mid_ms < start + length:
                        picture = nothing
                    else:
                        reader = readers.get(str(path))
                        if reader is None:
                            reader = readers[str(path)] = ClipReader(path, width, height)
                        source_ms = _ms(segment, "in") + max(0.0, t_ms - start)
                        picture = reader.frame_at(source_ms / 1000.0)
                    for begin, end, title in titles:
                        if begin <= mid_ms < end:
                            picture = title.draw(picture)
                    # A shared frame (the encoder takes its own reference to the pixels); its
                    # time base is the filter graph's, which the encoder would rebase.
                    picture.pts, picture.time_base = k, frame_rate
                    for packet in vstream.encode(picture):
                        container.mux(packet)
                    for packet in sound.ready():
                        container.mux(packet)
                    if k % 10 == 0 or k == frames - 1:
                        on_progress((k + 1) / frames)
                for packet in vstream.encode():
                    container.mux(packet)
                for packet in sound.rest():
                    container.mux(packet)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            stack.close()
            for reader in readers.values():
                reader.close()


class _AudioEncoder:
    """AAC-encodes the mix on its own thread, overlapping the video encoder.

    FFmpeg's encoders release the GIL, so on two cores the audio costs almost no wall time
    (measured: 10 s of AAC took 0.5 s alone and nothing extra next to a 720p x264 encode).
    The render thread muxes the packets: a muxer is not thread-safe. The queue is bounded,
    so the thread runs at most a few seconds ahead and memory stays flat with duration.
    """

    def __init__(self, stream: Any, audio: npt.NDArray[np.float32]) -> None:
        self._stream = stream
        self._audio = audio
        self._packets: queue.Queue[Any] = queue.Queue(maxsize=256)
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemo-sync-aac", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for done in range(0, self._audio.shape[1], AUDIO_FRAME):
                chunk = np.ascontiguousarray(self._audio[:, done : done + AUDIO_FRAME])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = AUDIO_RATE
                frame.pts = done
                for packet in self._stream.encode(frame):
                    self._put(packet)
            for packet in self._stream.encode():
                self._put(packet)
        except BaseException as exc:  # re-raised in the render thread by rest()
            self._error = exc
        finally:
            self._put(None)  # the end

    def _put(self, item: Any) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(queue.Full):
                self._packets.put(item, timeout=0.1)
                return

    def ready(self) -> list[Any]:
        """The packets encoded so far (never blocks)."""
        packets: list[Any] = []
        while True:
            try:
                packet = self._packets.get_nowait()
            except queue.Empty:
                return packets
            if packet is None:
                self._packets.put(None)  # keep the end for rest()
                return packets
            packets.append(packet)

    def rest(self) -> list[Any]:
        """Every remaining packet, once the thread has finished.

        Raises:
            Exception: whatever the encoder raised.
        """
        packets: list[Any] = []
        while (packet := self._packets.get()) is not None:
            packets.append(packet)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return packets

    def stop(self) -> None:
        """Let the thread end (after a failed render it may be waiting on a full queue)."""
        self._stopped.set()
        self._thread.join()
