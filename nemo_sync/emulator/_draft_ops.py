"""Plain-dict helpers over the draft wire format (docs/architecture.md has the key table).

The emulator works on the JSON the service would hold, not on the SDK's models: it must stay
a faithful stand-in for the service, independent of how the SDK reads drafts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from nemo_sync._contract import TRACK_AUDIO, TRACK_TEXT, TRACK_VIDEO

VIDEO, AUDIO, TEXT = TRACK_VIDEO, TRACK_AUDIO, TRACK_TEXT  # the API's track types

IMAGE_SECONDS_MS = 3000
CANVAS = {"9:16": (1080, 1920), "16:9": (1920, 1080), "1:1": (1080, 1080)}

NewId = Callable[[str], str]


def tracks(draft: dict[str, Any]) -> list[Any]:
    """The draft's track list (made when missing; items are whatever the JSON holds)."""
    value = draft.get("t")
    if not isinstance(value, list):
        value = draft["t"] = []
    return value


def tracks_of(draft: dict[str, Any], track_type: int) -> Iterator[dict[str, Any]]:
    """The tracks of one type, in order."""
    for track in tracks(draft):
        if isinstance(track, dict) and track.get("tt") == track_type:
            yield track


def segments(track: dict[str, Any]) -> list[dict[str, Any]]:
    """A track's segment list (made when missing)."""
    value = track.get("sg")
    if not isinstance(value, list):
        value = track["sg"] = []
    return value


def first_track(draft: dict[str, Any], track_type: int) -> dict[str, Any] | None:
    """The first track of a type, if any."""
    return next(tracks_of(draft, track_type), None)


def ensure_track(
    draft: dict[str, Any], track_type: int, name: str, new_id: NewId
) -> dict[str, Any]:
    """The first track of a type, added (with the key ``lk``, unknown to clients) if missing."""
    track = first_track(draft, track_type)
    if track is None:
        track = {"id": new_id("trk"), "tt": track_type, "n": name, "sg": [], "lk": False}
        # Video first, then audio, then text: the order the service lists them in.
        items = tracks(draft)
        at = next((i for i, t in enumerate(items) if _rank(t) > _rank(track)), len(items))
        items.insert(at, track)
    return track


def _rank(track: Any) -> int:
    order = {VIDEO: 0, AUDIO: 1, TEXT: 2}
    kind = track.get("tt") if isinstance(track, dict) else None
    return order.get(kind, 3) if isinstance(kind, int) else 3


def end_ms(segment: dict[str, Any]) -> int:
    """Where a segment ends on the timeline."""
    return int(segment.get("st", 0)) + int(segment.get("d", 0))


def recompute_duration(draft: dict[str, Any]) -> int:
    """Set ``d`` to the end of the video (or, with no video, of anything) and return it."""
    video_ends = [end_ms(s) for t in tracks_of(draft, VIDEO) for s in segments(t)]
    ends = video_ends or [
        end_ms(s) for t in tracks(draft) if isinstance(t, dict) for s in segments(t)
    ]
    draft["d"] = max(ends, default=0)
    return int(draft["d"])


def label(name: str) -> str:
    """A segment label from a file name: the stem."""
    return PurePosixPath(name).stem or name


def trim_to(draft: dict[str, Any], limit_ms: int) -> int:
    """Cut every track at ``limit_ms``; returns how many segments were removed."""
    removed = 0
    for track in tracks(draft):
        if not isinstance(track, dict):
            continue
        kept = []
        for seg in segments(track):
            start = int(seg.get("st", 0))
            if start >= limit_ms:
                removed += 1
                continue
            if end_ms(seg) > limit_ms:
                seg["d"] = limit_ms - start
            kept.append(seg)
        track["sg"] = kept
    meta = metadata(draft)
    for key in ("beats", "downbeats"):
        if isinstance(meta.get(key), list):
            meta[key] = [b for b in meta[key] if isinstance(b, (int, float)) and b < limit_ms]
    recompute_duration(draft)
    return removed


def metadata(draft: dict[str, Any]) -> dict[str, Any]:
    """The draft's ``m`` object (made when missing)."""
    value = draft.get("m")
    if not isinstance(value, dict):
        value = draft["m"] = {}
    return value


def set_aspect(draft: dict[str, Any], aspect: str) -> None:
    """Set the aspect ratio (and the canvas, which only the service reads)."""
    metadata(draft)["aspect"] = aspect
    width, height = CANVAS[aspect]
    canvas = draft.get("cv")
    draft["cv"] = {**(canvas if isinstance(canvas, dict) else {}), "w": width, "h": height}


def canvas(draft: dict[str, Any]) -> tuple[int, int]:
    """The output size: the draft's canvas ``cv``, else its aspect, else 9:16.

    The canvas belongs to the draft [V]: the export body has no resolution or aspect.
    """
    cv = draft.get("cv")
    if isinstance(cv, dict):
        width, height = cv.get("w"), cv.get("h")
        if isinstance(width, int) and isinstance(height, int) and _dimension(width, height):
            return width, height
    aspect = draft.get("m", {}).get("aspect") if isinstance(draft.get("m"), dict) else None
    return CANVAS.get(aspect, CANVAS["9:16"]) if isinstance(aspect, str) else CANVAS["9:16"]


def _dimension(*values: int) -> bool:
    # A render bigger than 8K is a broken draft, not a request to honour.
    return all(not isinstance(v, bool) and 16 <= v <= 8192 for v in values)


def media_ids(draft: dict[str, Any]) -> set[str]:
    """Every media id the draft refers to."""
    return {
        str(seg["mid"])
        for track in tracks(draft)
        if isinstance(track, dict)
        for seg in segments(track)
        if isinstance(seg, dict) and seg.get("mid")
    }
