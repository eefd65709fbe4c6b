"""The local render engine: beats, cut plans, a real MP4 with cuts on the beats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from nemo_sync.local import (
    Clip,
    LocalRenderBackend,
    analyze_beats,
    beat_grid,
    make_sample_media,
    plan_beat_cuts,
    probe,
)
from nemo_sync.local._beats import RATE, analyze_samples


def click_track(bpm: float, seconds: float = 20.0, start: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 0.02, int(seconds * RATE)).astype(np.float32)
    truth = np.arange(start, seconds - 0.2, 60.0 / bpm)
    n = int(0.02 * RATE)
    click = np.sin(2 * np.pi * 1000 * np.arange(n) / RATE) * np.exp(-np.arange(n) / (0.004 * RATE))
    for t in truth:
        i = int(t * RATE)
        samples[i : i + n] += click.astype(np.float32)
    return samples, truth


@pytest.mark.parametrize("bpm", [90, 120, 128])
def test_beats_within_20_ms_of_the_truth_on_noisy_click_tracks(bpm: int) -> None:
    samples, truth = click_track(bpm)
    found = analyze_samples(samples)
    beats = np.array(found.beats_ms) / 1000.0
    assert len(beats) == len(truth)
    assert max(float(np.min(np.abs(beats - t))) for t in truth) <= 0.020
    assert abs(found.bpm - bpm) < 1.0


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("samples"), seconds=8.0)


def test_sample_media_and_its_downbeats(samples) -> None:
    info = probe(samples.music)
    assert info.duration_ms == 8000
    assert not info.has_video
    found = analyze_beats(samples.music)
    assert abs(found.bpm - 120) < 1.5
    # The sample accents every bar's first beat: those are the downbeats, 2 s apart.
    assert all(abs(d % 2000) < 30 or abs(d % 2000 - 2000) < 30 for d in found.downbeats_ms)
    clip = probe(samples.clips[0])
    assert (clip.width, clip.height, clip.duration_ms, clip.has_audio) == (640, 360, 5000, True)


def test_every_cut_is_on_a_beat_with_no_short_shot_and_clips_loop() -> None:
    beats = beat_grid(128, 20000, offset_ms=150)
    downbeats = beats[::4]
    clips = [Clip("a", "a.mp4", 3000), Clip("b", "b.mp4", 2500)]
    plan = plan_beat_cuts(clips, beats_ms=beats, downbeats_ms=downbeats, total_ms=20000)
    starts = [s["st"] for s in plan.video_segments]
    assert starts[0] == 0
    assert all(s in beats for s in starts[1:])
    assert all(s["d"] >= 700 for s in plan.video_segments)
    assert set(downbeats[1:]) <= set(starts)  # the drops get cuts
    assert sum(s["d"] for s in plan.video_segments) == 20000
    assert [s["mid"] for s in plan.video_segments[:4]] == ["a", "b", "a", "b"]
    for segment, clip in (
        (s, next(c for c in clips if c.media_id == s["mid"])) for s in plan.video_segments
    ):
        assert segment["in"] + segment["d"] <= clip.duration_ms or segment["in"] == 0


def test_a_single_clip_with_scene_changes_shifts_the_music() -> None:
    beats = beat_grid(120, 20000)
    clip = Clip("a", "a.mp4", 12000, scene_changes_ms=(2300, 6300))
    plan = plan_beat_cuts([clip], beats_ms=beats, downbeats_ms=beats[::4], total_ms=20000)
    assert plan.music_in_ms == 1700  # downbeat 4000 -> scene 2300, 8000 -> 6300
    assert [s["st"] for s in plan.video_segments] == [0, 2300, 6300]
    assert {2300, 6300} <= set(plan.downbeats_ms)


def test_planning_needs_clips() -> None:
    with pytest.raises(ValueError, match="upload a video"):
        plan_beat_cuts([], beats_ms=[0], downbeats_ms=[], total_ms=1000)


def _cut_frames(path: Path) -> list[int]:
    """Frame indices where the picture jumps (a cut)."""
    previous = None
    cuts = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            small = frame.reformat(width=64, height=112, format="gray").to_ndarray().astype(float)
            if previous is not None and np.abs(small - previous).mean() > 25:
                cuts.append(index)
            previous = small
    return cuts


def test_render_writes_h264_aac_with_cuts_on_the_planned_beats(samples, tmp_path: Path) -> None:
    found = analyze_beats(samples.music)
    clips = [Clip(p.stem, p.name, 5000) for p in samples.clips]
    plan = plan_beat_cuts(
        clips, beats_ms=found.beats_ms, downbeats_ms=found.downbeats_ms, total_ms=6000
    )
    draft = {
        "d": 6000,
        "m": {"aspect": "9:16"},
        "t": [
            {"tt": 0, "sg": plan.video_segments},
            {"tt": 1, "sg": [{"mid": "music", "st": 0, "d": 6000, "v": 0.8}]},
            {"tt": 7, "sg": [{"x": "Urban Dreams", "st": 0, "d": 1500}]},
        ],
    }
    media = {p.stem: p for p in samples.clips} | {"music": samples.music}
    progress: list[float] = []
    out = tmp_path / "out.mp4"
    LocalRenderBackend().render(
        draft, media, out, width=360, height=640, on_progress=progress.append
    )
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (360, 640)
        assert abs(container.duration / 1e6 - 6.0) < 0.1
    planned = [round(s["st"] * 30 / 1000) for s in plan.video_segments[1:]]
    found_cuts = _cut_frames(out)
    assert len(found_cuts) == len(planned)
    assert all(abs(a - b) <= 1 for a, b in zip(found_cuts, planned, strict=True))
    assert progress[-1] == 1.0
    assert list(tmp_path.glob(".*part*")) == []


def test_render_refuses_a_draft_without_video(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no video"):
        LocalRenderBackend().render(
            {"t": []}, {}, tmp_path / "x.mp4", width=64, height=64, on_progress=lambda _p: None
        )
    assert not (tmp_path / "x.mp4").exists()


def test_without_the_extra_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['av'] = None; sys.modules['numpy'] = None\n"
        "import nemo_sync, nemo_sync.local.plan\n"
        "from nemo_sync.local import MissingExtraError\n"
        "try:\n    from nemo_sync.local import analyze_beats\n"
        "except MissingExtraError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'nemo-sync[local]'" in out.stdout
