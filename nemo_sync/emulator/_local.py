"""The emulator's only door to the local engine (``nemo_sync.local``), every import guarded.

Without the ``local`` extra the emulator still runs: durations come from the standard library,
beats from a steady 120 BPM grid (``nemo_sync.local.plan`` is pure Python), and renders fail
with a message saying what to install.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from nemo_sync.emulator._render_worker import RenderBackend

logger = logging.getLogger("nemo_sync.emulator")

GRID_BPM = 120.0
BEATS_PER_BAR = 4


@attrs.frozen
class BeatInfo:
    """A music file's beats (ms from its start).

    Attributes:
        analyzed: True when they come from audio analysis, False for the steady grid.
        drops_ms: Where the music drops (the grid has none).
        bpm_range: The slowest and fastest tempo played (equal when steady).
    """

    bpm: float
    beats_ms: tuple[int, ...]
    downbeats_ms: tuple[int, ...]
    analyzed: bool
    drops_ms: tuple[int, ...] = ()
    bpm_range: tuple[float, float] | None = None


@attrs.frozen
class ClipInfo:
    """A clip to cut: a video (or an image, shown for a fixed time)."""

    media_id: str
    name: str
    kind: str
    duration_ms: int


@attrs.frozen
class CutPlanInfo:
    """Video segments (wire-format dicts: mid/st/d/in) and where the music starts."""

    segments: list[dict[str, Any]]
    music_in_ms: int
    beats_ms: tuple[int, ...]
    downbeats_ms: tuple[int, ...]
    drops_ms: tuple[int, ...] = ()
    mode: str = "strong"


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(round(float(v)) for v in values)


@attrs.frozen
class ProbeInfo:
    """What the local engine reads of a file: any of it may be unknown (``None``)."""

    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def probe_media(path: Path) -> ProbeInfo:
    """What the local engine reads of a file (nothing without the extra, or when it cannot)."""
    try:
        from nemo_sync.local import probe
        from nemo_sync.local._probe import picture_problem, picture_size
    except ImportError:
        return ProbeInfo()
    size = picture_size(path)
    if size is not None and picture_problem(*size) is not None:
        # FFmpeg decodes a whole picture to learn its size (+770 MB for 16000x16000): a
        # picture the renderer refuses anyway is known by its header alone.
        return ProbeInfo(width=size[0], height=size[1])
    try:
        info = probe(path)
    except Exception:  # an unreadable file falls back to the stdlib readers
        logger.debug("local probe failed for %s", path.name, exc_info=True)
        return ProbeInfo()
    value = getattr(info, "duration_ms", None)
    fps = getattr(info, "fps", None)
    return ProbeInfo(
        duration_ms=round(value) if isinstance(value, (int, float)) and value > 0 else None,
        width=_positive_int(getattr(info, "width", None)),
        height=_positive_int(getattr(info, "height", None)),
        fps=round(float(fps), 3) if isinstance(fps, (int, float)) and fps > 0 else None,
    )


def _positive_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None


def _clock(ms: int) -> str:
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def media_problem(path: Path, kind: str, claimed_ms: int | None = None) -> str | None:
    """Why the renderer could not use an uploaded file, in words that follow its name.

    ``None`` when it can, when that cannot be told (a file FFmpeg cannot open at all), and
    always without the ``local`` extra (there is no renderer to ask). Blocking: run it in a
    thread.

    Args:
        path: The stored file.
        kind: ``"video"``, ``"image"`` or ``"audio"``.
        claimed_ms: The duration its header gave (not an estimate), to say what it claims.
    """
    try:
        from nemo_sync.local._probe import media_problem as problem_of
    except ImportError:
        return None
    try:
        problem = problem_of(path, kind)
    except Exception:  # a check that breaks refuses nothing: a render would name the file
        logger.debug("checking %s failed", path.name, exc_info=True)
        return None
    if problem is not None and kind == "video" and claimed_ms:
        problem = f"its header says it lasts {_clock(claimed_ms)}, but {problem}"
    return problem


def analyse_beats(path: Path, duration_ms: int) -> BeatInfo:
    """The beats of a music file: analysed with the local extra, else a 120 BPM grid.

    Blocking (decodes audio): run it in a thread.

    Raises:
        Exception: whatever the analysis raises for a file it cannot decode.
    """
    try:
        from nemo_sync.local import analyze_beats
    except ImportError:  # no `local` extra: the pure-Python grid
        from nemo_sync.local.plan import beat_grid

        beats = tuple(beat_grid(GRID_BPM, duration_ms))
        return BeatInfo(GRID_BPM, beats, beats[::BEATS_PER_BAR], analyzed=False)
    found = analyze_beats(path)
    low, high = found.bpm_range
    return BeatInfo(
        float(found.bpm),
        _ints(found.beats_ms),
        _ints(found.downbeats_ms),
        analyzed=True,
        drops_ms=_ints(found.drops_ms),
        bpm_range=(float(low), float(high)),
    )


def plan_cuts(
    clips: Sequence[ClipInfo], beats: BeatInfo, music_ms: int, mode: str | None = None
) -> CutPlanInfo:
    """Cut the clips on the beats with the local engine's planner (pure Python).

    The edit lasts as long as the shorter of the music and the clips laid end to end, so
    neither loops nor runs silent. Every drop gets a cut; ``mode`` says where the others go
    (``None``: strong beats).

    Raises:
        ValueError: when there is nothing to cut.
    """
    from nemo_sync.local.plan import CUT_MODES, Clip, plan_beat_cuts

    clips_ms = sum(c.duration_ms for c in clips)
    total = min(music_ms, clips_ms) if music_ms > 0 else clips_ms
    plan = plan_beat_cuts(
        [Clip(media_id=c.media_id, name=c.name, duration_ms=c.duration_ms) for c in clips],
        beats_ms=beats.beats_ms,
        downbeats_ms=beats.downbeats_ms,
        drops_ms=beats.drops_ms,
        total_ms=total,
        mode=next((m for m in CUT_MODES if m == mode), "strong"),
    )
    return CutPlanInfo(
        segments=[dict(s) for s in plan.video_segments],
        music_in_ms=int(plan.music_in_ms),
        beats_ms=_ints(plan.beats_ms),
        downbeats_ms=_ints(plan.downbeats_ms),
        drops_ms=_ints(plan.drops_ms),
        mode=str(plan.mode),
    )


def default_backend() -> RenderBackend | None:
    """The local render backend when the extra is installed, else ``None``."""
    try:
        from nemo_sync.local import LocalRenderBackend
    except ImportError:
        return None
    backend: RenderBackend = LocalRenderBackend()
    return backend
