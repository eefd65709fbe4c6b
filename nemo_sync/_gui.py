"""The backend talks as if there were a GUI; this turns its phrases into API actions.

The contract's table, English and Chinese, as :class:`SuggestedKind`:

- ``EXPORT``: "click the Export button", "hit export", "点击导出", "导出按钮" (run the export);
- ``SUMMARY``: "preview in timeline", "在时间线上预览" (show the track summary);
- ``STATE``: "open the timeline panel", "打开" (look at the state);
- ``CHAT_EDIT``: "drag the clip", "drag and drop", "拖拽", and any other click ("click
  Apply", "点击应用"): there is no button to press, so say the edit in chat.

Matching is careful about words: "exported", "clicks", "opening" and "beat drops" are not
GUI phrases, and "export" alone is a word, not a button ("the exported file is 1080p"
suggests nothing). Chinese has no word boundaries, so its phrases are specific instead
("导出" counts unless it says it already happened: "已导出", "导出了").
"""

from __future__ import annotations

import enum
import re

import attrs


class SuggestedKind(enum.Enum):
    """What an API client should do instead of clicking. Values name the CLI command."""

    EXPORT = "export"
    STATE = "status"
    CHAT_EDIT = "edit"
    SUMMARY = "summary"


@attrs.frozen
class SuggestedAction:
    """A GUI phrase from the agent, translated.

    Attributes:
        kind: What to do.
        phrase: The words that matched, as the agent wrote them.
    """

    kind: SuggestedKind
    phrase: str


_CLAUSE = r"[^.!?;\n。！？；]"  # stay inside one clause: "click X. Export ..." is two things

# Highest priority first: where two phrases overlap, the earlier rule wins (the Export
# button is a click, but a specific one; "点击打开" is an open).
_RULES: tuple[tuple[SuggestedKind, re.Pattern[str]], ...] = (
    (
        SuggestedKind.EXPORT,
        re.compile(
            rf"\b(?:click|press|tap|hit)\b{_CLAUSE}{{0,30}}?\bexport\b(?:\s+button\b)?"
            r"|\bexport\s+button\b"
            r"|(?:点击|单击|点|按)\s*[「『“\"'\[【(（]?\s*导出(?:按钮)?"
            r"|(?<!已)(?<!已经)导出(?!了)(?:按钮)?",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.SUMMARY,
        re.compile(
            r"\bpreview\b(?:\s+[\w'-]+){0,3}?\s+(?:in|on)\s+(?:the\s+)?timeline\b"
            r"|在时间线(?:上|中|里)?预览|预览时间线|时间线预览",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.STATE,
        re.compile(
            rf"\bopen\b{_CLAUSE}{{0,30}}?"
            r"\b(?:panel|tab|timeline|library|sidebar|inspector|editor|settings|menu|window)s?\b"
            r"|打开",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.CHAT_EDIT,
        re.compile(
            r"\bdrag(?:s|ged|ging)?\b(?:(?:[\s-]+(?:and|&|n)[\s-]+|\s*/\s*)drop(?:s|ped|ping)?\b)?"
            r"|\bdrop\s+(?:it|them|(?:the|your|this|that)\s+[\w-]+)\s+(?:onto|into)\b"
            r"|拖拽|拖动|拖放|拖到|拖入",
            re.IGNORECASE,
        ),
    ),
    (
        SuggestedKind.CHAT_EDIT,
        re.compile(
            # Any other click names a button; "a click track" and "tap tempo" are music.
            r"\b(?:click|press|tap)(?:\s+on)?\s+(?!(?:tracks?|tempo)\b)(?:the\s+)?"
            r"[「“\"'\[]?\w[\w-]*(?:[」”\"'\]]|\s+button\b)?"
            r"|(?:点击|单击)[^\s,.!?;，。！？；、]{1,8}",
            re.IGNORECASE,
        ),
    ),
)


def suggested_actions(text: str) -> list[SuggestedAction]:
    """The actions that the GUI phrases in ``text`` stand for.

    Args:
        text: The agent's reply.

    Returns:
        One action per kind, in the order the phrases appear in the text (the first phrase of
        each kind is kept).

    Example:
        >>> [a.kind.value for a in suggested_actions("Preview in timeline, then click Export.")]
        ['summary', 'export']
    """
    taken: list[tuple[int, int, SuggestedAction]] = []
    for kind, pattern in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s < end and start < e for s, e, _ in taken):
                continue  # a higher-priority phrase already covers these words
            taken.append((start, end, SuggestedAction(kind, match.group().strip())))
    seen: set[SuggestedKind] = set()
    actions = []
    for _, _, action in sorted(taken, key=lambda t: t[0]):
        if action.kind not in seen:
            seen.add(action.kind)
            actions.append(action)
    return actions
