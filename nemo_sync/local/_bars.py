"""Bars and drops, from the beats: which beat starts each bar, and where the music surges.

A bar starts where the kick is heavy and the harmony changes (the bass note and the chord
usually move with the bar), so each run of beats takes the phase of four whose beats carry
the most of both. A drop is a beat where the low end (kick and bass) comes back much louder
than it was over the bars before: the release after a build, or the groove after an intro or
a break.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from nemo_sync.local._onset import Features

Array = npt.NDArray[np.float64]
BEATS_PER_BAR = 4
_RUN_BREAK = 1.6  # a gap this many beat periods long ends a run (a break or an intro)
_DROP_DB = 6.0  # how much louder the low end must be after a drop than before it
_FLOOR_DB = 50.0  # below the loudest frame: quieter is counted as this quiet
_DROP_BARS = 2  # the bars compared before and after a candidate drop
_DROP_SPACING_BEATS = 16  # two drops are at least four bars apart


def runs(frames: list[int]) -> list[range]:
    """Index ranges of beats with no break between them."""
    if not frames:
        return []
    gaps = np.diff(frames)
    starts = [0]
    for i, gap in enumerate(gaps, start=1):
        local = np.median(gaps[max(0, i - 5) : i + 4])
        if gap > _RUN_BREAK * local:
            starts.append(i)
    ends = [*starts[1:], len(frames)]
    return [range(a, b) for a, b in zip(starts, ends, strict=True)]


def _z(values: Array) -> Array:
    std = values.std()
    return (values - values.mean()) / std if std > 0 else values * 0.0


def find_downbeats(frames: list[int], found: Features) -> list[int]:
    """Indices (into ``frames``) of the beats that start a bar."""
    if not frames:
        return []
    n = found.frames
    at = np.clip(np.asarray(frames), 0, n - 1)
    accent = np.array([found.low[max(0, f - 2) : f + 3].max() for f in at])
    # Harmony per beat: the mean coarse spectrum from this beat to the next.
    bounds = [*at.tolist(), min(n, int(at[-1] + np.median(np.diff(at)))) if len(at) > 1 else n]
    spectra = np.array(
        [found.bands[a : max(a + 1, b)].mean(axis=0) for a, b in itertools.pairwise(bounds)]
    )
    change = np.zeros(len(at))
    change[1:] = np.linalg.norm(np.diff(spectra, axis=0), axis=1)
    downbeats: list[int] = []
    for run in runs(frames):
        if len(run) < BEATS_PER_BAR:
            downbeats.append(run.start)
            continue
        evidence = _z(accent[run.start : run.stop]) + _z(change[run.start : run.stop])
        phase = max(
            range(BEATS_PER_BAR),
            key=lambda p: float(evidence[p::BEATS_PER_BAR].mean()),
        )
        downbeats += list(range(run.start + phase, run.stop, BEATS_PER_BAR))
    return downbeats


def _mean_db(db: Array, lo: int, hi: int) -> float:
    """The mean level (dB) over frames ``lo:hi``.

    The mean of decibels, not of power: a window half quiet and half loud then sits halfway,
    so the contrast peaks exactly at the step instead of a bar early, when the loud part
    would already dominate a power mean.
    """
    return float(np.mean(db[lo:hi]))


def find_drops(frames: list[int], downbeats: list[int], found: Features) -> list[int]:
    """Indices (into ``frames``) of the beats where the music drops."""
    if len(frames) < 2:
        return []
    n = found.frames
    period = float(np.median(np.diff(frames)))
    window = round(_DROP_BARS * BEATS_PER_BAR * period)
    contrast = np.full(len(frames), -np.inf)
    level = np.maximum(found.low_db, found.low_db.max() - _FLOOR_DB)  # silence is just quiet
    # Where the sound begins: a song's first beat after silence is not a drop.
    sounding = np.flatnonzero(found.loudness_db > found.loudness_db.max() - _FLOOR_DB)
    first = int(sounding[0]) if sounding.size else 0
    for i, f in enumerate(frames):
        before = max(first, f - window)
        if f - before < BEATS_PER_BAR * period or f + window > n:
            continue  # less than a bar of sound before it, or cut off at the end
        contrast[i] = _mean_db(level, f, f + window) - _mean_db(level, before, f)
    bar_starts = set(downbeats)
    drops: list[int] = []
    for i in np.argsort(-contrast):
        if contrast[i] < _DROP_DB:
            break
        if all(abs(int(i) - j) >= _DROP_SPACING_BEATS for j in drops):
            drops.append(int(i))
    # A drop lands on a bar start: when the downbeat next to it is about as strong, use it.
    snapped = []
    for i in drops:
        near = [j for j in (i - 1, i + 1) if j in bar_starts and contrast[j] >= contrast[i] - 1.0]
        snapped.append(i if i in bar_starts or not near else near[0])
    return sorted(snapped)
