"""The timeline (draft) models: read, summarise, compare, build and draw the service's JSON."""

from nemo_sync.draft._diff import Change
from nemo_sync.draft._draft import Draft
from nemo_sync.draft._parts import Segment, Track, TrackType
from nemo_sync.errors import DraftFormatError, DraftValidationError

__all__ = [
    "Change",
    "Draft",
    "DraftFormatError",
    "DraftValidationError",
    "Segment",
    "Track",
    "TrackType",
]
