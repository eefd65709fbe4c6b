"""Route a chat front-end's input: run a direct action, or send it to the agent.

The contract's table: "export"/"导出"/"download"/"send me the video" -> export;
"credits"/"积分"/"balance"/"余额" -> credits; "status"/"状态"/"show tracks" -> state;
"upload"/"上传" or an attached file -> upload; anything else -> chat.

A keyword only routes away from chat when the input is a short command ("export",
"show me my credits", "导出视频"). A longer instruction that merely mentions a keyword
("make the end credits roll slower", "export-ready colors please, and add a title") is an
edit and goes to the agent, which is the safe side: chat can always answer.
"""

from __future__ import annotations

import enum
import re


class Action(enum.Enum):
    """Where a line of user input goes."""

    EXPORT = "export"
    CREDITS = "credits"
    STATE = "state"
    UPLOAD = "upload"
    CHAT = "chat"


_EN_WORDS = 6  # a command is short; longer text is an instruction for the agent
_ZH_CHARS = 10

_RULES: list[tuple[Action, re.Pattern[str]]] = [
    (Action.UPLOAD, re.compile(r"\bupload\b|上传", re.IGNORECASE)),
    (Action.CREDITS, re.compile(r"\bcredits?\b|\bbalance\b|积分|余额", re.IGNORECASE)),
    (
        Action.EXPORT,
        re.compile(
            r"\bexport\b|\bdownload\b|\bsend\s+(?:me\s+)?(?:the|my)\s+video\b|\brender\b|导出|下载",
            re.IGNORECASE,
        ),
    ),
    (
        Action.STATE,
        re.compile(
            r"^\s*status\b|\bshow\s+(?:me\s+)?(?:the\s+|my\s+)?(?:tracks|timeline|status)\b"
            r"|^\s*state\s*$|状态|时间线",
            re.IGNORECASE,
        ),
    ),
]
_CJK = re.compile(r"[\u3400-\u9fff]")
_EDIT_HINTS = re.compile(
    r"\b(?:and|then|add|make|change|set|sync|with|roll)\b|然后|并且|加", re.IGNORECASE
)


def _is_short(text: str) -> bool:
    if _CJK.search(text):
        return len(re.sub(r"\s", "", text)) <= _ZH_CHARS
    return len(text.split()) <= _EN_WORDS


def route(text: str, *, has_attachment: bool = False) -> Action:
    """Where ``text`` goes. ``has_attachment``: the user attached a file with it.

    Example:
        >>> route("export 1080p")
        <Action.EXPORT: 'export'>
        >>> route("余额")
        <Action.CREDITS: 'credits'>
        >>> route("sync background music to my video and match the cuts")
        <Action.CHAT: 'chat'>
    """
    if has_attachment:
        return Action.UPLOAD
    stripped = text.strip()
    if not stripped or not _is_short(stripped):
        return Action.CHAT
    for action, pattern in _RULES:
        if pattern.search(stripped):
            if action is not Action.UPLOAD and _EDIT_HINTS.search(stripped):
                return Action.CHAT
            return action
    return Action.CHAT
