"""The beat tracker against songs with known beats: cuts on true beats, the right BPM, drops."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nemo_sync.local import BeatAnalysis, Clip, analyze_beats, plan_beat_cuts
from tests.songs import SONGS, Song

FRAME_MS = 1000 / 30  # one video frame at the render's 30 fps
CLIPS = [Clip("a", "a.mp4", 5000), Clip("b", "b.mp4", 4000), Clip("c", "c.mp4", 6000)]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Song, BeatAnalysis]]:
    folder = tmp_path_factory.mktemp("songs")
    found = {}
    for key, make in SONGS.items():
        song = make()
        found[key] = (song, analyze_beats(song.write(folder / f"{key}.wav")))
    return found


def _nearest_ms(points_s: tuple[float, ...] | list[float], at_ms: float) -> float:
    return float(np.min(np.abs(np.asarray(points_s) * 1000 - at_ms)))


def _plan(song: Song, found: BeatAnalysis, mode: str = "strong") -> list[int]:
    plan = plan_beat_cuts(
        CLIPS,
        beats_ms=found.beats_ms,
        downbeats_ms=found.downbeats_ms,
        drops_ms=found.drops_ms,
        total_ms=int(song.seconds * 1000),
        mode=mode,  # type: ignore[arg-type]
    )
    return [s["st"] for s in plan.video_segments[1:]]  # the first shot starts at 0: no cut


@pytest.mark.parametrize("key", list(SONGS))
def test_nine_cuts_in_ten_are_within_a_frame_of_a_true_beat(analysed, key: str) -> None:
    song, found = analysed[key]
    cuts = _plan(song, found)
    assert len(cuts) >= song.seconds / 2  # a cut every two seconds or more often
    on_beat = [_nearest_ms(song.beats, c) <= FRAME_MS for c in cuts]
    missed = [c for c, ok in zip(cuts, on_beat, strict=True) if not ok]
    assert sum(on_beat) >= 0.9 * len(cuts), missed


@pytest.mark.parametrize("key", list(SONGS))
def test_the_beats_are_the_true_beats(analysed, key: str) -> None:
    song, found = analysed[key]
    hits = [_nearest_ms(song.beats, b) <= 35 for b in found.beats_ms]
    recalled = [
        min((abs(b - t * 1000) for b in found.beats_ms), default=1e9) <= 35 for t in song.beats
    ]
    assert sum(hits) >= 0.95 * len(hits)  # few beats where there is none
    assert sum(recalled) >= 0.95 * len(recalled)  # few true beats missed


@pytest.mark.parametrize("key", list(SONGS))
def test_the_bpm_is_right_to_the_octave(analysed, key: str) -> None:
    song, found = analysed[key]
    slow, fast = min(song.bpm), max(song.bpm)
    assert slow * 0.98 <= found.bpm <= fast * 1.02
    low, high = found.bpm_range
    assert abs(low - slow) <= 0.03 * slow
    assert abs(high - fast) <= 0.03 * fast
    assert found.steady == (slow == fast)


def test_the_tempo_curve_follows_a_ramp(analysed) -> None:
    _, found = analysed["rising"]
    early = [bpm for at, bpm in found.tempo_ms if at < 3000]
    late = [bpm for at, bpm in found.tempo_ms if at > 21000]
    assert abs(np.median(early) - 121) < 3  # 120 at the start, rising
    assert abs(np.median(late) - 136) < 3  # held at 136 after 20 s
    assert all(b >= a - 3 for (_, a), (_, b) in itertools.pairwise(found.tempo_ms))


def test_no_beat_and_no_cut_in_a_beatless_intro(analysed) -> None:
    song, found = analysed["intro90"]
    ((start, end),) = song.beatless
    assert not [b for b in found.beats_ms if start * 1000 <= b < end * 1000]
    for mode in ("strong", "beat", "bar"):
        assert not [c for c in _plan(song, found, mode) if c < end * 1000], mode


@pytest.mark.parametrize("key", ["drop128", "intro90"])
def test_each_drop_is_found_and_gets_a_cut(analysed, key: str) -> None:
    song, found = analysed[key]
    assert len(found.drops_ms) == len(song.drops)
    for drop in song.drops:
        assert _nearest_ms(np.array(found.drops_ms) / 1000, drop * 1000) <= FRAME_MS
        for mode in ("strong", "beat", "bar", "drop"):
            cuts = np.array(_plan(song, found, mode))
            assert np.min(np.abs(cuts - drop * 1000)) <= FRAME_MS, mode


@pytest.mark.parametrize("key", ["steady100", "swung128", "rising", "falling"])
def test_no_drop_in_an_even_groove(analysed, key: str) -> None:
    assert analysed[key][1].drops_ms == []


@pytest.mark.parametrize("key", list(SONGS))
def test_downbeats_start_the_bars(analysed, key: str) -> None:
    song, found = analysed[key]
    right = [_nearest_ms(song.downbeats, d) <= 35 for d in found.downbeats_ms]
    assert sum(right) >= 0.9 * len(right)
    assert set(found.downbeats_ms) <= set(found.beats_ms)


def test_cut_modes(analysed) -> None:
    song, found = analysed["drop128"]
    total = int(song.seconds * 1000)
    every_beat = _plan(song, found, "beat")
    assert set(every_beat) == {b for b in found.beats_ms if 250 <= b <= total - 250}
    assert set(_plan(song, found, "bar")) == {d for d in found.downbeats_ms if d >= 250}
    assert _plan(song, found, "drop") == found.drops_ms
    strong = _plan(song, found)
    assert set(found.downbeats_ms[1:]) <= set(strong)
    assert min(np.diff(strong)) >= 700


def test_asking_for_drops_in_music_without_any_cuts_on_bars(analysed) -> None:
    song, found = analysed["steady100"]
    plan = plan_beat_cuts(
        CLIPS,
        beats_ms=found.beats_ms,
        downbeats_ms=found.downbeats_ms,
        drops_ms=found.drops_ms,
        total_ms=int(song.seconds * 1000),
        mode="drop",
    )
    assert plan.mode == "bar"
    assert [s["st"] for s in plan.video_segments[1:]] == [d for d in found.downbeats_ms if d >= 250]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        plan_beat_cuts(CLIPS, beats_ms=[0], downbeats_ms=[], total_ms=1000, mode="x")  # type: ignore[arg-type]


def test_a_song_file_is_what_it_claims(tmp_path: Path) -> None:
    song = SONGS["steady100"]()
    assert song.beats[0] == pytest.approx(0.25)
    assert np.diff(song.beats) == pytest.approx(0.6)
    assert song.write(tmp_path / "s.wav").stat().st_size > song.samples.size * 2
