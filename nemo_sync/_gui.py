"""The backend talks as if there were a GUI; this turns its phrases into API actions.

"click the Export button" means: run export. "open the timeline panel" means: look at the
state. "drag the clip" means: say the edit in chat. "preview in timeline" means: show the
summary. English and Chinese.
"""

from __future__ import annotations

import enum
import re

import attrs


class SuggestedKind(enum.Enum):
    """What an API client should do instead of clicking."""

    EXPORT = "export"
    STATE = "status"
    CHAT_EDIT = "edit"
    SUMMARY = "summary"


@attrs.frozen
class SuggestedAction:
    """A GUI phrase from the agent, translated. ``phrase`` is the words that matched."""

    kind: SuggestedKind
    phrase: str


# Order matters: the export button is a click, but a specific one.
_RULES: list[tuple[SuggestedKind, re.Pattern[str]]] = [
    (
        SuggestedKind.EXPORT,
        re.compile(
            r"\b(?:click|press|tap|hit|use)\b[^.!?\n]{0,30}?\bexport\b(?:\s+button)?"
            r"|\bexport\s+button\b|点击?\s*[「“\"]?导出|导出按钮",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.SUMMARY,
        re.compile(
            r"\bpreview\b[^.!?\n]{0,20}?\b(?:in|on)\s+the\s+timeline\b|\bpreview\s+in\s+timeline\b"
            r"|在时间线(?:上|中)?预览",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.STATE,
        re.compile(
            r"\bopen\b[^.!?\n]{0,30}?\b(?:panel|tab|timeline|library|media)\b|打开", re.IGNORECASE
        ),
    ),
    (
        SuggestedKind.CHAT_EDIT,
        re.compile(
            r"\bdrag(?:ging)?\b|\bdrop\b[^.!?\n]{0,20}?\b(?:onto|into|on)\b|拖拽|拖动",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.CHAT_EDIT,
        re.compile(r"\b(?:click|press|tap)\b[^.!?\n]{0,40}|点击\S{0,10}", re.IGNORECASE),
    ),
]


def suggested_actions(text: str) -> list[SuggestedAction]:
    """The actions the text's GUI phrases stand for, in order, one per kind."""
    found: list[tuple[int, SuggestedAction]] = []
    kinds: set[SuggestedKind] = set()
    taken: list[tuple[int, int]] = []
    for kind, pattern in _RULES:
        for match in pattern.finditer(text):
            span = match.span()
            if any(s < span[1] and span[0] < e for s, e in taken) or kind in kinds:
                continue
            taken.append(span)
            kinds.add(kind)
            found.append((span[0], SuggestedAction(kind, match.group().strip())))
            break
    return [action for _, action in sorted(found, key=lambda pair: pair[0])]
