"""Draft, Track, Segment: the timeline as readable attrs models.

The wire format (short keys) lives in ``_wire.py``, not here. Every field is optional on the
wire, so each defaults to None (or an empty list) and is written back only when it was there.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from nemo_sync._contract import TRACK_AUDIO, TRACK_TEXT, TRACK_VIDEO


class TrackType(enum.IntEnum):
    """The type of a track (``tt`` on the wire). Unknown values are kept, never an error."""

    VIDEO = TRACK_VIDEO
    AUDIO = TRACK_AUDIO
    TEXT = TRACK_TEXT

    @classmethod
    def _missing_(cls, value: object) -> TrackType | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        # A pseudo-member, so a type the SDK does not know (say 9) still round-trips.
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member


def _extra() -> dict[str, Any]:
    return {}


@attrs.define(eq=True)
class Segment:
    """A piece of media (or text) placed on a track.

    Times are in milliseconds. ``source_start_ms`` is where in the media the segment begins.
    """

    id: str | None = None
    media_id: str | None = None
    name: str | None = None
    start_ms: int | None = None
    duration_ms: int | None = None
    source_start_ms: int | None = None
    volume: float | None = None
    text: str | None = None
    extra: dict[str, Any] = attrs.field(factory=_extra, repr=False)
    wire_keys: frozenset[str] = attrs.field(default=frozenset(), repr=False, eq=False)

    @property
    def start(self) -> int:
        """Start on the timeline, ms (0 when not set)."""
        return self.start_ms or 0

    @property
    def end_ms(self) -> int:
        """End on the timeline, ms."""
        return self.start + (self.duration_ms or 0)

    @property
    def label(self) -> str:
        """What to call the segment: its text, its name, or its media id."""
        return self.text or self.name or self.media_id or self.id or "segment"


@attrs.define(eq=True)
class Track:
    """A row of the timeline: video, audio (music) or text."""

    id: str | None = None
    track_type: TrackType | None = None
    name: str | None = None
    segments: list[Segment] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=_extra, repr=False)
    wire_keys: frozenset[str] = attrs.field(default=frozenset(), repr=False, eq=False)

    @property
    def start_ms(self) -> int:
        return min((s.start for s in self.segments), default=0)

    @property
    def end_ms(self) -> int:
        return max((s.end_ms for s in self.segments), default=0)
