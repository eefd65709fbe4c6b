"""What changed between two drafts, in sentences a user can read."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from nemo_sync.draft._parts import Segment, Track, TrackType
from nemo_sync.draft._summary import finite, percent, seconds, span, track_content

if TYPE_CHECKING:
    from nemo_sync.draft._draft import Draft

_NOUNS = {TrackType.VIDEO: "video track", TrackType.AUDIO: "audio track", TrackType.TEXT: "title"}


@attrs.frozen
class Change:
    """One change between two drafts.

    Attributes:
        kind: "track_added", "track_removed", "recut", "segment_added", "segment_removed",
            "volume", "timing", "text", "aspect", "duration".
        track: The track concerned (in the newer draft, or the older one when removed).
        segment: The segment concerned, when one is.
        sentence: The change in words, e.g. "Added audio track 'Lo-fi' (0-10 s, 35%)".
    """

    kind: str
    track: Track | None
    segment: Segment | None
    sentence: str


def _noun(track: Track) -> str:
    if track.track_type in _NOUNS:
        return _NOUNS[track.track_type]
    return f"track '{track.name or track.id or '?'}'"


def _match(old: Sequence[Track], new: Sequence[Track]) -> list[tuple[Track | None, Track | None]]:
    """Pair tracks by id, else by type and position among id-less tracks of that type.

    Each new track takes the first unmatched old track with its id, else the first unmatched
    id-less old track of its type; old tracks left over are paired with None. Queues per id
    and per type keep this linear (a scan per track made 40k tracks take seconds).
    """
    by_id: dict[str, deque[int]] = {}
    by_type: dict[object, deque[int]] = {}
    for index, track in enumerate(old):
        if track.id:
            by_id.setdefault(track.id, deque()).append(index)
        else:
            by_type.setdefault(track.track_type, deque()).append(index)
    matched: set[int] = set()
    pairs: list[tuple[Track | None, Track | None]] = []
    for track in new:
        queue = by_id.get(track.id) if track.id else None
        if not queue:
            queue = by_type.get(track.track_type)
        partner: Track | None = None
        if queue:
            index = queue.popleft()
            matched.add(index)
            partner = old[index]
        pairs.append((partner, track))
    pairs.extend((o, None) for i, o in enumerate(old) if i not in matched)
    return pairs


def _segment_changes(old: Track, new: Track) -> list[Change]:
    changes: list[Change] = []
    if new.track_type == TrackType.VIDEO and len(new.segments) != len(old.segments) > 0:
        beat = " on the beat" if len(new.segments) > len(old.segments) else ""
        changes.append(
            Change("recut", new, None, f"Cut the video into {len(new.segments)} clips{beat}")
        )
        return changes
    by_id = {s.id: s for s in old.segments if s.id}
    for index, segment in enumerate(new.segments):
        before = by_id.get(segment.id) if segment.id else None
        if before is None and index < len(old.segments) and not segment.id:
            before = old.segments[index]
        if before is None:
            changes.append(
                Change(
                    "segment_added",
                    new,
                    segment,
                    f"Added '{segment.label}' ({span(segment.start, segment.end_ms, ' s')})",
                )
            )
            continue
        # A non-finite volume (NaN, Infinity) counts as absent: NaN != NaN would otherwise
        # report a change on every turn, and formatting it raises.
        was_volume, volume = finite(before.volume), finite(segment.volume)
        if volume is not None and was_volume != volume:
            was = percent(was_volume) if was_volume is not None else "default"
            changes.append(
                Change(
                    "volume",
                    new,
                    segment,
                    f"Changed volume of '{segment.label}' from {was} to {percent(volume)}",
                )
            )
        if before.text != segment.text and segment.text is not None:
            changes.append(
                Change(
                    "text",
                    new,
                    segment,
                    f"Changed the title from '{before.text or ''}' to '{segment.text}'",
                )
            )
        if (before.start, before.end_ms) != (segment.start, segment.end_ms):
            verb = "Moved" if before.duration_ms == segment.duration_ms else "Trimmed"
            changes.append(
                Change(
                    "timing",
                    new,
                    segment,
                    f"{verb} '{segment.label}' to {span(segment.start, segment.end_ms, ' s')}",
                )
            )
    new_ids = {s.id for s in new.segments if s.id}
    for segment in old.segments[len(new.segments) :] if not new_ids else old.segments:
        if not new_ids or (segment.id and segment.id not in new_ids):
            changes.append(Change("segment_removed", new, segment, f"Removed '{segment.label}'"))
    return changes


def diff(old: Draft, new: Draft) -> list[Change]:
    """The changes that turn ``old`` into ``new``, in timeline order."""
    changes: list[Change] = []
    for before, after in _match(old.tracks, new.tracks):
        if before is None and after is not None:
            changes.append(
                Change("track_added", after, None, f"Added {_noun(after)} {_quoted_content(after)}")
            )
        elif after is None and before is not None:
            label = before.segments[0].label if before.segments else before.name or ""
            changes.append(
                Change("track_removed", before, None, f"Removed {_noun(before)} '{label}'")
            )
        elif before is not None and after is not None:
            changes.extend(_segment_changes(before, after))
    old_aspect, new_aspect = old.metadata.get("aspect"), new.metadata.get("aspect")
    if new_aspect and new_aspect != old_aspect:
        changes.append(Change("aspect", None, None, f"Changed the aspect ratio to {new_aspect}"))
    if old.duration_ms != new.duration_ms and new.duration_ms is not None and not changes:
        changes.append(
            Change(
                "duration",
                None,
                None,
                f"The timeline is now {seconds(new.duration_ms)} s long",
            )
        )
    return changes


def _quoted_content(track: Track) -> str:
    """ "'Lo-fi' (0-10 s, 35%)" for a one-segment track, else the summary's wording."""
    content = track_content(track, unit=" s")
    if len(track.segments) == 1 and track.track_type != TrackType.TEXT:
        name = track.segments[0].label
        return f"'{name}'" + content[len(name) :]
    return content.replace('"', "'")
