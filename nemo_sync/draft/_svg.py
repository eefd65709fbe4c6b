"""The timeline as an inline SVG picture (Jupyter shows it via ``Draft._repr_html_``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from nemo_sync.draft._models import TrackType
from nemo_sync.draft._summary import track_label

if TYPE_CHECKING:
    from nemo_sync.draft._draft import Draft

WIDTH = 800
LABEL_W = 70
ROW_H = 34
TOP = 26
_COLORS = {TrackType.VIDEO: "#4f7cff", TrackType.AUDIO: "#20b486", TrackType.TEXT: "#f0a830"}
_CHAR_W = 6.2  # average width of an 11 px sans-serif character


def _tick_step(total_s: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if total_s / step <= 12:
            return step
    return 1200


def _fit(text: str, width: float) -> str:
    room = int((width - 8) / _CHAR_W)
    if room <= 1:
        return ""
    return text if len(text) <= room else text[: room - 1] + "…"


def timeline_svg(draft: Draft) -> str:
    """An SVG (a string) with a row per track, labelled segment blocks, a time axis in
    seconds and the beat markers when the draft has them."""
    total_ms = max(draft.end_ms, 1)
    lane = WIDTH - LABEL_W - 10
    height = TOP + ROW_H * max(len(draft.tracks), 1) + 24

    def x(ms: float) -> float:
        return LABEL_W + lane * ms / total_ms

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(draft.summary())}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    step = _tick_step(total_ms / 1000)
    axis_y = TOP + ROW_H * max(len(draft.tracks), 1) + 4
    for i in range(math.floor(total_ms / 1000 / step) + 1):
        ms = i * step * 1000
        parts.append(
            f'<line x1="{x(ms):.1f}" y1="{TOP - 4}" x2="{x(ms):.1f}" y2="{axis_y}" '
            'stroke="#e5e7eb"/>'
        )
        parts.append(
            f'<text x="{x(ms):.1f}" y="{axis_y + 14}" text-anchor="middle" '
            f'fill="#6b7280">{step * i:g}s</text>'
        )
    for row, track in enumerate(draft.tracks):
        y = TOP + row * ROW_H
        color = _COLORS.get(track.track_type, "#9ca3af")  # type: ignore[arg-type]
        parts.append(
            f'<text x="6" y="{y + ROW_H / 2 + 4:.1f}" fill="#111827" '
            f'font-weight="bold">{escape(track_label(track))}</text>'
        )
        for segment in track.segments:
            left, right = x(segment.start), x(segment.end_ms)
            width = max(right - left, 1.0)
            label = segment.label
            if segment.volume is not None:
                label += f" {round(segment.volume * 100)}%"
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
    for beat in draft.beats_ms:
        parts.append(
            f'<line x1="{x(beat):.1f}" y1="{TOP - 6}" x2="{x(beat):.1f}" '
            f'y2="{TOP - 1}" stroke="#ef4444" stroke-width="1.5"/>'
        )
    if draft.beats_ms:
        parts.append(f'<text x="6" y="{TOP - 4}" fill="#ef4444">beats</text>')
    parts.append("</svg>")
    return "\n".join(parts)
