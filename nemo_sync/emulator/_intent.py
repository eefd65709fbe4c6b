"""Reading an instruction: which documented edits it asks for (English and Chinese keywords)."""

from __future__ import annotations

import re

import attrs

_CJK = re.compile(r"[\u4e00-\u9fff]")
_NUM = r"(\d+(?:\.\d+)?)"
_SECONDS = r"\s*(?:s|sec|secs|second|seconds)\b"

_MUSIC = re.compile(r"\b(?:music|bgm|song|soundtrack)\b|背景音乐|音乐|配乐|歌曲", re.I)
_MUSIC_ADD = re.compile(r"\b(?:add|use|put|replace|swap)\b|添加|加上|加入|换成|替换|配上", re.I)
_SYNC = re.compile(
    r"\b(?:sync|synch|synced|synchroni[sz]e|beats?|rhythm|on the beat)\b|卡点|节拍|踩点|同步|节奏",
    re.I,
)
# Where the cuts go ("cut on every beat", "every bar", "only on the drops"); none: strong beats.
_CUT_MODES = (
    (
        "drop",
        re.compile(
            r"\b(?:only|just)\s+(?:(?:on|at)\s+)?the\s+(?:beat\s+)?drops?\b|\bdrops?\s+only\b"
            r"|只在(?:节奏)?(?:高潮|爆发|drop)",
            re.I,
        ),
    ),
    ("bar", re.compile(r"\b(?:every|each)\s+(?:bar|measure)\b|每(?:一)?(?:个)?小节", re.I)),
    ("beat", re.compile(r"\b(?:every|each)\s+(?:single\s+)?beat\b|每(?:一)?(?:个)?拍", re.I)),
)
# "undo", "revert the last change", "撤销", "撤回上一步": the whole previous edit turn.
_UNDO = re.compile(r"\b(?:undo|revert)\b|撤销|撤回|恢复上一步", re.I)
_VOLUME = re.compile(r"\b(?:volume|loudness|level)\b|音量", re.I)
_PERCENT = re.compile(_NUM + r"\s*%|百分之\s*(\d+)")
_MUTE = re.compile(r"\bmute\b|静音", re.I)
_VIDEO_SOUND = re.compile(r"\b(?:video|original|clip|clips)\b|原声|视频声音|视频的声音", re.I)
_TITLE = re.compile(r"\b(?:title|caption|headline)\b|标题|字幕", re.I)
_QUOTED = re.compile(
    r"[\"“「『]([^\"“”「」『』]+)[\"”」』]"
    # Single quotes too, but only as a pair around words: "don't" is not a quote.
    r"|(?<![A-Za-z0-9])['‘]([^'‘’\n]+?)['’](?![A-Za-z0-9])"
)
_TITLE_UNQUOTED = re.compile(
    r"(?:title|caption|headline|标题|字幕)\s*[:：]\s*(.+?)\s*(?:\bfor\b|[,，.。;；]|$)", re.I
)
_TITLE_FOR = re.compile(r"\bfor\s+" + _NUM + _SECONDS, re.I)
_TITLE_FOR_ZH = re.compile(r"(?:持续|显示|停留|[\"”」』])\s*" + _NUM + r"\s*秒")
_TRIM = (
    re.compile(
        r"\b(?:trim|cut|shorten|clip)\b[^.;,!?]*?\b(?:to|down to)\s+" + _NUM + _SECONDS, re.I
    ),
    re.compile(r"\bfirst\s+" + _NUM + _SECONDS, re.I),
    re.compile(r"(?:剪|裁|截|缩短)(?:到|成|为|至|短到|取)?\s*(?:前)?\s*" + _NUM + r"\s*秒"),
    re.compile(r"前\s*" + _NUM + r"\s*秒"),
)
_ASPECT = re.compile(r"(?<![\d.])(9|16|1)\s*[:：]\s*(16|9|1)(?![\d.])")
_ASPECT_WORDS = (
    (re.compile(r"\b(?:vertical|portrait|tiktok|reels|shorts)\b|竖屏|竖版", re.I), "9:16"),
    (re.compile(r"\b(?:landscape|horizontal|widescreen|youtube)\b|横屏|横版", re.I), "16:9"),
    (re.compile(r"\bsquare\b|正方形|方形", re.I), "1:1"),
)
ASPECTS = ("9:16", "16:9", "1:1")
DEFAULT_TITLE_MS = 3000


@attrs.frozen
class Intent:
    """The edits an instruction asks for.

    Attributes:
        music: Add or replace the background music.
        sync: Cut the video on the beats of the music.
        cut_mode: Where the cuts go, when the instruction says: ``"beat"``, ``"bar"`` or
            ``"drop"`` (see :data:`nemo_sync.local.CUT_MODES`); ``None``: strong beats.
        volume: ``(target, level)``: target ``"music"`` or ``"video"``, level 0.0-1.0.
        title: ``(text or None, duration_ms)``: ``None`` when the text was not given.
        trim_ms: Cut the timeline to this length.
        aspect: ``"9:16"``, ``"16:9"`` or ``"1:1"``.
        chinese: Whether to answer in Chinese.
        undo: Revert the last edit turn (the draft before it comes back).
    """

    music: bool = False
    sync: bool = False
    volume: tuple[str, float] | None = None
    title: tuple[str | None, int] | None = None
    trim_ms: int | None = None
    aspect: str | None = None
    chinese: bool = False
    cut_mode: str | None = None
    undo: bool = False

    @property
    def edits(self) -> bool:
        """Whether anything is asked for."""
        return bool(
            self.undo
            or self.music
            or self.sync
            or self.volume is not None
            or self.title is not None
            or self.trim_ms is not None
            or self.aspect is not None
        )


def _volume(text: str) -> tuple[str, float] | None:
    percent = _PERCENT.search(text)
    mute = _MUTE.search(text)
    if not (mute or (percent and (_VOLUME.search(text) or _MUSIC.search(text)))):
        return None
    if mute and not percent:
        level = 0.0
    else:
        assert percent is not None
        level = min(float(percent.group(1) or percent.group(2)) / 100.0, 2.0)
    target = "video" if _VIDEO_SOUND.search(text) and not _MUSIC.search(text) else "music"
    return target, round(level, 4)


def _title(text: str) -> tuple[str | None, int] | None:
    if not _TITLE.search(text):
        return None
    quoted = _QUOTED.search(text)
    words = (quoted.group(1) or quoted.group(2)).strip() if quoted else None
    if words is None:
        unquoted = _TITLE_UNQUOTED.search(text)
        words = unquoted.group(1).strip() if unquoted else None
    seconds = _TITLE_FOR.search(text) or _TITLE_FOR_ZH.search(text)
    duration = round(float(seconds.group(1)) * 1000) if seconds else DEFAULT_TITLE_MS
    return words or None, max(duration, 100)


def _trim(text: str) -> int | None:
    for pattern in _TRIM:
        found = pattern.search(text)
        if found:
            return max(round(float(found.group(1)) * 1000), 100)
    return None


def _aspect(text: str) -> str | None:
    for found in _ASPECT.finditer(text):
        value = f"{found.group(1)}:{found.group(2)}"
        if value in ASPECTS:
            return value
    for pattern, value in _ASPECT_WORDS:
        if pattern.search(text):
            return value
    return None


def parse(text: str) -> Intent:
    """The edits ``text`` asks for; an instruction with none is answered with help text.

    An undo is an undo only: the rest of its words name what to undo ("undo the title"), and
    reading them as edits would add a title instead.
    """
    if _UNDO.search(text):
        return Intent(undo=True, chinese=bool(_CJK.search(text)))
    volume = _volume(text)
    cut_mode = next((mode for mode, pattern in _CUT_MODES if pattern.search(text)), None)
    sync = bool(_SYNC.search(text)) or cut_mode is not None
    music_mentioned = bool(_MUSIC.search(text))
    # "Set the music volume to 35%" mentions music but asks for no new music.
    music = music_mentioned and not sync and (volume is None or bool(_MUSIC_ADD.search(text)))
    return Intent(
        music=music,
        sync=sync,
        volume=volume,
        title=_title(text),
        trim_ms=_trim(text),
        aspect=_aspect(text),
        chinese=bool(_CJK.search(text)),
        cut_mode=cut_mode,
    )
