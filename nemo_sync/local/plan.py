"""Cut planning: where the video cuts go so that every cut lands on a beat.

Pure Python (no numpy, no av): the emulator uses it even without the ``local`` extra.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Sequence
from typing import Any, Literal

import attrs

# A cut this close to a downbeat moves onto it rather than making a tiny shot.
_SNAP_MS = 80
_SCENE_MATCH_MS = 60
# No shot is ever shorter than this, whatever the mode: a flash reads as a glitch.
_FLASH_MS = 250

CutMode = Literal["strong", "beat", "bar", "drop"]
CUT_MODES: tuple[CutMode, ...] = ("strong", "beat", "bar", "drop")
"""Where cuts go: ``strong`` beats (bar starts, then every N-th beat, at least ``min_shot_ms``
apart) and every drop; every ``beat``; every ``bar``; or only on the drops (``drop``)."""


@attrs.frozen
class Clip:
    """A video clip to cut into the timeline."""

    media_id: str
    name: str
    duration_ms: int
    scene_changes_ms: tuple[int, ...] = ()


@attrs.frozen
class CutPlan:
    """The plan: video segments (wire format) and where the music starts.

    Attributes:
        video_segments: ``{"id", "mid", "n", "st", "d", "in"}`` dicts, in timeline order.
        music_in_ms: Where in the music the timeline starts (non-zero when the music was
            shifted so its strong beats meet a single clip's scene changes).
        beats_ms: The beats on the timeline (after the shift).
        downbeats_ms: The downbeats (bar starts) on the timeline.
        drops_ms: The drops on the timeline (each one has a cut).
        mode: The cut mode used: the one asked for, or ``"bar"`` when ``"drop"`` was asked
            for and the music has no drops.
    """

    video_segments: list[dict[str, Any]]
    music_in_ms: int
    beats_ms: list[int]
    downbeats_ms: list[int]
    drops_ms: list[int] = attrs.field(factory=list)
    mode: CutMode = "strong"


def beat_grid(bpm: float, total_ms: int, *, offset_ms: int = 0) -> list[int]:
    """A steady grid of beats (ms): the fallback when the music cannot be analysed."""
    if bpm <= 0:
        raise ValueError(f"bpm must be positive; got {bpm}")
    step = 60000.0 / bpm
    count = int((total_ms - offset_ms) / step) + 1 if total_ms >= offset_ms else 0
    return [round(offset_ms + i * step) for i in range(count) if offset_ms + i * step <= total_ms]


def _cut_points(
    beats: Sequence[int],
    downbeats: Sequence[int],
    drops: Sequence[int],
    *,
    total_ms: int,
    min_shot_ms: int,
    mode: CutMode,
) -> list[int]:
    """Timeline positions (ms) where a shot starts: 0, then the points the mode asks for.

    Drops come first and are kept exactly; then bar starts (snapped onto the beat grid);
    then, for ``strong``, every N-th beat counted from a bar start, N the smallest step that
    keeps every shot ``min_shot_ms`` long. ``beat`` and ``bar`` cut on every one of theirs
    that leaves no flash; ``drop`` cuts nowhere else.
    """
    inside = sorted({b for b in beats if 0 <= b < total_ms})
    cuts: list[int] = []
    shortest = min_shot_ms if mode == "strong" else min(min_shot_ms, _FLASH_MS)

    def fits(point: int) -> bool:
        i = bisect.bisect_left(cuts, point)
        before_ok = i == 0 or point - cuts[i - 1] >= shortest
        after_ok = i == len(cuts) or cuts[i] - point >= shortest
        return before_ok and after_ok and point not in cuts

    for drop in sorted(d for d in drops if 0 < d < total_ms):
        if fits(drop):
            bisect.insort(cuts, drop)
    if mode != "drop" and len(inside) >= 2:
        for bar in sorted(downbeats):
            j = bisect.bisect_left(inside, bar)
            near = [inside[k] for k in (j - 1, j) if 0 <= k < len(inside)]
            snapped = min(near, key=lambda b: abs(b - bar)) if near else None
            if snapped is not None and abs(snapped - bar) <= _SNAP_MS and fits(snapped):
                bisect.insort(cuts, snapped)
        fill: Sequence[int] = ()
        if mode == "beat":
            fill = inside
        elif mode == "strong":
            interval = statistics.median(b - a for a, b in itertools.pairwise(inside))
            every = max(1, -(-min_shot_ms // max(int(interval), 1)))  # ceil: no short shot
            # Counted from the first bar start, so the fills share the bar's phase.
            first_bar = next((c for c in cuts if c in inside), None)
            phase = inside.index(first_bar) % every if first_bar is not None else 0
            fill = inside[phase::every]
        for point in fill:
            if fits(point):
                bisect.insort(cuts, point)
    # The first shot starts at 0 even when the first beat comes later; no flash after it.
    cuts = [c for c in cuts if c >= shortest]
    cuts.insert(0, 0)
    # The last shot must not be a flash either.
    while len(cuts) > 1 and total_ms - cuts[-1] < shortest:
        cuts.pop()
    return cuts


def plan_beat_cuts(
    clips: Sequence[Clip],
    *,
    beats_ms: Sequence[int],
    downbeats_ms: Sequence[int],
    total_ms: int,
    min_shot_ms: int = 700,
    drops_ms: Sequence[int] = (),
    mode: CutMode = "strong",
) -> CutPlan:
    """Cut ``clips`` (in order, looping when the music is longer) so every cut is on a beat.

    With a single clip that has scene changes, the clip is kept whole and the music is
    shifted instead, so that its strongest beats meet the scene changes.

    Args:
        clips: The clips, in the order they are shown.
        beats_ms: The music's beats.
        downbeats_ms: The beats that start a bar.
        total_ms: The length of the edit.
        min_shot_ms: The shortest shot in ``strong`` mode (other modes allow 250 ms).
        drops_ms: Where the music drops: each gets a cut exactly there, in every mode.
        mode: Where the other cuts go (see :data:`CUT_MODES`).

    Raises:
        ValueError: when there are no clips, the total is not positive or the mode unknown.
    """
    if not clips:
        raise ValueError("no clips to cut: upload a video first")
    if total_ms <= 0:
        raise ValueError(f"total_ms must be positive; got {total_ms}")
    if mode not in CUT_MODES:
        raise ValueError(f"mode must be one of {', '.join(CUT_MODES)}; got {mode!r}")
    if len(clips) == 1 and clips[0].scene_changes_ms:
        return _align_music_to_scenes(clips[0], beats_ms, downbeats_ms, total_ms)
    drops = sorted(d for d in drops_ms if 0 < d < total_ms)
    used: CutMode = "bar" if mode == "drop" and not drops else mode
    cuts = _cut_points(
        beats_ms, downbeats_ms, drops, total_ms=total_ms, min_shot_ms=min_shot_ms, mode=used
    )
    bounds = [*cuts, total_ms]
    segments: list[dict[str, Any]] = []
    position = {clip.media_id: 0 for clip in clips}
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        clip = clips[index % len(clips)]
        length = end - start
        source = position[clip.media_id]
        if source + length > clip.duration_ms:
            source = 0  # loop the clip from its start
        position[clip.media_id] = min(source + length, clip.duration_ms)
        segments.append(
            {
                "id": f"seg_v{index + 1}",
                "mid": clip.media_id,
                "n": clip.name,
                "st": start,
                "d": length,
                "in": source,
            }
        )
    beats = sorted(b for b in beats_ms if 0 <= b <= total_ms)
    downbeats = sorted(b for b in downbeats_ms if 0 <= b <= total_ms)
    return CutPlan(segments, 0, beats, downbeats, [d for d in drops if d in cuts], used)


def _align_music_to_scenes(
    clip: Clip, beats_ms: Sequence[int], downbeats_ms: Sequence[int], total_ms: int
) -> CutPlan:
    strong = sorted(downbeats_ms) or sorted(beats_ms)
    scenes = sorted(s for s in clip.scene_changes_ms if 0 < s < clip.duration_ms)
    best_offset, best_score = 0, -1
    # Candidate shifts put some strong beat exactly on some scene change.
    for beat in strong:
        for scene in scenes:
            offset = beat - scene
            if offset < 0:
                continue
            shifted = [b - offset for b in strong]
            score = sum(1 for s in scenes if any(abs(s - b) <= _SCENE_MATCH_MS for b in shifted))
            if score > best_score or (score == best_score and offset < best_offset):
                best_offset, best_score = offset, score
    length = min(clip.duration_ms, total_ms)
    bounds = [0, *[s for s in scenes if s < length], length]
    segments = [
        {"id": f"seg_v{i + 1}", "mid": clip.media_id, "n": clip.name, "st": a, "d": b - a, "in": a}
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    beats = [b - best_offset for b in sorted(beats_ms) if 0 <= b - best_offset <= length]
    downbeats = [b - best_offset for b in strong if 0 <= b - best_offset <= length]
    return CutPlan(segments, best_offset, beats, downbeats)
