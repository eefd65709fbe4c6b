"""Draft: the whole timeline, with the wire round trip, summary, diff and builders."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from nemo_sync._models import Media
from nemo_sync.draft import _wire
from nemo_sync.draft._diff import Change, diff
from nemo_sync.draft._parts import Segment, Track, TrackType
from nemo_sync.draft._summary import finite, summary
from nemo_sync.errors import DraftValidationError


@attrs.define(eq=True, repr=False)
class Draft:
    """The timeline of a session.

    Build one from the service's JSON with :meth:`from_wire`, write it back with
    :meth:`to_wire` (unknown keys included, unchanged). ``str(draft)`` is the summary.

    Attributes:
        tracks: The tracks, top to bottom.
        duration_ms: The timeline's length in ms, when the service set it.
        metadata: The ``m`` object (aspect ratio, beat markers, and whatever else).
    """

    tracks: list[Track] = attrs.field(factory=list)
    duration_ms: int | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)
    wire_keys: frozenset[str] = attrs.field(default=frozenset(), eq=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Draft:
        """Read the service's draft JSON. The input is never modified.

        Raises:
            DraftFormatError: when the JSON is not draft-shaped, or nests deeper than
                100 levels (which would exhaust the recursion of the copies).
        """
        result: Draft = _wire.converter.structure(data, cls)
        return result

    def to_wire(self) -> dict[str, Any]:
        """The draft as the service's JSON (short keys), unknown keys included."""
        result: dict[str, Any] = _wire.converter.unstructure(self, Draft)
        return result

    def copy(self) -> Draft:
        """A deep copy."""
        return Draft.from_wire(self.to_wire())

    # Reading

    def summary(self) -> str:
        """The timeline in one line, e.g. ``Timeline (2 tracks): 1. Video: ... 2. BGM: ...``."""
        return summary(self.tracks)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<Draft {self.summary()}>"

    def diff(self, other: Draft) -> list[Change]:
        """What changed from this draft to ``other``, as :class:`Change` objects."""
        return diff(self, other)

    @property
    def end_ms(self) -> int:
        """The timeline's length: ``duration_ms`` when set, else the end of the last segment."""
        if self.duration_ms is not None:
            return self.duration_ms
        return max((t.end_ms for t in self.tracks), default=0)

    @property
    def beats_ms(self) -> list[int]:
        """Beat markers (ms) from the metadata, when the draft has them."""
        beats = self.metadata.get("beats")
        if not isinstance(beats, list):
            return []
        # NaN, Infinity and 10**400 are not beats anyone can draw: left out, not an error.
        return [int(b) for b in beats if isinstance(b, (int, float)) and finite(b) is not None]

    def tracks_of(self, track_type: TrackType) -> list[Track]:
        """The tracks of one type."""
        return [t for t in self.tracks if t.track_type == track_type]

    def _repr_html_(self) -> str:
        from nemo_sync.draft._svg import timeline_svg

        return timeline_svg(self)

    # Building

    def add_video(
        self, media: Media | str, start: float, end: float, *, source_start: float = 0.0
    ) -> Segment:
        """Place a video clip on the timeline from ``start`` to ``end`` seconds."""
        return self._add(TrackType.VIDEO, "Video", media, start, end, source_start=source_start)

    def add_audio(
        self,
        media: Media | str,
        start: float = 0.0,
        end: float | None = None,
        *,
        volume: float = 0.35,
        source_start: float = 0.0,
    ) -> Segment:
        """Place music from ``start`` to ``end`` seconds (default: to the end of the timeline)."""
        if not 0.0 <= volume <= 1.0:
            raise DraftValidationError(
                f"volume must be between 0 and 1 (0.35 is 35%); got {volume}"
            )
        if end is None:
            end = max(self.end_ms / 1000.0, start)
            if end <= start:
                raise DraftValidationError("add_audio needs an end time: the timeline is empty")
        return self._add(
            TrackType.AUDIO, "BGM", media, start, end, volume=volume, source_start=source_start
        )

    def add_text(self, text: str, start: float, end: float) -> Segment:
        """Show ``text`` as a title from ``start`` to ``end`` seconds."""
        if not text.strip():
            raise DraftValidationError("a title needs some text")
        return self._add(TrackType.TEXT, "Title", None, start, end, text=text)

    def _add(
        self,
        track_type: TrackType,
        track_name: str,
        media: Media | str | None,
        start: float,
        end: float,
        *,
        source_start: float = 0.0,
        volume: float | None = None,
        text: str | None = None,
    ) -> Segment:
        what = text if text is not None else media.name if isinstance(media, Media) else media
        if start < 0 or source_start < 0:
            raise DraftValidationError(f"'{what}': times cannot be negative (start={start})")
        if end <= start:
            raise DraftValidationError(f"'{what}': end ({end} s) must be after start ({start} s)")
        start_ms, end_ms = round(start * 1000), round(end * 1000)
        # The id when the service gave one, else the media's URL [R]: what names it there.
        media_id = media.key if isinstance(media, Media) else media
        name: str | None = (
            text if text is not None else media.name if isinstance(media, Media) else media_id
        )
        length = _media_length_ms(media)
        if length is not None and round(source_start * 1000) + end_ms - start_ms > length:
            raise DraftValidationError(
                f"'{name}' is {length / 1000:g} s long: a {end - start:g} s segment from "
                f"{source_start:g} s runs past its end; shorten it or start earlier"
            )
        track = next(iter(self.tracks_of(track_type)), None)
        if track is None:
            track = Track(id=f"trk_{uuid.uuid4().hex[:8]}", track_type=track_type, name=track_name)
            self.tracks.append(track)
        for other in track.segments:
            if start_ms < other.end_ms and other.start < end_ms:
                raise DraftValidationError(
                    f"'{name}' ({start:g}-{end:g} s) overlaps '{other.label}' "
                    f"({other.start / 1000:g}-{other.end_ms / 1000:g} s) on the {track_name} track"
                )
        segment = Segment(
            id=f"seg_{uuid.uuid4().hex[:8]}",
            media_id=media_id if isinstance(media_id, str) else None,
            name=name,
            start_ms=start_ms,
            duration_ms=end_ms - start_ms,
            source_start_ms=round(source_start * 1000) if media is not None else None,
            volume=volume,
            text=text,
        )
        track.segments.append(segment)
        track.segments.sort(key=lambda s: s.start)
        if self.duration_ms is None or end_ms > self.duration_ms:
            self.duration_ms = end_ms
        return segment


def _media_length_ms(media: Media | str | None) -> int | None:
    if isinstance(media, Media):
        return media.duration_ms
    return None


_wire.register_draft(Draft)
