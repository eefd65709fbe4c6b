"""Applying an instruction's edits to a session's draft, as the agent's tools would.

Each edit is reported as a tool call (name, args, response) for the ADK event stream, plus a
sentence for the reply in English and in Chinese.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import attrs

from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._intent import Intent
from nemo_sync.emulator._local import BeatInfo, ClipInfo, plan_cuts
from nemo_sync.emulator._state import MediaRecord, SessionRecord


@attrs.frozen
class ToolCall:
    """One tool the agent "ran": shown as a functionCall and a functionResponse event."""

    name: str
    args: dict[str, Any]
    response: dict[str, Any]


@attrs.define
class EditResult:
    """What a turn did.

    Attributes:
        draft: The new draft (a copy; the session's is untouched until committed).
        calls: The tools run, in order.
        notes: One sentence per edit or problem, as ``(english, chinese)``.
        edited: Whether the draft changed.
        undone: Whether the change is an undo (the draft is the last one in the history).
    """

    draft: dict[str, Any]
    calls: list[ToolCall] = attrs.Factory(list)
    notes: list[tuple[str, str]] = attrs.Factory(list)
    edited: bool = False
    undone: bool = False

    def did(self, call: ToolCall, en: str, zh: str) -> None:
        self.calls.append(call)
        self.notes.append((en, zh))
        self.edited = True

    def problem(self, en: str, zh: str) -> None:
        self.notes.append((en, zh))


def _seconds(ms: int | float) -> str:
    value = ms / 1000
    return f"{value:g}s"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def pick_audio(session: SessionRecord, text: str) -> MediaRecord | None:
    """The audio file an instruction means: one it names, else the latest uploaded."""
    audio = [m for m in session.media.values() if m.kind == "audio"]
    lowered = text.lower()
    for media in reversed(audio):
        stem = d.label(media.name).lower()
        if stem and stem in lowered:
            return media
    return audio[-1] if audio else None


def visual_media(session: SessionRecord, draft: dict[str, Any]) -> list[MediaRecord]:
    """The clips to cut: those on the video track (in order), else every uploaded clip/image."""
    on_track: list[MediaRecord] = []
    seen: set[str] = set()
    for track in d.tracks_of(draft, d.VIDEO):
        for seg in d.segments(track):
            media = session.media.get(str(seg.get("mid")))
            if media is not None and media.id not in seen:
                seen.add(media.id)
                on_track.append(media)
    if on_track:
        return on_track
    return [m for m in session.media.values() if m.kind in ("video", "image")]


def _clip_length(media: MediaRecord) -> int:
    return media.duration_ms if media.duration_ms is not None else d.IMAGE_SECONDS_MS


def _ensure_video(session: SessionRecord, result: EditResult) -> None:
    """Lay the uploaded clips end to end when the timeline has no video yet."""
    draft = result.draft
    track = d.first_track(draft, d.VIDEO)
    if track is not None and d.segments(track):
        return
    clips = [m for m in session.media.values() if m.kind in ("video", "image")]
    if not clips:
        return
    track = d.ensure_track(draft, d.VIDEO, "Video", session.new_id)
    start = 0
    for media in clips:
        length = _clip_length(media)
        d.segments(track).append(
            {
                "id": session.new_id("seg"),
                "mid": media.id,
                "n": d.label(media.name),
                "st": start,
                "d": length,
                "in": 0,
            }
        )
        start += length
    d.recompute_duration(draft)
    result.did(
        ToolCall("add_clips", {"media_ids": [m.id for m in clips]}, {"status": "ok"}),
        f"I put your {_count(len(clips), 'clip')} on the timeline ({_seconds(start)}).",
        f"已把 {len(clips)} 个素材放到时间线上(共 {_seconds(start)})。",
    )


def _bgm_segment(
    session: SessionRecord, draft: dict[str, Any], music: MediaRecord, length: int, start: int
) -> None:
    track = d.ensure_track(draft, d.AUDIO, "BGM", session.new_id)
    old = d.segments(track)
    volume = old[0].get("v", 1.0) if old else 1.0
    track["sg"] = [
        {
            "id": session.new_id("seg"),
            "mid": music.id,
            "n": d.label(music.name),
            "st": 0,
            "d": length,
            "in": start,
            "v": volume,
        }
    ]


def _add_music(session: SessionRecord, text: str, result: EditResult) -> None:
    music = pick_audio(session, text)
    if music is None:
        result.problem(
            "Upload an audio file first (mp3, wav, m4a or aac), then ask me to add it.",
            "请先上传一个音频文件(mp3、wav、m4a 或 aac),再让我添加背景音乐。",
        )
        return
    draft = result.draft
    music_ms = music.duration_ms or 0
    video_ms = int(draft.get("d") or 0)
    length = min(music_ms, video_ms) if video_ms else music_ms
    _bgm_segment(session, draft, music, length, 0)
    d.recompute_duration(draft)
    result.did(
        ToolCall("add_bgm", {"media_id": music.id}, {"status": "ok", "duration_ms": length}),
        f"Added “{d.label(music.name)}” as background music ({_seconds(length)}).",
        f"已添加背景音乐“{d.label(music.name)}”({_seconds(length)})。",
    )


def _beat_sync(
    session: SessionRecord,
    text: str,
    result: EditResult,
    beats: BeatInfo | None,
    mode: str | None = None,
) -> None:
    music = pick_audio(session, text)
    clips = visual_media(session, result.draft)
    if music is None or not clips:
        missing = "an audio file" if music is None else "a video or image"
        missing_zh = "音频文件" if music is None else "视频或图片"
        result.problem(
            f"To sync to the beat I need {missing}: upload one and ask again.",
            f"卡点需要{missing_zh}:请先上传,再告诉我一次。",
        )
        return
    assert beats is not None, "the chat turn analyses the music before applying edits"
    draft = result.draft
    plan = plan_cuts(
        [ClipInfo(m.id, d.label(m.name), m.kind, _clip_length(m)) for m in clips],
        beats,
        music.duration_ms or 0,
        mode,
    )
    track = d.ensure_track(draft, d.VIDEO, "Video", session.new_id)
    names = {m.id: d.label(m.name) for m in clips}
    track["sg"] = [
        {"n": names.get(str(seg.get("mid")), ""), **seg, "id": session.new_id("seg")}
        for seg in plan.segments
    ]
    length = max((d.end_ms(s) for s in track["sg"]), default=0)
    _bgm_segment(session, draft, music, length, plan.music_in_ms)
    meta = d.metadata(draft)
    meta["beats"] = list(plan.beats_ms)
    meta["downbeats"] = list(plan.downbeats_ms)
    meta["drops"] = list(plan.drops_ms)
    meta["bpm"] = round(beats.bpm, 2)
    d.recompute_duration(draft)
    how = "" if beats.analyzed else " (no audio analysis here, so I used a steady 120 BPM grid)"
    how_zh = "" if beats.analyzed else "(此环境无法分析音频,按 120 BPM 的固定节拍处理)"
    tempo = f"{beats.bpm:.0f} BPM"
    low, high = beats.bpm_range or (beats.bpm, beats.bpm)
    if high - low > 0.03 * beats.bpm:  # a moving tempo is reported as the range played
        tempo = f"{low:.0f}-{high:.0f} BPM"
    where, where_zh = _CUT_WHERE[plan.mode]
    if mode == "drop" and plan.mode != "drop":
        where = "on every bar (I found no drop in this music)"
        where_zh = "每小节(这段音乐里没有找到高潮)"
    drops = len(plan.drops_ms)
    if drops and plan.mode != "drop":
        where += f", and exactly on the {_count(drops, 'drop')}"
        where_zh += f",并在 {drops} 个高潮处切换"
    result.did(
        ToolCall(
            "beat_sync",
            {"music_media_id": music.id, "clip_media_ids": [m.id for m in clips]},
            {
                "status": "ok",
                "cuts": len(track["sg"]),
                "bpm": meta["bpm"],
                "analysis": "audio" if beats.analyzed else "grid",
                "mode": plan.mode,
                "drops": drops,
            },
        ),
        f"Cut your clips on the beat of “{d.label(music.name)}”: {len(track['sg'])} cuts at "
        f"{tempo} over {_seconds(length)}, {where}{how}.",
        f"已按“{d.label(music.name)}”的节拍卡点:{len(track['sg'])} 个镜头,"
        f"{tempo},共 {_seconds(length)},{where_zh}{how_zh}。",
    )


_CUT_WHERE = {
    "strong": ("on the strong beats", "在强拍上切换"),
    "beat": ("on every beat", "每一拍切换"),
    "bar": ("on every bar", "每小节切换"),
    "drop": ("only on the drops", "只在高潮处切换"),
}


def _trim(session: SessionRecord, limit: int, result: EditResult) -> None:
    draft = result.draft
    length = int(draft.get("d") or 0)
    if length == 0:
        result.problem(
            "There is nothing on the timeline to trim yet: upload a video first.",
            "时间线上还没有内容可剪:请先上传视频。",
        )
        return
    if limit >= length:
        result.problem(
            f"The video is already {_seconds(length)}, not longer than {_seconds(limit)}.",
            f"视频只有 {_seconds(length)},不超过 {_seconds(limit)}。",
        )
        return
    d.trim_to(draft, limit)
    meta = d.metadata(draft)
    if isinstance(meta.get("drops"), list):
        meta["drops"] = [t for t in meta["drops"] if isinstance(t, (int, float)) and t < limit]
    result.did(
        ToolCall("trim", {"end_ms": limit}, {"status": "ok", "duration_ms": draft["d"]}),
        f"Trimmed the video to {_seconds(limit)}.",
        f"已把视频剪到 {_seconds(limit)}。",
    )


def _volume(target: str, level: float, result: EditResult) -> None:
    track_type = d.AUDIO if target == "music" else d.VIDEO
    segs = [s for t in d.tracks_of(result.draft, track_type) for s in d.segments(t)]
    if not segs:
        what = ("There is no background music yet: add some first.", "还没有背景音乐,请先添加。")
        if target == "video":
            what = ("There is no video on the timeline yet.", "时间线上还没有视频。")
        result.problem(*what)
        return
    for seg in segs:
        seg["v"] = level
    label_en = "background music" if target == "music" else "video's own sound"
    label_zh = "背景音乐" if target == "music" else "视频原声"
    result.did(
        ToolCall("set_volume", {"target": target, "volume": level}, {"status": "ok"}),
        f"Set the {label_en} volume to {level * 100:.0f}%.",
        f"已把{label_zh}音量调到 {level * 100:.0f}%。",
    )


def _title(session: SessionRecord, text: str | None, length: int, result: EditResult) -> None:
    if not text:
        result.problem(
            'What should the title say? Put it in quotes, like: add the title "Urban Dreams".',
            "标题写什么?请用引号括起来,例如:加标题“城市之梦”。",
        )
        return
    draft = result.draft
    total = int(draft.get("d") or 0)
    shown = min(length, total) if total else length
    track = d.ensure_track(draft, d.TEXT, "Title", session.new_id)
    track["sg"] = [{"id": session.new_id("seg"), "n": text, "x": text, "st": 0, "d": shown}]
    d.recompute_duration(draft)
    result.did(
        ToolCall("add_title", {"text": text, "duration_ms": shown}, {"status": "ok"}),
        f"Added the title “{text}” for the first {_seconds(shown)}.",
        f"已添加标题“{text}”,显示前 {_seconds(shown)}。",
    )


def _aspect(aspect: str, result: EditResult) -> None:
    d.set_aspect(result.draft, aspect)
    result.did(
        ToolCall("set_aspect_ratio", {"aspect": aspect}, {"status": "ok"}),
        f"Switched the canvas to {aspect}.",
        f"已把画面比例改为 {aspect}。",
    )


HISTORY_DEPTH = 20
"""How many edit turns ``undo`` can go back: the drafts are kept in the session's record."""


def _undo(session: SessionRecord, result: EditResult) -> None:
    if not session.history:
        result.problem(
            "There is no edit to undo yet: the timeline is as it started.",
            "还没有可以撤销的编辑:时间线还是最初的样子。",
        )
        return
    result.draft = copy.deepcopy(session.history[-1])
    result.undone = True
    result.did(
        ToolCall("undo", {}, {"status": "ok", "duration_ms": int(result.draft.get("d") or 0)}),
        "Undid the last edit: the timeline is back to how it was before it.",
        "已撤销上一步编辑,时间线恢复到了之前的样子。",
    )


def commit(session: SessionRecord, result: EditResult) -> None:
    """Make ``result``'s draft the session's and keep the history ``undo`` walks back."""
    if not result.edited:
        return
    if result.undone:
        session.history.pop()
    else:
        session.history.append(session.draft)
        del session.history[:-HISTORY_DEPTH]
    session.draft = result.draft
    session.version += 1


def needs_beats(intent: Intent, session: SessionRecord, text: str) -> MediaRecord | None:
    """The music to analyse before :func:`apply_edits` (``None`` when no sync is asked for)."""
    return pick_audio(session, text) if intent.sync else None


def apply_edits(
    session: SessionRecord, intent: Intent, text: str, beats: BeatInfo | None = None
) -> EditResult:
    """Apply the edits an instruction asks for, in a fixed order, to a copy of the draft.

    Args:
        session: The session (its media and current draft).
        intent: What :func:`nemo_sync.emulator._intent.parse` found.
        text: The instruction (to find a named music file).
        beats: The music's beats, when ``intent.sync`` (see :func:`needs_beats`).
    """
    result = EditResult(draft=copy.deepcopy(session.draft))
    if intent.undo:
        _undo(session, result)
        return result
    if intent.edits and not intent.sync:
        # The first edit puts the uploaded clips on the timeline; beat sync cuts them itself.
        _ensure_video(session, result)
    if intent.sync:
        _beat_sync(session, text, result, beats, intent.cut_mode)
    elif intent.music:
        _add_music(session, text, result)
    if intent.trim_ms is not None:
        _trim(session, intent.trim_ms, result)
    if intent.volume is not None:
        _volume(*intent.volume, result)
    if intent.title is not None:
        _title(session, *intent.title, result)
    if intent.aspect is not None:
        _aspect(intent.aspect, result)
    _clamp_to_video(result.draft)
    return result


def _clamp_to_video(draft: dict[str, Any]) -> None:
    """Music and titles end with the video, as the service's timeline does."""
    if d.first_track(draft, d.VIDEO) is None:
        return
    length = d.recompute_duration(draft)
    if length > 0:
        d.trim_to(draft, length)


def describe(notes: Sequence[tuple[str, str]], chinese: bool) -> str:
    """The notes as one reply."""
    return ("" if chinese else " ").join(zh if chinese else en for en, zh in notes)
