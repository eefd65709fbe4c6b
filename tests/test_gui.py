"""GUI phrases from the backend become actions an API client can take."""

from __future__ import annotations

import pytest

from nemo_sync._gui import SuggestedKind, suggested_actions


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Done! Click the Export button to download your video.", [SuggestedKind.EXPORT]),
        ("完成了，点击导出即可下载。", [SuggestedKind.EXPORT]),
        ("Open the timeline panel to review the cuts.", [SuggestedKind.STATE]),
        ("打开时间线面板查看", [SuggestedKind.STATE]),
        (
            "Drag the clip to the start, then preview in timeline.",
            [SuggestedKind.CHAT_EDIT, SuggestedKind.SUMMARY],
        ),
        ("拖拽片段到开头", [SuggestedKind.CHAT_EDIT]),
        ("Click Apply to keep the new volume.", [SuggestedKind.CHAT_EDIT]),
        ("I synced the music to your cuts.", []),
        ("The exported file will be 1080p.", []),
    ],
)
def test_phrases(text: str, kinds: list[SuggestedKind]) -> None:
    assert [a.kind for a in suggested_actions(text)] == kinds
