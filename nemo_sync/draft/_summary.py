"""One-line timeline summaries, in the seed's format.

Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Sequence

from nemo_sync.draft._parts import Segment, Track, TrackType

_LABELS = {TrackType.VIDEO: "Video", TrackType.AUDIO: "BGM", TrackType.TEXT: "Title"}


def finite(value: object) -> float | None:
    """A number as a float when it is finite, else None.

    NaN, Infinity and integers too large for a float (JSON allows ``1e309`` and ``10**400``)
    are shown as unknown rather than raising ValueError or OverflowError in a summary.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def seconds(ms: int | float) -> str:
    """Milliseconds as compact seconds: 10000 -> "10", 1500 -> "1.5", unknown -> "?"."""
    number = finite(ms)
    if number is None:
        return "?"
    value = round(number / 1000.0, 1)
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def span(ms_from: int, ms_to: int, unit: str = "s") -> str:
    """A time range: "0-10s" (the seed's form) or "0-10 s"."""
    return f"{seconds(ms_from)}-{seconds(ms_to)}{unit}"


def percent(volume: float) -> str:
    """0.35 -> "35%"; callers pass a finite volume (see ``finite``)."""
    scaled = volume * 100
    return f"{round(scaled):d}%" if math.isfinite(scaled) else "?%"


def track_label(track: Track) -> str:
    """ "Video", "BGM", "Title", or the track's own name for types the SDK does not know."""
    if track.track_type in _LABELS:
        return _LABELS[track.track_type]
    if track.name:
        return track.name
    kind = int(track.track_type) if track.track_type is not None else "?"
    return f"Track (type {kind})"


def _names(segments: Sequence[Segment]) -> list[str]:
    """The distinct labels, in order of first appearance.

    A dict, not a list: membership in a list made a 40k-segment summary take seconds.
    """
    return list(dict.fromkeys(segment.label for segment in segments))


def track_content(track: Track, unit: str = "s") -> str:
    """What a track holds, with its time range: "Lo-fi (0-10s, 35%)"."""
    segments = track.segments
    if not segments:
        return "(empty)"
    where = span(track.start_ms, track.end_ms, unit)
    if track.track_type == TrackType.TEXT:
        texts = ", ".join(f'"{s.text or s.name or ""}"' for s in segments)
        return f"{texts} ({where})"
    names = _names(segments)
    if len(segments) == 1:
        what = names[0]
    else:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        what = f"{len(segments)} clips from {shown}"
    volumes = [v for s in segments if (v := finite(s.volume)) is not None]
    if track.track_type == TrackType.AUDIO and volumes:
        return f"{what} ({where}, {percent(volumes[0])})"
    return f"{what} ({where})"


def summary(tracks: Sequence[Track]) -> str:
    """The whole timeline in one line."""
    count = len(tracks)
    head = f"Timeline ({count} track{'s' if count != 1 else ''})"
    if not tracks:
        return f"{head}: empty"
    parts = [f"{i}. {track_label(t)}: {track_content(t)}" for i, t in enumerate(tracks, 1)]
    return f"{head}: " + " ".join(parts)
