"""The timeline as an inline SVG picture (Jupyter shows it via ``Draft._repr_html_``).

The draft comes from a server, so the picture is bounded whatever it holds: at most
``MAX_ROWS`` tracks, ``MAX_BLOCKS`` segment blocks, ``MAX_BEATS`` beat marks and a dozen axis
ticks, labels cut to ``MAX_LABEL`` characters, and only characters XML allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from nemo_sync.draft._parts import Segment, TrackType
from nemo_sync.draft._summary import finite, percent, track_label

if TYPE_CHECKING:
    from nemo_sync.draft._draft import Draft

WIDTH = 800
LABEL_W = 70
ROW_H = 34
TOP = 26
LANE = WIDTH - LABEL_W - 10
_COLORS = {TrackType.VIDEO: "#4f7cff", TrackType.AUDIO: "#20b486", TrackType.TEXT: "#f0a830"}
_CHAR_W = 6.2  # average width of an 11 px sans-serif character

MAX_ROWS = 20  # tracks drawn; one more row counts the rest
MAX_BLOCKS = 2000  # segment blocks in the whole picture (a lane is only 720 px wide)
MAX_BEATS = 1000  # beat marks drawn
MAX_LABEL = 80  # characters of a segment label kept (tooltip); the block shows what fits
MAX_TRACK_LABEL = 24
MAX_TITLE = 1000  # characters of the summary in the picture's <title>
_MAX_MS = 10**300  # times are clamped here so that they always convert to a float

# XML 1.0 allows tab, newline, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000 and up. DEL and
# the C1 controls are allowed but are terminal controls, so they go too; so do lone surrogates
# (JSON can carry "\ud800"), which cannot even be encoded as UTF-8.
_NOT_SHOWN = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str, limit: int) -> str:
    """``text`` without the characters above, cut to ``limit`` characters with an ellipsis."""
    # Cut first so that a megabyte name costs no more than a short one.
    kept = _NOT_SHOWN.sub("", text[: 4 * limit])
    if len(kept) > limit or (len(text) > 4 * limit and kept):
        return kept[: limit - 1] + "…"
    return kept


def _tick_step(total_s: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200):
        if total_s / step <= 12:
            return step
    # Beyond four hours: 1, 2 or 5 times a power of ten, so never more than a dozen ticks
    # (a fixed 20-minute step drew 10**9 of them for a 10**15 ms draft).
    magnitude = 10.0 ** math.floor(math.log10(total_s / 12))
    for multiple in (1, 2, 5):
        if total_s / (multiple * magnitude) <= 12:
            return multiple * magnitude
    return 10 * magnitude


def _fit(text: str, width: float) -> str:
    room = int((width - 8) / _CHAR_W)
    if room <= 1:
        return ""
    return text if len(text) <= room else text[: room - 1] + "…"


def _blocks(segments: Sequence[Segment], budget: int, x: _Scale) -> list[Segment]:
    """The segments to draw: all of them within ``budget``, else one per slice of the lane.

    Each of ``budget`` equal slices keeps the segment starting in it that reaches furthest,
    so the row still covers what the segments cover, at the picture's resolution.
    """
    if len(segments) <= budget:
        return list(segments)
    kept: dict[int, Segment] = {}
    for segment in segments:
        slot = min(int((x(segment.start) - LABEL_W) / LANE * budget), budget - 1)
        best = kept.get(slot)
        if best is None or segment.end_ms > best.end_ms:
            kept[slot] = segment
    return [kept[slot] for slot in sorted(kept)]


class _Scale:
    """Milliseconds to x, with every time clamped to the drawn range."""

    def __init__(self, total_ms: int) -> None:
        self.total = min(max(total_ms, 1), _MAX_MS)
        self._total_f = float(self.total)

    def __call__(self, ms: float) -> float:
        return LABEL_W + LANE * (float(min(max(ms, 0), self.total)) / self._total_f)


def timeline_svg(draft: Draft) -> str:
    """An SVG (a string) with a row per track, labelled segment blocks, a time axis in
    seconds and the beat markers when the draft has them."""
    x = _Scale(draft.end_ms)
    tracks = draft.tracks[:MAX_ROWS]
    hidden = len(draft.tracks) - len(tracks)
    rows = max(len(tracks) + (1 if hidden else 0), 1)
    height = TOP + ROW_H * rows + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(_clean(draft.summary(), MAX_TITLE))}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    total_s = x.total / 1000
    step = _tick_step(total_s)
    axis_y = TOP + ROW_H * rows + 4
    for i in range(math.floor(total_s / step) + 1):
        at = x(i * step * 1000)
        parts.append(
            f'<line x1="{at:.1f}" y1="{TOP - 4}" x2="{at:.1f}" y2="{axis_y}" stroke="#e5e7eb"/>'
        )
        parts.append(
            f'<text x="{at:.1f}" y="{axis_y + 14}" text-anchor="middle" '
            f'fill="#6b7280">{step * i:g}s</text>'
        )
    budget = min(LANE, MAX_BLOCKS // max(len(tracks), 1))
    for row, track in enumerate(tracks):
        y = TOP + row * ROW_H
        color = _COLORS.get(track.track_type, "#9ca3af")  # type: ignore[arg-type]
        parts.append(
            f'<text x="6" y="{y + ROW_H / 2 + 4:.1f}" fill="#111827" '
            f'font-weight="bold">{escape(_clean(track_label(track), MAX_TRACK_LABEL))}</text>'
        )
        for segment in _blocks(track.segments, budget, x):
            left, right = x(segment.start), x(segment.end_ms)
            width = max(right - left, 1.0)
            label = _clean(segment.label, MAX_LABEL)
            volume = finite(segment.volume)
            if volume is not None:
                label += f" {percent(volume)}"
            parts.append(
                f'<rect x="{left:.1f}" y="{y + 4}" width="{width:.1f}" height="{ROW_H - 8}" '
                f'rx="3" fill="{color}" stroke="#ffffff" stroke-width="1">'
                f"<title>{escape(label)}</title></rect>"
            )
            shown = _fit(label, width)
            if shown:
                parts.append(
                    f'<text x="{left + 4:.1f}" y="{y + ROW_H / 2 + 4:.1f}" '
                    f'fill="#ffffff">{escape(shown)}</text>'
                )
    if hidden:
        y = TOP + len(tracks) * ROW_H
        parts.append(
            f'<text x="6" y="{y + ROW_H / 2 + 4:.1f}" fill="#6b7280">'
            f"… and {hidden} more tracks</text>"
        )
    beats = _beat_marks(draft.beats_ms, x)
    for mark in beats:
        parts.append(
            f'<line x1="{mark}" y1="{TOP - 6}" x2="{mark}" y2="{TOP - 1}" '
            'stroke="#ef4444" stroke-width="1.5"/>'
        )
    if beats:
        parts.append(f'<text x="6" y="{TOP - 4}" fill="#ef4444">beats</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _beat_marks(beats_ms: list[int], x: _Scale) -> list[str]:
    """The x of each beat inside the timeline, once per position, at most ``MAX_BEATS``.

    Positions are tenths of a pixel (at most 7,201 of them); when there are more than
    ``MAX_BEATS``, whole pixels (721), so marks still span the whole timeline.
    """
    marks = dict.fromkeys(f"{x(beat):.1f}" for beat in beats_ms if 0 <= beat <= x.total)
    if len(marks) > MAX_BEATS:
        marks = dict.fromkeys(f"{round(float(at)):.1f}" for at in marks)
    return list(marks)
