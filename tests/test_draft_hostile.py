"""Drafts a hostile or broken server could send: huge, deep, non-finite, full of control bytes.

Complexity is asserted by counting work (comparisons), not by timing; speed is in
benchmarks/bench_draft.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemo_sync._session_state import SessionState
from nemo_sync.draft import Draft, DraftFormatError, Segment, Track, TrackType
from nemo_sync.draft._diff import _match
from nemo_sync.errors import APIResponseError

NS = "{http://www.w3.org/2000/svg}"
N = 2_000  # enough to tell N*N/2 comparisons from a few N


class CountedStr(str):
    """A str that counts how often it is compared for equality (list ``in`` does that)."""

    eq_calls = 0

    def __eq__(self, other: object) -> bool:
        CountedStr.eq_calls += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        CountedStr.eq_calls += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


def _segments(n: int, *, ids: bool = True) -> list[dict[str, Any]]:
    return [
        {**({"id": f"s{i}"} if ids else {}), "n": f"clip {i}", "st": i * 1000, "d": 1000}
        for i in range(n)
    ]


def _counted_track(n: int, track_type: TrackType) -> Track:
    """A track whose segment names count their comparisons (the wire only gives plain str)."""
    segments = [
        Segment(name=CountedStr(f"clip {i}"), start_ms=i * 1000, duration_ms=1000) for i in range(n)
    ]
    return Track(track_type=track_type, segments=segments)


# Row 17: summary() and diff() are linear in the number of segments and tracks.


def test_summary_compares_names_a_linear_number_of_times() -> None:
    draft = Draft(tracks=[_counted_track(N, TrackType.VIDEO)])
    CountedStr.eq_calls = 0
    text = draft.summary()
    assert f"{N} clips from clip 0, clip 1, clip 2 and {N - 3} more" in text
    assert CountedStr.eq_calls <= 4 * N  # the list-membership version made ~N*N/2


def test_diff_of_an_added_track_is_linear() -> None:
    added = Draft(tracks=[_counted_track(N, TrackType.AUDIO)])
    CountedStr.eq_calls = 0
    changes = Draft().diff(added)
    assert [c.kind for c in changes] == ["track_added"]
    assert f"{N} clips from clip 0" in changes[0].sentence
    assert CountedStr.eq_calls <= 4 * N


def test_matching_many_tracks_by_id_is_linear() -> None:
    def tracks(volume: float) -> list[Track]:
        return [
            Track(id=CountedStr(f"t{i}"), track_type=TrackType.AUDIO, segments=[]) for i in range(N)
        ] + [Track(id="last", track_type=TrackType.AUDIO, name=str(volume))]

    old, new = Draft(tracks=tracks(0.1)), Draft(tracks=list(reversed(tracks(0.2))))
    CountedStr.eq_calls = 0
    assert old.diff(new) == []
    assert CountedStr.eq_calls <= 4 * N


def test_matching_tracks_with_ids_against_tracks_without_is_linear() -> None:
    # No new track has an id, so the id lookup finds nothing: it must not scan every old track.
    old = Draft(
        tracks=[Track(id=CountedStr(f"t{i}"), track_type=TrackType.AUDIO) for i in range(N)]
    )
    new = Draft(tracks=[Track(track_type=TrackType.AUDIO) for _ in range(N)])
    CountedStr.eq_calls = 0
    changes = old.diff(new)
    assert [c.kind for c in changes] == ["track_added"] * N + ["track_removed"] * N
    assert CountedStr.eq_calls <= 4 * N


def _reference_match(old: list[Track], new: list[Track]) -> list[tuple[Any, Any]]:
    """The original scan-based matching, kept here as the specification of the fast one."""
    pairs: list[tuple[Any, Any]] = []
    unmatched = list(old)
    for track in new:
        partner = next((o for o in unmatched if o.id and o.id == track.id), None)
        if partner is None:
            partner = next(
                (o for o in unmatched if not o.id and o.track_type == track.track_type), None
            )
        if partner is not None:
            unmatched = [o for o in unmatched if o is not partner]
        pairs.append((partner, track))
    pairs.extend((o, None) for o in unmatched)
    return pairs


_tracks = st.lists(
    st.builds(
        Track,
        id=st.sampled_from([None, "", "a", "b", "c"]),
        track_type=st.sampled_from([None, TrackType.VIDEO, TrackType.AUDIO, TrackType(9)]),
    ),
    max_size=8,
)


@given(_tracks, _tracks)
@settings(max_examples=300, deadline=None)
def test_fast_track_matching_pairs_exactly_like_the_scan(
    old: list[Track], new: list[Track]
) -> None:
    def ident(pairs: list[tuple[Any, Any]]) -> list[tuple[int | None, int | None]]:
        return [(id(a) if a else None, id(b) if b else None) for a, b in pairs]

    assert ident(_match(old, new)) == ident(_reference_match(old, new))


# Row 11: NaN, Infinity and numbers beyond a float in a draft are shown as unknown, never raise.

_NON_FINITE = [float("nan"), float("inf"), float("-inf"), 10**400]
_NON_FINITE_IDS = ["nan", "inf", "-inf", "10**400"]


def _one_segment(**changes: Any) -> dict[str, Any]:
    segment = {"id": "s1", "n": "Lo-fi", "st": 0, "d": 10_000, "v": 0.35, **changes}
    return {"t": [{"id": "a", "tt": 1, "sg": [segment]}], "m": {"beats": [0, 500]}}


@pytest.mark.parametrize("value", _NON_FINITE, ids=_NON_FINITE_IDS)
def test_a_non_finite_volume_is_shown_as_absent(value: float) -> None:
    draft = Draft.from_wire(_one_segment(v=value))
    assert draft.summary() == "Timeline (1 track): 1. BGM: Lo-fi (0-10s)"
    ET.fromstring(draft._repr_html_())
    normal = Draft.from_wire(_one_segment())
    assert draft.diff(draft) == []
    assert normal.diff(draft) == []  # an unknown volume is not a change to report
    assert [c.sentence for c in draft.diff(normal)] == [
        "Changed volume of 'Lo-fi' from default to 35%"
    ]
    assert [c.sentence for c in Draft().diff(draft)] == ["Added audio track 'Lo-fi' (0-10 s)"]


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["huge", "-huge"])
def test_times_beyond_a_float_are_shown_as_unknown(value: int) -> None:
    draft = Draft.from_wire({**_one_segment(st=value, d=value), "d": value})
    assert draft.summary() == "Timeline (1 track): 1. BGM: Lo-fi (?-?s, 35%)"
    ET.fromstring(draft._repr_html_())
    sentences = [c.sentence for c in Draft.from_wire(_one_segment()).diff(draft)]
    assert sentences == ["Trimmed 'Lo-fi' to ?-? s"]
    assert [c.sentence for c in Draft.from_wire({"d": 1}).diff(Draft.from_wire({"d": value}))] == [
        "The timeline is now ? s long"
    ]


@pytest.mark.parametrize("value", _NON_FINITE, ids=_NON_FINITE_IDS)
def test_non_finite_beats_are_left_out(value: float) -> None:
    draft = Draft.from_wire({**_one_segment(), "m": {"beats": [0, value, 500]}})
    assert draft.beats_ms == [0, 500]
    svg = ET.fromstring(draft._repr_html_())
    assert len([e for e in svg.iter(f"{NS}line") if e.get("stroke") == "#ef4444"]) == 2


# Row 16: the picture is bounded in time and size, and always valid XML.


def _lines(svg: str) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{NS}line"))


@pytest.mark.timeout(20)  # it never returned (10**12 made a 118 MB picture)
@pytest.mark.parametrize(
    "duration", [10**12, 10**15, 10**300, 10**400], ids=["1e12", "1e15", "1e300", "1e400"]
)
def test_a_huge_duration_draws_a_dozen_ticks(duration: int) -> None:
    svg = Draft.from_wire({"d": duration})._repr_html_()
    assert len(svg) < 10_000
    assert 2 <= len(_lines(svg)) <= 13


def test_a_long_timeline_gets_round_ticks() -> None:
    svg = Draft.from_wire({"d": 10 * 3600 * 1000})._repr_html_()  # ten hours
    texts = [t.text for t in ET.fromstring(svg).iter(f"{NS}text")]
    assert texts[:3] == ["0s", "5000s", "10000s"]


def test_many_segments_and_tracks_draw_a_bounded_picture() -> None:
    many = [{"n": f"clip {i} " + "&" * 300, "st": i * 10, "d": 10} for i in range(N * 20)]
    tracks = [{"tt": 0, "sg": many}] + [
        {"tt": 1, "n": f"t{i}", "sg": [{"n": "x", "st": 0, "d": 10}]} for i in range(500)
    ]
    draft = Draft.from_wire({"t": tracks, "m": {"beats": list(range(0, N * 200, 7))}})
    svg = draft._repr_html_()
    root = ET.fromstring(svg)
    assert len(svg) < 3_000_000
    rects = list(root.iter(f"{NS}rect"))
    assert 100 < len(rects) <= 2_001
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "… and 481 more tracks" in texts
    # The first track still covers the whole lane: buckets keep the furthest-reaching block.
    first_row = [r for r in rects if r.get("y") == "30"]
    right = max(float(r.get("x", 0)) + float(r.get("width", 0)) for r in first_row)
    assert right >= 789
    beats = [float(line.get("x1", 0)) for line in _lines(svg) if line.get("stroke") == "#ef4444"]
    assert 700 <= len(beats) <= 1_000
    assert max(beats) >= 789  # marks span the timeline, not only its first thousand beats


def test_control_and_xml_invalid_characters_are_stripped_from_the_picture() -> None:
    name = "clip\x00\x1b[2J\x07\x7f\x9b\ud800\ufffe ok"
    draft = Draft.from_wire(
        {"t": [{"tt": 9, "n": "odd\x1btrack", "sg": [{"n": name, "st": 0, "d": 1000}]}]}
    )
    svg = draft._repr_html_()
    root = ET.fromstring(svg)  # NUL, ESC or a lone surrogate made this fail
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert "clip[2J ok" in titles
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "oddtrack" in texts
    svg.encode("utf-8")  # no lone surrogates left


def test_a_huge_name_is_cut_in_the_picture() -> None:
    svg = Draft.from_wire(
        {"t": [{"tt": 0, "n": "n" * 10**6, "sg": [{"n": "x" * 10**6, "st": 0, "d": 1}]}]}
    )._repr_html_()
    assert len(svg) < 10_000


# Row 10: JSON nested too deep for deepcopy (or json.dumps, or ==) is a typed error.


def _nested(depth: int) -> dict[str, Any]:
    """``{"x": {"x": ...}}`` built without recursion."""
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize("depth", [800, 100_000])
@pytest.mark.parametrize(
    "place",
    [
        lambda deep: {"m": deep},
        lambda deep: {"fx": [deep]},
        lambda deep: {"t": [{"tt": 0, "sg": [{"n": "a", "fx": deep}]}]},
        lambda deep: {"t": [{"tt": 0, "fx": deep}]},
    ],
    ids=["metadata", "draft-extra", "segment-extra", "track-extra"],
)
def test_deep_json_is_a_draft_format_error(depth: int, place: Any) -> None:
    with pytest.raises(DraftFormatError, match="nested deeper than 100 levels"):
        Draft.from_wire(place(_nested(depth)))


def test_json_just_under_the_depth_limit_round_trips() -> None:
    wire = {"t": [{"tt": 0, "sg": [{"n": "a", "fx": _nested(95)}]}]}  # 100 levels in all
    assert Draft.from_wire(wire).to_wire() == wire
    with pytest.raises(DraftFormatError):
        Draft.from_wire({"t": [{"tt": 0, "sg": [{"n": "a", "fx": _nested(96)}]}]})


def test_a_deep_state_from_the_server_is_an_api_response_error() -> None:
    deep = _nested(100_000)
    with pytest.raises(APIResponseError, match=r"not a draft: .*nested deeper"):
        SessionState.from_data({"state": {"draft": {"m": deep}}}, "/state")
