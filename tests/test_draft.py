"""Drafts from the user's side: round trip, summary, diff, builders, picture."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemo_sync import Media
from nemo_sync.draft import (
    Draft,
    DraftFormatError,
    DraftValidationError,
    Segment,
    Track,
    TrackType,
)

SEED = {
    "t": [
        {"tt": 0, "sg": [{"n": "city timelapse", "st": 0, "d": 10000}]},
        {"tt": 1, "sg": [{"n": "Lo-fi", "st": 0, "d": 10000, "v": 0.35}]},
        {"tt": 7, "sg": [{"x": "Urban Dreams", "st": 0, "d": 3000}]},
    ]
}


def test_summary_is_exactly_the_seeds_format() -> None:
    assert Draft.from_wire(SEED).summary() == (
        "Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) "
        '3. Title: "Urban Dreams" (0-3s)'
    )
    assert str(Draft.from_wire(SEED)) == Draft.from_wire(SEED).summary()


def test_summary_of_a_beat_cut_video_and_odd_cases() -> None:
    wire = {
        "t": [
            {
                "tt": 0,
                "sg": [
                    {"n": "a.mp4", "st": 0, "d": 1500},
                    {"n": "b.mp4", "st": 1500, "d": 1500},
                    {"n": "a.mp4", "st": 3000, "d": 2000},
                ],
            },
            {"tt": 9, "n": "Stickers", "sg": []},
        ]
    }
    assert Draft.from_wire(wire).summary() == (
        "Timeline (2 tracks): 1. Video: 3 clips from a.mp4, b.mp4 (0-5s) 2. Stickers: (empty)"
    )
    assert Draft().summary() == "Timeline (0 tracks): empty"


def test_unknown_track_type_round_trips() -> None:
    wire = {"t": [{"tt": 9, "sg": [], "fx": {"glow": 2}}]}
    draft = Draft.from_wire(wire)
    assert draft.tracks[0].track_type == 9
    assert draft.tracks[0].track_type.name == "UNKNOWN_9"  # type: ignore[union-attr]
    assert draft.to_wire() == wire


def test_models_have_readable_names() -> None:
    draft = Draft.from_wire(SEED)
    music = draft.tracks_of(TrackType.AUDIO)[0]
    assert music.segments[0] == Segment(name="Lo-fi", start_ms=0, duration_ms=10000, volume=0.35)
    assert draft.tracks[0].track_type is TrackType.VIDEO


def test_from_wire_never_mutates_its_input() -> None:
    wire: dict[str, Any] = {**SEED, "x": {"nested": [1, 2]}}
    before = copy.deepcopy(wire)
    draft = Draft.from_wire(wire)
    draft.extra["x"]["nested"].append(3)
    draft.tracks[0].segments[0].duration_ms = 1
    assert wire == before


@pytest.mark.parametrize("bad", [{"t": "tracks"}, {"t": [1]}, {"t": [{"sg": {}}]}, [1]])
def test_a_shape_that_is_not_a_draft_is_a_typed_error(bad: Any) -> None:
    with pytest.raises(DraftFormatError):
        Draft.from_wire(bad)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
known_or_not = st.sampled_from(["id", "mid", "n", "st", "d", "in", "v", "x", "tt", "zz", "ü"])
segments = st.dictionaries(known_or_not, json_values, max_size=6)
tracks = st.fixed_dictionaries(
    {},
    optional={
        "tt": st.integers(0, 12) | json_scalars,
        "id": json_scalars,
        "n": json_scalars,
        "sg": st.lists(segments, max_size=3),
    },
).flatmap(
    lambda t: st.dictionaries(known_or_not, json_values, max_size=2).map(lambda u: {**u, **t})
)
drafts = st.fixed_dictionaries(
    {},
    optional={
        "t": st.lists(tracks, max_size=3),
        "d": json_scalars,
        "m": json_values,
        "extra": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(drafts)
def test_round_trip_is_lossless_for_any_draft_shaped_json(wire: dict[str, Any]) -> None:
    if any(not isinstance(t.get("sg", []), list) for t in wire.get("t", [])):
        return
    before = json.dumps(wire, sort_keys=True)
    assert json.dumps(Draft.from_wire(wire).to_wire(), sort_keys=True) == before
    assert json.dumps(wire, sort_keys=True) == before  # input untouched


def test_diff_sentences() -> None:
    before = Draft.from_wire(SEED)
    after = before.copy()
    after.tracks[1].segments[0].volume = 0.5
    after.tracks[2].segments[0].text = "Night Lights"
    after.tracks[0].segments[0].duration_ms = 8000
    after.metadata["aspect"] = "9:16"
    assert [c.sentence for c in before.diff(after)] == [
        "Trimmed 'city timelapse' to 0-8 s",
        "Changed volume of 'Lo-fi' from 35% to 50%",
        "Changed the title from 'Urban Dreams' to 'Night Lights'",
        "Changed the aspect ratio to 9:16",
    ]
    assert [c.kind for c in before.diff(after)] == ["timing", "volume", "text", "aspect"]


def test_diff_of_added_music_and_a_beat_cut() -> None:
    video_only = {"t": [{"id": "v", "tt": 0, "sg": [{"n": "clip", "st": 0, "d": 10000}]}]}
    synced = {
        "t": [
            {
                "id": "v",
                "tt": 0,
                "sg": [{"n": "clip", "st": i * 2000, "d": 2000} for i in range(5)],
            },
            {"id": "a", "tt": 1, "sg": [{"n": "Lo-fi", "st": 0, "d": 10000, "v": 0.35}]},
        ]
    }
    sentences = [c.sentence for c in Draft.from_wire(video_only).diff(Draft.from_wire(synced))]
    assert sentences == [
        "Cut the video into 5 clips on the beat",
        "Added audio track 'Lo-fi' (0-10 s, 35%)",
    ]
    assert Draft.from_wire(synced).diff(Draft.from_wire(synced)) == []


def test_builders_assemble_a_timeline() -> None:
    clip = Media(id="m1", name="city.mp4", size=1, kind="video", duration_ms=12000)
    draft = Draft()
    draft.add_video(clip, 0, 10)
    draft.add_audio("m2", volume=0.35)
    draft.add_text("Urban Dreams", 0, 3)
    assert draft.summary() == (
        "Timeline (3 tracks): 1. Video: city.mp4 (0-10s) 2. BGM: m2 (0-10s, 35%) "
        '3. Title: "Urban Dreams" (0-3s)'
    )
    wire = draft.to_wire()
    assert wire["d"] == 10000
    assert Draft.from_wire(wire) == draft


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda d: d.add_video("m", -1, 2), "negative"),
        (lambda d: d.add_video("m", 3, 2), "must be after start"),
        (lambda d: (d.add_video("m", 0, 5), d.add_video("n", 4, 6)), "overlaps 'm'"),
        (
            lambda d: d.add_video(
                Media(id="m", name="c.mp4", size=1, kind="video", duration_ms=3000), 0, 5
            ),
            "runs past its end",
        ),
        (lambda d: d.add_audio("m", 0, 5, volume=35), "between 0 and 1"),
        (lambda d: d.add_text(" ", 0, 1), "needs some text"),
    ],
)
def test_builders_refuse_impossible_segments(build: Any, words: str) -> None:
    with pytest.raises(DraftValidationError, match=words):
        build(Draft())


def test_the_picture_is_valid_svg_with_a_row_per_track_and_beats() -> None:
    wire = copy.deepcopy(SEED)
    wire["m"] = {"beats": [0, 500, 1000, 1500]}
    wire["t"][2]["sg"][0]["x"] = "<Urban & Dreams>"
    svg = Draft.from_wire(wire)._repr_html_()
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert {"Video", "BGM", "Title", "beats"} <= set(texts)
    titles = [t.text for t in root.iter(f"{ns}title")]
    assert "<Urban & Dreams>" in titles  # escaped in the file, the same text once parsed
    assert len(list(root.iter(f"{ns}rect"))) == 1 + 3  # background + 3 segments
    assert "0s" in texts
    assert "10s" in texts


def test_track_equality_ignores_where_it_came_from() -> None:
    assert Track(track_type=TrackType.AUDIO) == Draft.from_wire({"t": [{"tt": 1}]}).tracks[0]
