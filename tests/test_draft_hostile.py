"""Drafts a hostile or broken server could send: huge, deep, non-finite, full of control bytes.

Complexity is asserted by counting work (comparisons), not by timing; speed is in
benchmarks/bench_draft.py.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nemo_sync.draft import Draft, Segment, Track, TrackType
from nemo_sync.draft._diff import _match

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
