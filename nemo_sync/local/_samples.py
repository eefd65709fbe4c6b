"""Sample media for the demo and the examples: a beat track and clips, made on the spot."""

from __future__ import annotations

import wave
from pathlib import Path

import attrs
import av
import numpy as np
import numpy.typing as npt

RATE = 44100
FPS = 30


@attrs.frozen
class SampleMedia:
    """Generated media: ``music`` (a WAV beat track) and ``clips`` (MP4s with distinct looks)."""

    music: Path
    clips: list[Path]
    bpm: float


def _beat_track(seconds: float, bpm: float) -> npt.NDArray[np.float32]:
    """Kick on every beat (accented on the bar), snare on 2 and 4, hats on eighths, bass."""
    n = int(seconds * RATE)
    out = np.zeros(n, dtype=np.float32)
    rng = np.random.default_rng(7)
    beat = 60.0 / bpm
    t_kick = np.arange(int(0.25 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t_kick * 30)) * t_kick) * np.exp(-t_kick * 12)
    t_snare = np.arange(int(0.15 * RATE)) / RATE
    snare = rng.normal(0, 1, t_snare.size) * np.exp(-t_snare * 25) * 0.5
    t_hat = np.arange(int(0.04 * RATE)) / RATE
    hat = np.diff(rng.normal(0, 1, t_hat.size + 1)) * np.exp(-t_hat * 90) * 0.15

    def add(at: float, sound: npt.NDArray[np.float64], gain: float) -> None:
        i = int(at * RATE)
        end = min(n, i + sound.size)
        if i < n:
            out[i:end] += (gain * sound[: end - i]).astype(np.float32)

    index = 0
    while index * beat < seconds:
        at = index * beat
        add(at, kick, 1.0 if index % 4 == 0 else 0.6)
        if index % 4 == 0:  # the bar's downbeat: a crash-like burst makes it the strongest
            add(
                at,
                rng.normal(0, 1, int(0.5 * RATE))
                * np.exp(-np.arange(int(0.5 * RATE)) / RATE * 6)
                * 0.25,
                1.0,
            )
        if index % 2 == 1:
            add(at, snare, 1.0)
        add(at, hat, 1.0)
        add(at + beat / 2, hat, 0.7)
        index += 1
    t = np.arange(n) / RATE
    roots = (55.0, 55.0, 65.41, 49.0)  # A, A, C, G: one per bar
    bar = (t / (4 * beat)).astype(int) % len(roots)
    out += (0.12 * np.sin(2 * np.pi * np.take(roots, bar) * t)).astype(np.float32)
    return (out / max(1.0, float(np.abs(out).max()) / 0.9)).astype(np.float32)


def _write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def _frame(look: int, i: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    t = i / FPS
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if look == 0:  # a slow sunset gradient with a drifting sun
        img = np.stack(
            [200 + 55 * (y / height), 80 + 60 * (x / width), 120 - 80 * (y / height)], -1
        )
        cx, cy = width * (0.2 + 0.1 * t), height * 0.45
        img[(x - cx) ** 2 + (y - cy) ** 2 < (height * 0.12) ** 2] = (255, 230, 120)
    elif look == 1:  # a bouncing ball on night blue
        img = np.full((height, width, 3), (20, 30, 70), np.float32)
        cx = width * (0.5 + 0.4 * np.sin(t * 2.1))
        cy = height * (0.5 + 0.35 * abs(np.cos(t * 3.3)))
        img[(x - cx) ** 2 + (y - cy) ** 2 < (height * 0.1) ** 2] = (80, 220, 255)
    else:  # scrolling neon stripes
        band = ((x + y * 0.5 + t * 120) // 40).astype(int) % 3
        img = np.take(np.array([(255, 40, 160), (40, 255, 200), (30, 20, 40)], np.float32), band, 0)
    picture: npt.NDArray[np.uint8] = np.clip(img, 0, 255).astype(np.uint8)
    return picture


def _write_clip(
    path: Path, *, look: int, seconds: float, width: int, height: int, tone: float | None
) -> None:
    frames = int(seconds * FPS)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "28"}
        audio = container.add_stream("aac", rate=RATE) if tone else None
        if audio is not None:
            audio.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame(look, i, width, height), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None and tone:
            total = int(seconds * RATE)
            t = np.arange(total) / RATE
            wave_ = (0.1 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = np.ascontiguousarray(np.stack([wave_[start : start + 1024]] * 2))
                sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                sound.sample_rate = RATE
                sound.pts = start
                for packet in audio.encode(sound):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)


def make_sample_media(directory: Path, *, seconds: float = 12.0, bpm: float = 120.0) -> SampleMedia:
    """Write ``beat.wav`` (``seconds`` long at ``bpm``) and three 5 s clips into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    music = directory / "beat.wav"
    _write_wav(music, _beat_track(seconds, bpm))
    clips = []
    for look, (name, tone) in enumerate(
        [("sunset.mp4", 220.0), ("night-ball.mp4", None), ("neon.mp4", None)]
    ):
        path = directory / name
        _write_clip(path, look=look, seconds=5.0, width=640, height=360, tone=tone)
        clips.append(path)
    return SampleMedia(music=music, clips=clips, bpm=bpm)
