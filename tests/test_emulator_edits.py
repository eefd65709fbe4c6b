"""Emulator: how the agent's tools change a draft (plain wire-format dicts)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from nemo_sync.emulator._edits import apply_edits
from nemo_sync.emulator._intent import parse
from nemo_sync.emulator._state import Account, MediaRecord, SessionRecord


def media(media_id: str, name: str, kind: str, duration_ms: int | None) -> MediaRecord:
    return MediaRecord(
        id=media_id,
        name=name,
        size=1,
        kind=kind,
        duration_ms=duration_ms,
        duration_estimated=False,
        sha256="0" * 64,
        path=Path("/nonexistent") / name,
    )


@pytest.fixture
def session() -> SessionRecord:
    record = SessionRecord(
        id="s",
        task_id="t",
        account=Account(id="a", client_id=None, registered=True, available=100),
        ordinal=1,
        rng=random.Random(0),
    )
    for item in (
        media("med_v1", "city.mp4", "video", 6000),
        media("med_i1", "logo.png", "image", None),
        media("med_a1", "lofi.mp3", "audio", 30000),
        media("med_a2", "rock.wav", "audio", 4000),
    ):
        record.media[item.id] = item
    return record


def run(session: SessionRecord, text: str) -> tuple[dict[str, Any], list[str], str]:
    result = apply_edits(session, parse(text), text)
    session.draft = result.draft
    notes = " ".join(en for en, _ in result.notes)
    return result.draft, [c.name for c in result.calls], notes


def track(draft: dict[str, Any], track_type: int) -> dict[str, Any]:
    return next(t for t in draft["t"] if t["tt"] == track_type)


def test_the_first_edit_lays_out_the_clips(session: SessionRecord) -> None:
    draft, calls, _ = run(session, "make it 16:9")
    assert calls == ["add_clips", "set_aspect_ratio"]
    video = track(draft, 0)["sg"]
    assert [(s["mid"], s["st"], s["d"]) for s in video] == [
        ("med_v1", 0, 6000),
        ("med_i1", 6000, 3000),  # images show for 3 s
    ]
    assert draft["d"] == 9000
    assert draft["m"]["aspect"] == "16:9"
    assert draft["cv"] == {"w": 1920, "h": 1080}
    _, again, _ = run(session, "make it 1:1")
    assert again == ["set_aspect_ratio"]  # laid out once


def test_music_is_the_latest_audio_or_the_named_one(session: SessionRecord) -> None:
    draft, _, notes = run(session, "add background music")
    bgm = track(draft, 1)["sg"]
    assert [(s["mid"], s["d"], s["v"]) for s in bgm] == [
        ("med_a2", 4000, 1.0)
    ]  # shorter than video
    assert "rock" in notes
    draft, _, _ = run(session, "set the music volume to 35%")
    draft, _, _ = run(session, "replace the music with lofi")
    bgm = track(draft, 1)["sg"]
    assert [(s["mid"], s["d"], s["v"]) for s in bgm] == [("med_a1", 9000, 0.35)]  # volume kept
    assert len([t for t in draft["t"] if t["tt"] == 1]) == 1
    assert [t["tt"] for t in draft["t"]] == [0, 1]


def test_volume_targets(session: SessionRecord) -> None:
    _, calls, notes = run(session, "music volume 50%")
    assert "set_volume" not in calls
    assert "no background music" in notes
    draft, _, _ = run(session, "video volume 20%")
    assert {s["v"] for s in track(draft, 0)["sg"]} == {0.2}
    draft, _, _ = run(session, "add music")
    draft, _, _ = run(session, "mute the music")
    assert track(draft, 1)["sg"][0]["v"] == 0.0


def test_titles(session: SessionRecord) -> None:
    draft, _, notes = run(session, "add a title")
    assert not any(t["tt"] == 7 for t in draft["t"])
    assert "What should the title say" in notes
    draft, _, _ = run(session, 'add the title "Urban Dreams" for 30 seconds')
    title = track(draft, 7)
    assert title["sg"] == [
        {"id": title["sg"][0]["id"], "n": "Urban Dreams", "x": "Urban Dreams", "st": 0, "d": 9000}
    ]  # no longer than the video
    draft, _, _ = run(session, 'title "Second" for 2 seconds')
    assert [s["x"] for s in track(draft, 7)["sg"]] == ["Second"]


def test_trim_cuts_every_track(session: SessionRecord) -> None:
    run(session, 'add music and the title "T" for 8 seconds')
    draft, calls, _ = run(session, "trim to 5 seconds")
    assert calls == ["trim"]
    assert draft["d"] == 5000
    for t in draft["t"]:
        assert all(s["st"] + s["d"] <= 5000 for s in t["sg"])
    assert [s["mid"] for s in track(draft, 0)["sg"]] == ["med_v1"]  # the image was cut off
    _, calls, notes = run(session, "trim to 20 seconds")
    assert calls == []
    assert "already" in notes


def test_problems_without_media() -> None:
    empty = SessionRecord(
        id="e",
        task_id="t",
        account=Account(id="a", client_id=None, registered=True, available=1),
        ordinal=2,
        rng=random.Random(0),
    )
    for text, expected in [
        ("add music", "Upload an audio file first"),
        ("sync to the beat", "To sync to the beat I need an audio file"),
        ("trim to 3 seconds", "nothing on the timeline"),
    ]:
        result = apply_edits(empty, parse(text), text)
        assert not result.edited
        assert expected in result.notes[0][0]
        assert result.notes[0][1]  # and in Chinese


def test_unknown_keys_are_kept(session: SessionRecord) -> None:
    session.draft = {"t": [], "d": 0, "m": {"custom": 1}, "future": {"x": [1]}}
    draft, _, _ = run(session, "make it 9:16")
    assert draft["future"] == {"x": [1]}
    assert draft["m"]["custom"] == 1
