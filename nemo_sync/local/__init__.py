"""The local render engine: beat analysis, cut planning and H.264/AAC encoding, offline.

:func:`analyze_beats` returns everything it found (beats, downbeats, drops, the tempo curve
and the BPM range) as a :class:`BeatAnalysis`, for the cut planner or for a plot.

Needs the ``local`` extra (``pip install 'nemo-sync[local]'``: av, numpy, pillow) for
everything but :mod:`nemo_sync.local.plan`, which is pure Python. Importing this package
never fails; using a heavy name without the extra raises :class:`MissingExtraError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nemo_sync.local.plan import CUT_MODES, Clip, CutMode, CutPlan, beat_grid, plan_beat_cuts

if TYPE_CHECKING:
    from nemo_sync.local._beats import BeatAnalysis, analyze_beats
    from nemo_sync.local._encode import LocalRenderBackend
    from nemo_sync.local._probe import MediaInfo, probe
    from nemo_sync.local._samples import SampleMedia, make_sample_media

__all__ = [
    "CUT_MODES",
    "BeatAnalysis",
    "Clip",
    "CutMode",
    "CutPlan",
    "LocalRenderBackend",
    "MediaInfo",
    "MissingExtraError",
    "SampleMedia",
    "analyze_beats",
    "beat_grid",
    "make_sample_media",
    "plan_beat_cuts",
    "probe",
]


class MissingExtraError(ImportError):
    """The local render engine needs ``pip install 'nemo-sync[local]'``."""


_HEAVY = {
    "BeatAnalysis": "_beats",
    "analyze_beats": "_beats",
    "MediaInfo": "_probe",
    "probe": "_probe",
    "LocalRenderBackend": "_encode",
    "SampleMedia": "_samples",
    "make_sample_media": "_samples",
}


def __getattr__(name: str) -> Any:
    module = _HEAVY.get(name)
    if module is None:
        raise AttributeError(f"module 'nemo_sync.local' has no attribute {name!r}")
    try:
        loaded = importlib.import_module(f"nemo_sync.local.{module}")
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("av", "numpy", "PIL"):
            raise MissingExtraError(
                f"nemo_sync.local.{name} needs the local render engine: "
                f"pip install 'nemo-sync[local]' (missing: {exc.name})"
            ) from exc
        raise
    return getattr(loaded, name)
