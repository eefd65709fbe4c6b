"""route(): the contract's table, English and Chinese, and no false exits from chat."""

from __future__ import annotations

import pytest

from nemo_sync import Action, route


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("export", Action.EXPORT),
        ("Export 1080p MP4", Action.EXPORT),
        ("导出", Action.EXPORT),
        ("download", Action.EXPORT),
        ("send me the video", Action.EXPORT),
        ("credits", Action.CREDITS),
        ("how many credits do I have?", Action.CREDITS),
        ("积分", Action.CREDITS),
        ("balance", Action.CREDITS),
        ("余额", Action.CREDITS),
        ("status", Action.STATE),
        ("状态", Action.STATE),
        ("show tracks", Action.STATE),
        ("upload", Action.UPLOAD),
        ("上传", Action.UPLOAD),
        ("sync my audio files", Action.CHAT),
        (
            "sync background music to my video and adjust the beat drops to match the cuts",
            Action.CHAT,
        ),
        ("make the end credits roll slower", Action.CHAT),
        ("add a title and then export", Action.CHAT),
        ("给视频加背景音乐并且卡点", Action.CHAT),
        ("", Action.CHAT),
    ],
)
def test_route(text: str, action: Action) -> None:
    assert route(text) is action


def test_an_attachment_is_an_upload() -> None:
    assert route("here is my song", has_attachment=True) is Action.UPLOAD
