"""Synthetic songs with known beats, downbeats and drops: the truth the beat tracker is judged by.

Drums (kick, snare, hi-hats), a bass line and pad chords that change every bar, rendered at a
tempo that may move (a linear ramp in BPM), so each beat's time is known exactly. The songs
are deliberately unlike the demo's sample track: different kits, patterns and tempi, so a
tracker tuned on one cannot pass by memorising it.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

RATE = 44100
Samples = npt.NDArray[np.float64]


@attrs.frozen
class Song:
    """A synthesised song and its truth (seconds)."""

    name: str
    samples: npt.NDArray[np.float32]
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    drops: tuple[float, ...] = ()
    beatless: tuple[tuple[float, float], ...] = ()  # stretches with no pulse at all
    bpm: tuple[float, float] = (0.0, 0.0)  # slowest and fastest tempo played

    @property
    def seconds(self) -> float:
        return self.samples.size / RATE

    def write(self, path: Path, *, halve: bool = False) -> Path:
        """A 16-bit WAV; ``halve`` writes it at 22050 Hz (half the size, for uploads)."""
        samples = self.samples
        if halve:  # average pairs first: a crude low-pass, enough against aliasing hats
            even = samples[: samples.size // 2 * 2]
            samples = (even[0::2] + even[1::2]) / 2
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE // 2 if halve else RATE)
            out.writeframes(pcm.tobytes())
        return path


def ramp_beats(start: float, seconds: float, bpm0: float, bpm1: float) -> list[float]:
    """Beat times from ``start`` for ``seconds`` while the tempo moves linearly bpm0 -> bpm1."""
    # Beats are where the phase integral of the tempo crosses an integer:
    # phase(t) = (bpm0 t + (bpm1 - bpm0) t^2 / (2 T)) / 60.
    slope = (bpm1 - bpm0) / seconds
    beats, k = [], 0
    while True:
        if abs(slope) < 1e-9:
            t = 60.0 * k / bpm0
        else:
            t = (-bpm0 + math.sqrt(bpm0 * bpm0 + 2 * slope * 60.0 * k)) / slope
        if t >= seconds:
            return beats
        beats.append(start + t)
        k += 1


class _Mixer:
    def __init__(self, seconds: float, seed: int) -> None:
        self.out = np.zeros(int(seconds * RATE))
        self.rng = np.random.default_rng(seed)

    def add(self, at: float, sound: Samples, gain: float = 1.0) -> None:
        i = round(at * RATE)
        end = min(self.out.size, i + sound.size)
        if 0 <= i < self.out.size:
            self.out[i:end] += gain * sound[: end - i]

    def kick(self, pitch: float = 55.0, decay: float = 9.0) -> Samples:
        t = np.arange(int(0.35 * RATE)) / RATE
        sweep = pitch + 3 * pitch * np.exp(-t * 40)
        return np.sin(2 * np.pi * np.cumsum(sweep) / RATE) * np.exp(-t * decay)

    def snare(self, decay: float = 18.0) -> Samples:
        t = np.arange(int(0.2 * RATE)) / RATE
        body = 0.4 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30)
        return (self.rng.normal(0, 0.5, t.size) * np.exp(-t * decay) + body) * 0.8

    def hat(self, decay: float = 70.0) -> Samples:
        t = np.arange(int(0.06 * RATE)) / RATE
        return np.diff(self.rng.normal(0, 1, t.size + 1)) * np.exp(-t * decay) * 0.12

    def tone(self, hz: float, seconds: float, gain: float, attack: float = 0.01) -> Samples:
        t = np.arange(int(seconds * RATE)) / RATE
        env = np.minimum(1.0, t / attack) * np.minimum(1.0, (seconds - t) / 0.05)
        return gain * env * np.sin(2 * np.pi * hz * t)

    def chord(self, root: float, seconds: float, gain: float, attack: float = 0.08) -> Samples:
        return sum(
            (self.tone(root * r, seconds, gain / 3, attack) for r in (2.0, 2.52, 3.0)),
            start=np.zeros(int(seconds * RATE)),
        )

    def finish(self) -> npt.NDArray[np.float32]:
        self.out += self.rng.normal(0, 0.003, self.out.size)  # a recording's noise floor
        peak = float(np.abs(self.out).max()) or 1.0
        return (self.out * (0.9 / peak)).astype(np.float32)


_ROOTS = (55.0, 43.65, 49.0, 41.2)  # A, F, G, E: one per bar
# Kick positions within a bar (in beats): on the floor, or a syncopated pop pattern.
FOUR = (0.0, 1.0, 2.0, 3.0)
POP = (0.0, 1.5, 2.0, 2.75)


def _at(beats: list[float], position: float) -> float:
    """The time of a fractional beat position (between two known beats)."""
    i = min(int(position), len(beats) - 2)
    return beats[i] + (position - i) * (beats[i + 1] - beats[i])


def _groove(
    mix: _Mixer,
    beats: list[float],
    *,
    kicks: tuple[float, ...] = POP,
    hats: int = 4,
    swing: float = 0.5,
    bass: bool = True,
    pads: bool = True,
    kick_gain: float = 1.0,
) -> None:
    """A bar-based groove over ``beats`` (the last beat only ends the previous one).

    Kick at ``kicks`` within each bar, snare on 2 and 4, ``hats`` hi-hats per beat (accented
    on the beat), a syncopated bass line and pad chords that change every bar, pushed an
    eighth early now and then, as players do. Hits are humanised by a few milliseconds.
    ``swing`` is where the off-beat eighth falls within the beat (0.5 straight, 2/3 swung).
    """
    kick, snare, hat = mix.kick(), mix.snare(), mix.hat()
    grid = [*beats, beats[-1] + (beats[-1] - beats[-2])]

    def hit(position: float, sound: Samples, gain: float) -> None:
        if position <= len(beats) - 1:
            mix.add(_at(grid, position) + mix.rng.normal(0, 0.004), sound, gain)

    for bar_start in range(0, len(beats), 4):
        for k in kicks:
            hit(bar_start + k, kick, kick_gain)
        for b in (1, 3):
            hit(bar_start + b, snare, 0.9)
        for b in range(4):
            for h in range(hats):
                offset = h / hats if hats != 2 else (0.0, swing)[h]
                hit(bar_start + b + offset, hat, 1.0 if h == 0 else 0.7)
        root = _ROOTS[(bar_start // 4) % len(_ROOTS)]
        bar = _at(grid, bar_start + 4) - _at(grid, bar_start) if bar_start + 4 < len(grid) else 0
        if bar <= 0:
            continue
        beat = bar / 4
        if bass:
            for position, length in ((0.0, 1.4), (1.5, 0.9), (2.75, 1.1)):
                hit(bar_start + position, mix.tone(root, length * beat, 0.25), 1.0)
        if pads:
            push = 0.5 if (bar_start // 4) % 2 else 0.0  # every other chord comes an 8th early
            if bar_start - push >= 0:
                hit(bar_start - push, mix.chord(root * 2, bar * 0.98, 0.12), 1.0)


def steady(bpm: float, *, first: float = 0.25, seconds: float = 24.0, swing: float = 0.5) -> Song:
    """A steady groove; ``swing`` 2/3 gives swung hi-hats."""
    beats = ramp_beats(first, seconds - first - 0.5, bpm, bpm)
    mix = _Mixer(seconds, seed=int(bpm))
    if swing != 0.5:
        _groove(mix, beats, kicks=FOUR, hats=2, swing=swing)
    else:
        _groove(mix, beats)
    name = f"steady {bpm:g} BPM" + (", swung hi-hats" if swing != 0.5 else "")
    return Song(name, mix.finish(), tuple(beats), tuple(beats[::4]), bpm=(bpm, bpm))


def ramp(bpm0: float, bpm1: float, *, over: float = 20.0, hold: float = 6.0) -> Song:
    """The tempo moves linearly from ``bpm0`` to ``bpm1`` over ``over`` s, then holds."""
    first = 0.2
    beats = ramp_beats(first, over, bpm0, bpm1)
    beats += ramp_beats(beats[-1] + 60.0 / bpm1, hold, bpm1, bpm1)
    mix = _Mixer(first + over + hold + 1.0, seed=int(bpm0 + bpm1))
    _groove(mix, beats)
    name = f"tempo {'rising' if bpm1 > bpm0 else 'falling'} {bpm0:g} -> {bpm1:g} BPM"
    return Song(name, mix.finish(), tuple(beats), tuple(beats[::4]), bpm=(bpm0, bpm1))


def beatless_intro(bpm: float = 90.0, *, intro: float = 4.0, seconds: float = 24.0) -> Song:
    """Pads with no pulse for ``intro`` seconds, then the groove."""
    mix = _Mixer(seconds, seed=3)
    # A swelling chord and a slow filtered-noise wash: sound, but no onsets to tap to.
    swell = mix.chord(110.0, intro + 0.3, 0.3, attack=intro * 0.8)
    wash = np.convolve(mix.rng.normal(0, 0.05, swell.size), np.ones(64) / 64, mode="same")
    mix.add(0.0, swell + wash * np.linspace(0, 1, swell.size))
    beats = ramp_beats(intro, seconds - intro - 0.5, bpm, bpm)
    _groove(mix, beats, kicks=FOUR, hats=2)
    return Song(
        f"{intro:g} s beatless intro, then {bpm:g} BPM",
        mix.finish(),
        tuple(beats),
        tuple(beats[::4]),
        drops=(intro,),
        beatless=((0.0, intro - 0.05),),
        bpm=(bpm, bpm),
    )


def build_and_drop(bpm: float = 128.0, *, bars: tuple[int, int, int] = (4, 4, 8)) -> Song:
    """Bars of light groove, a build (snare roll, rising sweep, no kick), then the drop.

    ``bars`` counts the bars of each part. The drop brings a heavy kick on every beat, a loud
    bass and a crash.
    """
    bar = 4 * 60.0 / bpm
    seconds = sum(bars) * bar + 0.5
    beats = ramp_beats(0.3, sum(bars) * bar, bpm, bpm)
    mix = _Mixer(seconds + 0.3, seed=11)
    one, two = 4 * bars[0], 4 * (bars[0] + bars[1])
    intro, build, drop = beats[:one], beats[one:two], beats[two:]
    _groove(mix, [*intro, build[0]], kicks=(0.0, 2.0), hats=2, kick_gain=0.5, bass=False)
    snare, step = mix.snare(decay=30.0), 60.0 / bpm
    for i, at in enumerate(build[:-1]):  # the last beat before the drop is silent
        # The roll doubles every bar: quarters, eighths, sixteenths, thirty-seconds.
        hits = 2 ** max(0, min(3, (i // 4) + 4 - bars[1]))
        for h in range(hits):
            mix.add(at + h * step / hits, snare, 0.25 + 0.5 * i / len(build))
    t = np.arange(int(bars[1] * bar * RATE)) / RATE
    riser = np.convolve(mix.rng.normal(0, 1, t.size), np.ones(8) / 8, mode="same")
    mix.add(build[0], riser * (t / t[-1]) ** 2 * 0.15)
    mix.add(drop[0], mix.rng.normal(0, 1, RATE) * np.exp(-np.arange(RATE) / RATE * 4) * 0.3)
    _groove(mix, drop, kicks=FOUR, kick_gain=1.6)
    return Song(
        f"build and drop at {bpm:g} BPM",
        mix.finish(),
        tuple(beats),
        tuple(beats[::4]),
        drops=(drop[0],),
        bpm=(bpm, bpm),
    )


SONGS: dict[str, Callable[[], Song]] = {
    "steady100": lambda: steady(100.0, first=0.25),
    "swung128": lambda: steady(128.0, swing=2 / 3),
    "intro90": beatless_intro,
    "rising": lambda: ramp(120.0, 136.0),
    "falling": lambda: ramp(126.0, 108.0),
    "drop128": build_and_drop,
}
