"""The tempo over time: a tempogram and the smoothest strong path through it.

Local autocorrelation of the onset envelope (8 s windows every 0.5 s) gives, for each moment,
how periodic the music is at each tempo. A periodic pulse also correlates at two, three and
four times its period, so each tempo is scored with its multiples (a comb), and a listener
prior picks the metrical level: people tap between about 75 and 160 BPM. A Viterbi pass then
finds the path that is strong everywhere and moves smoothly, so a tempo that drifts or ramps
is followed, while a jump to another metrical level (double or half) costs far more than any
window gains by it.
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from nemo_sync.local._onset import FPS

Array = npt.NDArray[np.float64]

_WINDOW_S = 8.0
_HOP_S = 0.5
_BPMS = np.geomspace(40.0, 320.0, 210)  # 1% steps
_TAP_LOW, _TAP_HIGH = 75.0, 160.0  # where a listener's tapping prior is flat
_PRIOR_WIDTH = 0.15  # octaves: how fast the prior falls outside the tapping range
_SMOOTHNESS = 200.0  # cost of a jump, per octave squared, between windows 0.5 s apart
_COMB = ((1.0, 1.0), (2.0, 0.5), (4.0, 0.5))  # (multiple of the period, weight)


@attrs.frozen
class TempoPath:
    """The tempo over time.

    Attributes:
        times_s: Window centres (s).
        bpm: The tempo at each centre.
        clarity: How periodic the music is there, 0 (no pulse) to 1 (a metronome).
    """

    times_s: Array
    bpm: Array
    clarity: Array

    def period_frames(self, frames: int) -> Array:
        """The beat period (in onset frames) at every onset frame."""
        at = np.arange(frames) / FPS
        bpm = np.interp(at, self.times_s, self.bpm)
        period: Array = 60.0 * FPS / bpm
        return period


def _prior() -> Array:
    below = np.maximum(0.0, np.log2(_TAP_LOW / _BPMS))
    above = np.maximum(0.0, np.log2(_BPMS / _TAP_HIGH))
    prior: Array = np.exp(-0.5 * ((below + above) / _PRIOR_WIDTH) ** 2)
    return prior


def tempogram(env: Array) -> tuple[Array, Array]:
    """(window centres in s, ``(windows, len(_BPMS))`` comb-weighted autocorrelation)."""
    n = len(env)
    width = min(n, round(_WINDOW_S * FPS))
    hop = round(_HOP_S * FPS)
    centres = np.arange(width // 2, max(width // 2, n - width // 2) + 1, hop)
    lags = 60.0 * FPS / _BPMS
    max_lag = int(np.ceil(lags.max() * max(m for m, _ in _COMB))) + 2
    taper = np.hanning(width)
    rows = np.zeros((len(centres), len(_BPMS)))
    for row, centre in enumerate(centres):
        start = max(0, min(n - width, centre - width // 2))
        piece = env[start : start + width]
        piece = (piece - piece.mean()) * taper
        spectrum = np.fft.rfft(piece, 2 * width)
        acf = np.fft.irfft(np.abs(spectrum) ** 2)[: max_lag + 1]
        if acf[0] <= 0:
            continue
        acf = np.maximum(0.0, acf / acf[0])
        # The taper shortens long lags' overlap: undo that bias so slow tempi are not starved.
        overlap = np.maximum(1.0 - np.arange(len(acf)) / width, 0.05)
        acf = acf / overlap
        grid = np.arange(len(acf))
        rows[row] = sum(w * np.interp(lags * m, grid, acf) for m, w in _COMB)
    return centres / FPS, rows


def tempo_path(env: Array) -> TempoPath:
    """The smooth, strong tempo path through ``env``'s tempogram."""
    times, gram = tempogram(env)
    peak = gram.max(axis=1, keepdims=True)
    normalised = np.where(peak > 0, gram / np.where(peak > 0, peak, 1.0), 0.0)
    emission = np.log(normalised * _prior() + 1e-3)
    octaves = np.log2(_BPMS)
    jump = -_SMOOTHNESS * (octaves[:, None] - octaves[None, :]) ** 2
    score = emission[0].copy()
    back = np.zeros(gram.shape, dtype=np.int64)
    for row in range(1, len(gram)):
        total = score[None, :] + jump  # [to, from]
        back[row] = np.argmax(total, axis=1)
        score = total[np.arange(len(_BPMS)), back[row]] + emission[row]
    path = np.zeros(len(gram), dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for row in range(len(gram) - 1, 0, -1):
        path[row - 1] = back[row, path[row]]
    clarity = gram[np.arange(len(gram)), path] / sum(w for _, w in _COMB)
    return TempoPath(times_s=times, bpm=_BPMS[path], clarity=np.clip(clarity, 0.0, 1.0))
