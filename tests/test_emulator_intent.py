"""Emulator: reading instructions (English and Chinese keywords) into edits."""

from __future__ import annotations

import pytest

from nemo_sync.emulator._intent import Intent, parse

QUICK_EDIT = "sync the background music to my video and adjust the beat drops to match the cuts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (QUICK_EDIT, Intent(sync=True)),
        ("sync my audio files", Intent(sync=True)),
        ("卡点", Intent(sync=True, chinese=True)),
        ("按节拍剪辑", Intent(sync=True, chinese=True)),
        ("add background music", Intent(music=True)),
        ("replace the music with chill.mp3", Intent(music=True)),
        ("加背景音乐", Intent(music=True, chinese=True)),
        ("set the music volume to 35%", Intent(volume=("music", 0.35))),
        ("lower the bgm to 20%", Intent(volume=("music", 0.2))),
        ("音量调到35%", Intent(volume=("music", 0.35), chinese=True)),
        ("video volume 50%", Intent(volume=("video", 0.5))),
        ("mute the original sound", Intent(volume=("video", 0.0))),
        ("原声静音", Intent(volume=("video", 0.0), chinese=True)),
        ('add the title "Urban Dreams" for 3 seconds', Intent(title=("Urban Dreams", 3000))),
        ("title: Summer Trip", Intent(title=("Summer Trip", 3000))),
        ("add a title", Intent(title=(None, 3000))),
        ("加标题“城市之梦”5秒", Intent(title=("城市之梦", 5000), chinese=True)),
        ("trim it to 15 seconds", Intent(trim_ms=15000)),
        ("keep the first 8.5 s", Intent(trim_ms=8500)),
        ("剪到10秒", Intent(trim_ms=10000, chinese=True)),
        ("只要前6秒", Intent(trim_ms=6000, chinese=True)),
        ("make it 9:16", Intent(aspect="9:16")),
        ("16:9 please", Intent(aspect="16:9")),
        ("square for instagram", Intent(aspect="1:1")),
        ("竖屏", Intent(aspect="9:16", chinese=True)),
        ("改成横屏", Intent(aspect="16:9", chinese=True)),
        ("1：1", Intent(aspect="1:1")),
        ("hello there", Intent()),
        ("what can you do?", Intent()),
    ],
)
def test_parse(text: str, expected: Intent) -> None:
    assert parse(text) == expected


def test_several_edits_in_one_instruction() -> None:
    intent = parse('sync to the beat, music at 40%, make it 9:16 and add the title "Go"')
    assert intent.sync
    assert not intent.music  # sync brings the music itself
    assert intent.volume == ("music", 0.4)
    assert intent.aspect == "9:16"
    assert intent.title == ("Go", 3000)
    assert intent.edits


def test_match_the_cuts_is_not_a_trim() -> None:
    assert parse(QUICK_EDIT).trim_ms is None


def test_no_edits() -> None:
    assert not Intent().edits


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add the title 'Urban Dreams' for 3 seconds", ("Urban Dreams", 3000)),
        ("add a title ‘Night Lights’ for 2s", ("Night Lights", 2000)),
        ("don't forget the title 'Go'", ("Go", 3000)),  # an apostrophe is not a quote
        ('add the title "Both" for 1 second', ("Both", 1000)),
    ],
)
def test_single_and_double_quoted_titles(text: str, title: tuple[str, int]) -> None:
    assert parse(text).title == title
