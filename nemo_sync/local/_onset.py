"""What the beat tracker listens to: onset envelopes, loudness and a coarse spectrum per frame.

One pass of a short-time Fourier transform over mono audio at :data:`RATE`, in blocks so memory
stays bounded for long songs. Every array has one value (or row) per hop of :data:`HOP`.
"""

from __future__ import annotations

import itertools

import attrs
import numpy as np
import numpy.typing as npt

RATE = 22050
N_FFT = 1024
HOP = 256
FPS = RATE / HOP  # frames per second (~86)
_BLOCK = 4096  # frames per FFT block
_LOW_HZ = 200.0  # kick and bass
_BAND_EDGES_HZ = np.geomspace(40.0, 2000.0, 25)  # bass notes and chords: where bars change

Array = npt.NDArray[np.float64]


@attrs.frozen
class Features:
    """Per-frame features of a piece of music.

    Attributes:
        flux: Spectral flux of the log spectrum (every instrument's onsets), unit scale.
        low: Flux of the linear low band (kick and bass onsets), unit scale.
        loudness_db: Frame power in dB.
        low_db: Low-band power in dB (what a drop adds most of).
        bands: ``(frames, 24)`` log magnitudes in log-spaced bands from 40 Hz to 2 kHz.
    """

    flux: Array
    low: Array
    loudness_db: Array
    low_db: Array
    bands: Array

    @property
    def frames(self) -> int:
        return len(self.flux)


def _band_matrix() -> npt.NDArray[np.float32]:
    freqs = np.arange(N_FFT // 2 + 1) * RATE / N_FFT
    matrix = np.zeros((len(freqs), len(_BAND_EDGES_HZ) - 1), dtype=np.float32)
    for k, (lo, hi) in enumerate(itertools.pairwise(_BAND_EDGES_HZ)):
        inside = (freqs >= lo) & (freqs < hi)
        if not inside.any():  # a band narrower than a bin takes the nearest bin
            inside = np.abs(freqs - (lo + hi) / 2) == np.abs(freqs - (lo + hi) / 2).min()
        matrix[inside, k] = 1.0 / inside.sum()
    return matrix


def features(samples: npt.NDArray[np.float32]) -> Features:
    """The features of mono float32 ``samples`` at :data:`RATE`."""
    if samples.size < N_FFT:
        zero = np.zeros(1)
        return Features(zero, zero, zero - 120, zero - 120, np.zeros((1, 24)))
    window = np.hanning(N_FFT).astype(np.float32)
    total = 1 + (samples.size - N_FFT) // HOP
    view = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP][:total]
    flux, low = np.zeros(total), np.zeros(total)
    power, low_power = np.zeros(total), np.zeros(total)
    bands = np.zeros((total, len(_BAND_EDGES_HZ) - 1))
    low_bins = max(2, int(_LOW_HZ * N_FFT / RATE))
    to_bands = _band_matrix()
    previous: npt.NDArray[np.float32] | None = None
    previous_low: npt.NDArray[np.float32] | None = None
    for start in range(0, total, _BLOCK):
        block = view[start : start + _BLOCK] * window
        linear = np.abs(np.fft.rfft(block, axis=1)).astype(np.float32)
        end = start + len(linear)
        mag = np.log1p(100.0 * linear)
        first = previous if previous is not None else mag[:1]
        rises = np.maximum(0.0, np.diff(np.vstack([first.reshape(1, -1), mag]), axis=0))
        flux[start:end] = rises.mean(axis=1)
        # The low band stays linear: log compression would make a soft kick and an accented
        # one look alike, and the accent is what marks beats among busy hi-hats.
        low_band = linear[:, :low_bins].sum(axis=1)
        first_low = previous_low if previous_low is not None else low_band[:1]
        low[start:end] = np.maximum(0.0, np.diff(np.concatenate([first_low, low_band])))
        squared = linear.astype(np.float64) ** 2
        power[start:end] = squared.sum(axis=1)
        low_power[start:end] = squared[:, :low_bins].sum(axis=1)
        bands[start:end] = np.log1p(100.0 * (linear @ to_bands))
        previous, previous_low = mag[-1], low_band[-1:]
    floor = 1e-10 * N_FFT
    return Features(
        flux=_detrend(flux),
        low=_detrend(low),
        loudness_db=10 * np.log10(power + floor),
        low_db=10 * np.log10(low_power + floor),
        bands=bands,
    )


def _detrend(flux: Array) -> Array:
    """Remove the slow trend so sustained loud parts do not look like onsets; unit scale."""
    width = int(FPS * 0.5) | 1
    box = np.ones(width)
    # Divided by the frames really averaged: zero padding would sink the trend at both ends
    # and turn the last half second's noise into onsets.
    trend = np.convolve(flux, box, mode="same") / np.convolve(np.ones_like(flux), box, mode="same")
    env = np.maximum(0.0, flux - trend)
    std = env.std()
    return env / std if std > 0 else env
