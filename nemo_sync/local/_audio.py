"""Decoding audio (from audio files or the sound of videos) to numpy arrays with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def has_audio(path: Path) -> bool:
    with av.open(str(path)) as container:
        return any(s.type == "audio" for s in container.streams)


def decode(
    path: Path,
    *,
    rate: int,
    channels: int = 1,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> FloatArray:
    """The audio of ``path`` as float32 ``(channels, samples)`` at ``rate``.

    Returns zeros (of the asked duration) when the file has no audio stream.
    """
    layout = "mono" if channels == 1 else "stereo"
    wanted = None if duration_s is None else round(duration_s * rate)
    with av.open(str(path)) as container:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            return np.zeros((channels, wanted or 0), dtype=np.float32)
        if start_s > 0:
            container.seek(int(start_s / float(stream.time_base)), stream=stream, backward=True)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        pieces: list[FloatArray] = []
        have = 0
        first_sample: int | None = None
        skip = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                data = out.to_ndarray().astype(np.float32, copy=False)
                if first_sample is None:
                    # Where the decoder really started (a seek lands on a packet boundary).
                    t0 = (
                        float(out.pts * out.time_base)
                        if out.pts is not None and out.time_base
                        else 0.0
                    )
                    first_sample = round(t0 * rate)
                    skip = max(0, round(start_s * rate) - first_sample)
                if skip:
                    cut = min(skip, data.shape[1])
                    data, skip = data[:, cut:], skip - cut
                pieces.append(data)
                have += data.shape[1]
            if wanted is not None and have >= wanted:
                break
        else:
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().astype(np.float32, copy=False))
    audio = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
    if wanted is not None:
        if audio.shape[1] < wanted:
            audio = np.pad(audio, ((0, 0), (0, wanted - audio.shape[1])))
        audio = audio[:, :wanted]
    return audio
