"""Canned wording of the agent: GUI hints (the backend assumes a GUI) and the help text."""

from __future__ import annotations

import random

# The real backend talks as if the user had its web editor open; clients translate these.
_GUI_HINTS_EN = (
    " Preview in timeline, then click the Export button when you're happy.",
    " Open the timeline panel to check it, then click [Export] to render.",
    " You can drag and drop the clips in the timeline to reorder them.",
)
_GUI_HINTS_ZH = (
    "可以在时间线中预览,满意后点击导出按钮。",
    "打开时间线面板查看效果,然后点击「导出」。",
    "可以在时间线里拖拽片段调整顺序。",
)

_HELP_EN = (
    "I can edit this session's timeline. Upload your music and clips, then try: "
    "“sync the background music to my video and adjust the beat drops to match the cuts”, "
    '“set the music volume to 35%”, “add the title "Urban Dreams" for 3 seconds”, '
    "“trim to 15 seconds” or “make it 9:16”."
)
_HELP_ZH = (
    "我可以编辑这个会话的时间线。先上传音乐和视频,然后试试:"
    "“把背景音乐卡点到视频”、“音量调到35%”、“加标题“城市之梦”3秒”、“剪到15秒”或“改成竖屏”。"
)


def gui_hint(rng: random.Random, chinese: bool) -> str:
    """One GUI-flavoured closing sentence, chosen by the session's seeded generator."""
    return rng.choice(_GUI_HINTS_ZH if chinese else _GUI_HINTS_EN)


def help_text(chinese: bool) -> str:
    """The reply to an instruction the agent has no tool for."""
    return _HELP_ZH if chinese else _HELP_EN
