"""Cut planning: where the video cuts go so that every cut lands on a beat.

Pure Python (no numpy, no av): the emulator uses it even without the ``local`` extra.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Sequence
from typing import Any

import attrs

# A cut this close to a downbeat ("drop") moves onto it rather than making a tiny shot.
_SNAP_MS = 80
_SCENE_MATCH_MS = 60


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
        downbeats_ms: The downbeats ("drops") on the timeline.
    """

    video_segments: list[dict[str, Any]]
    music_in_ms: int
    beats_ms: list[int]
    downbeats_ms: list[int]


def beat_grid(bpm: float, total_ms: int, *, offset_ms: int = 0) -> list[int]:
    """A steady grid of beats (ms): the fallback when the music cannot be analysed."""
    if bpm <= 0:
        raise ValueError(f"bpm must be positive; got {bpm}")
    step = 60000.0 / bpm
    count = int((total_ms - offset_ms) / step) + 1 if total_ms >= offset_ms else 0
    return [round(offset_ms + i * step) for i in range(count) if offset_ms + i * step <= total_ms]


def _cut_points(
    beats: Sequence[int], downbeats: Sequence[int], total_ms: int, min_shot_ms: int
) -> list[int]:
    """Timeline positions (ms) where a shot starts: 0, beats every N, and the downbeats."""
    inside = sorted({b for b in beats if 0 <= b < total_ms})
    if len(inside) < 2:
        return [0]
    interval = statistics.median(b - a for a, b in itertools.pairwise(inside))
    every = max(1, -(-min_shot_ms // max(int(interval), 1)))  # ceil: no shot under min_shot
    # Downbeats are cuts first (snapped onto the beat grid), then every N-th beat fills in.
    beat_set = inside
    cuts: list[int] = []

    def fits(point: int) -> bool:
        i = bisect.bisect_left(cuts, point)
        before_ok = i == 0 or point - cuts[i - 1] >= min_shot_ms
        after_ok = i == len(cuts) or cuts[i] - point >= min_shot_ms
        return before_ok and after_ok

    for drop in sorted(downbeats):
        j = bisect.bisect_left(beat_set, drop)
        near = [beat_set[k] for k in (j - 1, j) if 0 <= k < len(beat_set)]
        snapped = min(near, key=lambda b: abs(b - drop)) if near else None
        if snapped is not None and abs(snapped - drop) <= _SNAP_MS and fits(snapped):
            bisect.insort(cuts, snapped)
    # Fill in every N-th beat counted from the first downbeat, so fills share the bar's phase.
    phase = beat_set.index(cuts[0]) % every if cuts else 0
    for point in beat_set[phase::every]:
        if point not in cuts and fits(point):
            bisect.insort(cuts, point)
    if not cuts or cuts[0] != 0:
        # The first shot starts at 0 even when the first beat comes later.
        cuts = [c for c in cuts if c >= min_shot_ms or c == 0]
        if not cuts or cuts[0] != 0:
            cuts.insert(0, 0)
    # The last shot must not be a flash either.
    while len(cuts) > 1 and total_ms - cuts[-1] < min_shot_ms:
        cuts.pop()
    return cuts


def plan_beat_cuts(
    clips: Sequence[Clip],
    *,
    beats_ms: Sequence[int],
    downbeats_ms: Sequence[int],
    total_ms: int,
    min_shot_ms: int = 700,
) -> CutPlan:
    """Cut ``clips`` (in order, looping when the music is longer) so every cut is on a beat.

    With a single clip that has scene changes, the clip is kept whole and the music is
    shifted instead, so that its strongest beats meet the scene changes.

    Raises:
        ValueError: when there are no clips or the total is not positive.
    """
    if not clips:
        raise ValueError("no clips to cut: upload a video first")
    if total_ms <= 0:
        raise ValueError(f"total_ms must be positive; got {total_ms}")
    if len(clips) == 1 and clips[0].scene_changes_ms:
        return _align_music_to_scenes(clips[0], beats_ms, downbeats_ms, total_ms)
    cuts = _cut_points(beats_ms, downbeats_ms, total_ms, min_shot_ms)
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
    return CutPlan(segments, 0, beats, downbeats)


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
