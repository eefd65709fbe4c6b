"""GUI phrases from the backend become actions an API client can take."""

from __future__ import annotations

import pytest

from nemo_sync._gui import SuggestedAction, SuggestedKind, suggested_actions

EXPORT, STATE, EDIT, SUMMARY = (
    SuggestedKind.EXPORT,
    SuggestedKind.STATE,
    SuggestedKind.CHAT_EDIT,
    SuggestedKind.SUMMARY,
)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        # the contract's phrases
        ("Done! Click the Export button to download your video.", [EXPORT]),
        ("Hit export when you're happy.", [EXPORT]),
        ("Use the Export button at the top.", [EXPORT]),
        ("Open the timeline panel to review the cuts.", [STATE]),
        ("Drag the clip to the start.", [EDIT]),
        ("You can drag-and-drop clips to reorder them.", [EDIT]),
        ("Drop it onto the second track.", [EDIT]),
        ("Preview in timeline.", [SUMMARY]),
        ("Preview the result on the timeline.", [SUMMARY]),
        ("Click Apply to keep the new volume.", [EDIT]),
        ("Click on the 'Beat sync' tab.", [EDIT]),
        # Chinese
        ("完成了，点击导出即可下载。", [EXPORT]),
        ("满意后点击「导出」。", [EXPORT]),
        ("导出按钮在右上角", [EXPORT]),
        ("现在可以导出视频", [EXPORT]),
        ("打开时间线面板查看", [STATE]),
        ("拖拽片段到开头", [EDIT]),
        ("在时间线上预览效果", [SUMMARY]),
        ("点击应用保存音量", [EDIT]),
        # the emulator's hints, whole
        (
            " Preview in timeline, then click the Export button when you're happy.",
            [SUMMARY, EXPORT],
        ),
        (" Open the timeline panel to check it, then click [Export] to render.", [STATE, EXPORT]),
        (" You can drag and drop the clips in the timeline to reorder them.", [EDIT]),
        ("可以在时间线中预览,满意后点击导出按钮。", [SUMMARY, EXPORT]),
        ("打开时间线面板查看效果,然后点击「导出」。", [STATE, EXPORT]),
        ("可以在时间线里拖拽片段调整顺序。", [EDIT]),
    ],
)
def test_phrases(text: str, kinds: list[SuggestedKind]) -> None:
    assert [a.kind for a in suggested_actions(text)] == kinds


@pytest.mark.parametrize(
    "text",
    [
        "I synced the music to your cuts.",
        "The exported file will be 1080p.",
        "I exported nothing yet; say the word.",
        "Added a click track at 120 BPM.",
        "Set tap tempo to 96.",
        "The beat drops on 0:32 now line up with the cuts.",
        "The beat drop on the chorus lands on a cut.",
        "Kept the opening credits.",
        "The clicks in the intro are gone.",
        "视频已导出。",
        "我已经导出了视频",
        "",
    ],
)
def test_no_false_alarms(text: str) -> None:
    assert suggested_actions(text) == []


def test_one_action_per_kind_in_order_of_appearance_with_the_words() -> None:
    text = "Click Apply, then drag the logo. Open the media library. Click the Export button."
    assert suggested_actions(text) == [
        SuggestedAction(EDIT, "Click Apply"),
        SuggestedAction(STATE, "Open the media library"),
        SuggestedAction(EXPORT, "Click the Export button"),
    ]


def test_the_more_specific_phrase_wins_where_two_overlap() -> None:
    # "点击打开..." is a click and an open: it is an open.
    assert suggested_actions("点击打开时间线") == [SuggestedAction(STATE, "打开")]
    # "click the Export button" is a click and an export: it is an export.
    assert suggested_actions("click the Export button") == [
        SuggestedAction(EXPORT, "click the Export button")
    ]


def test_a_click_and_an_export_in_different_sentences_are_two_things() -> None:
    assert [a.kind for a in suggested_actions("Click Save. Export later.")] == [EDIT]
