"""Beat tracking that follows the tempo: dynamic programming over a moving beat period.

The tracker of Ellis (2007) scores a chain of beats by the onset strength at each beat,
less a penalty for every gap that differs from the beat period; here the period is the local
one from :mod:`nemo_sync.local._tempo`, so a chain keeps its phase through a ramp or a drift.
Two changes let it skip music with no pulse: the onset strength is counted above a floor (a
frame of pads or noise costs a little instead of paying a little), and a chain may jump over a
stretch at a fixed cost, so a beatless intro or a break gets no beats while the beats on both
sides stay one chain.

D. P. W. Ellis, "Beat Tracking by Dynamic Programming", J. New Music Research 36(1), 2007.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

from nemo_sync.local._audio import decode
from nemo_sync.local._bars import find_downbeats, find_drops
from nemo_sync.local._onset import FPS, HOP, N_FFT, RATE, Features, features
from nemo_sync.local._tempo import TempoPath, tempo_path

__all__ = ["RATE", "BeatAnalysis", "analyze_beats", "analyze_samples"]

_TIGHTNESS = 100.0
_FLOOR = 0.2  # of a typical beat's onset strength: weaker frames cost instead of paying
_JUMP_COST = 3.0  # in typical beats' strength: what skipping a pulseless stretch costs
_MIN_CLARITY = 0.12  # tempogram periodicity below which a stretch has no pulse to follow
_ONSET_FRACTION = 0.7  # where in the FFT window an onset's flux peaks (measured on clicks)

Array = npt.NDArray[np.float64]


@attrs.frozen
class BeatAnalysis:
    """The beats of a piece of music (times in ms from its start).

    Attributes:
        bpm: The tempo a listener would tap (the median over the song).
        beats_ms: Every beat.
        downbeats_ms: The first beat of every bar.
        duration_ms: The length of the audio.
        drops_ms: Where the music surges after a build or a break (each is a beat).
        tempo_ms: ``(time_ms, bpm)`` pairs: the tempo curve, one point per beat.
        bpm_range: The slowest and fastest tempo played (equal for a steady song).
    """

    bpm: float
    beats_ms: list[int]
    downbeats_ms: list[int]
    duration_ms: int
    drops_ms: list[int] = attrs.field(factory=list)
    tempo_ms: list[tuple[int, float]] = attrs.field(factory=list)
    bpm_range: tuple[float, float] = (0.0, 0.0)

    @property
    def steady(self) -> bool:
        """Whether the tempo stays within 3% of the median throughout."""
        low, high = self.bpm_range
        return self.bpm <= 0 or (high - low) <= 0.03 * self.bpm


def onset_envelope(found: Features) -> Array:
    """What the tracker follows: every onset, plus the kick and bass weighted as much again.

    Busy hi-hats make as much broadband flux as a kick; the low band is what says which of
    the sixteenth notes is the beat.
    """
    env: Array = found.flux + found.low
    return env


def track(env: Array, period: Array, clarity: Array) -> list[int]:
    """Beat frames: the best chain of onsets spaced by the local ``period`` (frames)."""
    n = len(env)
    if n == 0:
        return []
    # A typical beat's strength: the median of the strongest onset in each beat-long window.
    step = max(1, round(float(np.median(period))))
    usable = n - n % step if n >= step else n
    peaks = env[:usable].reshape(-1, step).max(axis=1) if n >= step else env
    typical = float(np.median(peaks)) or 1.0
    gain = np.where(clarity >= _MIN_CLARITY, env - _FLOOR * typical, -typical)
    jump_cost = _JUMP_COST * typical
    score = gain.copy()
    back = np.full(n, -1, dtype=np.int64)
    best_before = np.full(n, -np.inf)  # best score of any frame before t
    best_at = np.zeros(n, dtype=np.int64)
    for t in range(1, n):
        p = float(period[t])
        lo, hi = max(1, round(0.5 * p)), min(t, round(2.0 * p))
        candidate, link = 0.0, -1  # 0: a chain may start here
        if lo <= hi:
            offsets = np.arange(lo, hi + 1)
            values = score[t - offsets] - _TIGHTNESS * np.log(offsets / p) ** 2
            k = int(np.argmax(values))
            if values[k] > candidate:
                candidate, link = float(values[k]), t - int(offsets[k])
        # Or jump over a stretch with no pulse, from any frame at least two beats back.
        far = t - round(2.0 * p)
        if far >= 0 and best_before[far] - jump_cost > candidate:
            candidate, link = float(best_before[far] - jump_cost), int(best_at[far])
        score[t] += candidate
        back[t] = link
        if score[t] > best_before[t - 1]:
            best_before[t], best_at[t] = score[t], t
        else:
            best_before[t], best_at[t] = best_before[t - 1], best_at[t - 1]
    beats = []
    beat = int(np.argmax(score))
    while beat >= 0:
        beats.append(beat)
        beat = int(back[beat])
    beats.reverse()
    return beats


def _refine(env: Array, frame: int) -> float:
    """A beat's time in frames, moved onto the local onset peak (sub-frame)."""
    lo, hi = max(0, frame - 2), min(len(env), frame + 3)
    peak = lo + int(np.argmax(env[lo:hi]))
    if 0 < peak < len(env) - 1:
        a, b, c = env[peak - 1], env[peak], env[peak + 1]
        denom = a - 2 * b + c
        if denom != 0:
            return float(peak + max(-0.5, min(0.5, 0.5 * (a - c) / denom)))
    return float(peak)


def _frame_to_ms(frame: float) -> int:
    # A frame's flux rises when the onset enters its window; the window starts at frame*HOP.
    # The rise peaks with the onset on the steep side of the Hann window, about 0.7 of the
    # way in (measured on click tracks: frame-start time alone was 20 ms early).
    return round((frame * HOP + N_FFT * _ONSET_FRACTION) * 1000.0 / RATE)


def _tempo_curve(beats_ms: list[int]) -> list[tuple[int, float]]:
    """One tempo per beat: 60 s over the median of the nearby beat gaps (beats in one run)."""
    if len(beats_ms) < 2:
        return []
    gaps = np.diff(beats_ms).astype(np.float64)
    typical = float(np.median(gaps))
    curve = []
    for i, at in enumerate(beats_ms[:-1]):
        near = gaps[max(0, i - 3) : i + 4]
        near = near[near < 1.5 * typical]  # a jump over a break is not a tempo
        if near.size:
            curve.append((at, round(60000.0 / float(np.median(near)), 2)))
    return curve


def analyze_samples(samples: npt.NDArray[np.float32]) -> BeatAnalysis:
    """Beats, downbeats, drops and tempo of mono float32 samples at :data:`RATE`."""
    found = features(samples)
    env = onset_envelope(found)
    path: TempoPath = tempo_path(env)
    period = path.period_frames(len(env))
    clarity = np.interp(np.arange(len(env)) / FPS, path.times_s, path.clarity)
    frames = track(env, period, clarity)
    # Onto the broadband onset: the kick's low end swells a few ms after its click.
    beats_ms = [_frame_to_ms(_refine(found.flux, f)) for f in frames]
    curve = _tempo_curve(beats_ms)
    if curve:
        tempi = np.array([bpm for _, bpm in curve])
        bpm = float(np.median(tempi))
        low, high = (float(v) for v in np.percentile(tempi, [5, 95]))
    else:
        bpm = float(np.median(path.bpm))
        low = high = bpm
    downbeat_index = find_downbeats(frames, found)
    drop_index = find_drops(frames, downbeat_index, found)
    return BeatAnalysis(
        bpm=round(bpm, 2),
        beats_ms=beats_ms,
        downbeats_ms=[beats_ms[i] for i in downbeat_index],
        duration_ms=math.floor(samples.size * 1000 / RATE),
        drops_ms=[beats_ms[i] for i in drop_index],
        tempo_ms=curve,
        bpm_range=(round(low, 1), round(high, 1)),
    )


def analyze_beats(path: str | Path) -> BeatAnalysis:
    """Find the beats, downbeats, drops and tempo of an audio file, or a video's sound.

    Raises:
        av.error.FFmpegError: when the file cannot be decoded.
    """
    samples = decode(Path(path), rate=RATE, channels=1)[0]
    return analyze_samples(samples)
