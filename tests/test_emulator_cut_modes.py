"""Emulator: where the cuts go when asked ("every beat", "every bar", "only on the drops")."""

from __future__ import annotations

from typing import Any

import pytest

from nemo_sync.emulator._intent import Intent, parse
from tests.emulator_raw import Raw
from tests.songs import build_and_drop, steady

QUICK_EDIT = "sync the background music to my video and match the beat drops to the cuts"
FRAME_MS = 1000 / 30

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0, render_seconds=0.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (QUICK_EDIT, Intent(sync=True)),
        ("cut on every beat", Intent(sync=True, cut_mode="beat")),
        ("sync to the music and cut on each beat", Intent(sync=True, cut_mode="beat")),
        ("cut every bar", Intent(sync=True, cut_mode="bar")),
        ("change shots on each measure", Intent(sync=True, cut_mode="bar")),
        ("sync it, cutting only on the drops", Intent(sync=True, cut_mode="drop")),
        ("cut just the beat drops", Intent(sync=True, cut_mode="drop")),
        ("每一拍都切换镜头", Intent(sync=True, cut_mode="beat", chinese=True)),
        ("每小节切一次", Intent(sync=True, cut_mode="bar", chinese=True)),
        ("只在高潮处切换", Intent(sync=True, cut_mode="drop", chinese=True)),
    ],
)
def test_cut_mode_words(text: str, expected: Intent) -> None:
    assert parse(text) == expected


async def _sync(raw: Raw, song: bytes, text: str) -> tuple[dict[str, Any], list[int], str]:
    session_id = await raw.new_session()
    for name, content in {"song.wav": song, "a.mp4": b"\0" * 64, "b.mp4": b"\0" * 64}.items():
        assert (await raw.upload(session_id, name, content)).status == 200
    stream = await raw.chat(session_id, text)
    assert [c["name"] for c in stream.calls] == ["beat_sync"]
    draft = (await raw.state(session_id)).data["state"]["draft"]
    video = next(t for t in draft["t"] if t["tt"] == 0)["sg"]
    return draft, [s["st"] for s in video[1:]], stream.texts[0]


@pytest.fixture(scope="module")
def drop_song(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, float]:
    # Short and at 22050 Hz: the upload stays under 1 MB, which aiohttp sends as bytes.
    song = build_and_drop(bars=(2, 2, 4))
    path = song.write(tmp_path_factory.mktemp("song") / "drop.wav", halve=True)
    return path.read_bytes(), song.drops[0] * 1000


async def test_the_quick_edit_cuts_on_strong_beats_and_exactly_on_the_drop(
    raw: Raw, drop_song: tuple[bytes, float]
) -> None:
    content, drop = drop_song
    draft, cuts, text = await _sync(raw, content, QUICK_EDIT)
    assert [round(d) for d in draft["m"]["drops"]] == [pytest.approx(drop, abs=FRAME_MS)]
    assert draft["m"]["drops"][0] in cuts
    assert set(cuts) <= set(draft["m"]["beats"])
    assert set(draft["m"]["downbeats"][1:]) <= set(cuts)
    assert "128 BPM" in text
    assert "strong beats" in text
    assert "1 drop" in text


async def test_every_beat_every_bar_and_only_the_drops(
    raw: Raw, drop_song: tuple[bytes, float]
) -> None:
    content, _ = drop_song
    draft, cuts, text = await _sync(raw, content, "cut on every beat")
    beats = draft["m"]["beats"]
    assert cuts == [b for b in beats if 250 <= b <= draft["d"] - 250]
    assert "every beat" in text
    draft, cuts, text = await _sync(raw, content, "cut on every bar")
    assert cuts == [b for b in draft["m"]["downbeats"] if b >= 250]
    assert "every bar" in text
    draft, cuts, text = await _sync(raw, content, "cut only on the drops")
    assert cuts == draft["m"]["drops"]
    assert len(cuts) == 1
    assert "only on the drops" in text


async def test_only_on_the_drops_in_music_without_one_says_so(
    raw: Raw, tmp_path_factory: pytest.TempPathFactory
) -> None:
    song = steady(100.0, seconds=12.0).write(tmp_path_factory.mktemp("s") / "s.wav", halve=True)
    draft, cuts, text = await _sync(raw, song.read_bytes(), "cut only on the drops")
    assert draft["m"]["drops"] == []
    assert cuts == [b for b in draft["m"]["downbeats"] if b >= 250]
    assert "no drop" in text
