"""Local render: seconds per output second at 720p and 1080p, and peak memory vs duration.

Target: 30 s of 1080p output in <= 30 s on 2 cores (faster than real time), memory flat with
duration. Each render is a beat-cut edit of the sample media (clips, music, a title) through
``LocalRenderBackend``, in its own process so peak RSS is its own. The baseline, in the same
process right after, is the encoder alone on the same frames: the rendered file is decoded
and its frames encoded again by libx264 with the same settings; a decode-only pass of the
same file is timed too and subtracted, leaving the encoder's time (no clip decoding,
cropping, scaling, titles or audio): the floor for any renderer here.

The second table judges the cuts: each test song of ``tests/songs.py`` (synthesised, so every
beat's time is known) is analysed, cut (the default plan: strong beats and every drop) and
rendered; the cuts are found again in the video by frame difference and compared with the
true beats, and librosa (extra ``bench``), an independent tracker, reports its own tempo and
beats from the rendered file's sound.

    python benchmarks/bench_local_render.py            # 10 s and 30 s at 720p and 1080p
    python benchmarks/bench_local_render.py --quick    # 3 s at 720p and 1080p, one song
    python benchmarks/bench_local_render.py --beats    # the cut-accuracy table only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

if TYPE_CHECKING:
    from nemo_sync.local import BeatAnalysis, CutPlan

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
ROOT = Path(__file__).resolve().parent.parent
FRAME_S = 1 / 30


def cut_to_the_beat(
    clip_paths: Sequence[Path], music: Path, total_ms: int
) -> tuple[BeatAnalysis, CutPlan]:
    """The music's analysis and the default cut plan of the clips over it."""
    from nemo_sync.local import Clip, analyze_beats, plan_beat_cuts, probe

    beats = analyze_beats(music)
    clips = [Clip(p.stem, p.name, probe(p).duration_ms) for p in clip_paths]
    plan = plan_beat_cuts(
        clips,
        beats_ms=beats.beats_ms,
        downbeats_ms=beats.downbeats_ms,
        drops_ms=beats.drops_ms,
        total_ms=total_ms,
    )
    return beats, plan


def render_edit(seconds: float, width: int, height: int, out: Path) -> float:
    """Render the sample edit to ``out``; returns wall seconds of the render alone."""
    from nemo_sync.local import (
        LocalRenderBackend,
        make_sample_media,
    )

    total_ms = int(seconds * 1000)
    samples = make_sample_media(out.parent / "media", seconds=seconds)
    _beats, plan = cut_to_the_beat(samples.clips, samples.music, total_ms)
    draft = {
        "d": total_ms,
        "t": [
            {"tt": 0, "sg": plan.video_segments},
            {"tt": 1, "sg": [{"mid": "music", "st": 0, "d": total_ms, "v": 0.8}]},
            {"tt": 7, "sg": [{"x": "Urban Dreams", "st": 0, "d": 2000}]},
        ],
    }
    media = {p.stem: p for p in samples.clips} | {"music": samples.music}
    started = time.perf_counter()
    LocalRenderBackend().render(
        draft, media, out, width=width, height=height, on_progress=lambda _: None
    )
    return time.perf_counter() - started


def encoder_alone(rendered: Path, width: int, height: int) -> float:
    """libx264 (the backend's preset and CRF) on the frames of ``rendered``, decode excluded."""
    import av

    from nemo_sync.local import LocalRenderBackend
    from nemo_sync.local._encode import FPS

    backend = LocalRenderBackend()

    def decode_only() -> float:
        started = time.perf_counter()
        with av.open(str(rendered)) as source:
            source.streams.video[0].thread_type = "AUTO"
            for _ in source.decode(video=0):
                pass
        return time.perf_counter() - started

    def decode_and_encode() -> float:
        started = time.perf_counter()
        with (
            av.open(str(rendered)) as source,
            av.open(str(rendered.with_name("again.mp4")), "w", format="mp4") as container,
        ):
            source.streams.video[0].thread_type = "AUTO"
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": backend.preset, "crf": str(backend.crf)}
            stream.thread_type = "AUTO"
            for i, frame in enumerate(source.decode(video=0)):
                frame.pts, frame.time_base = i, Fraction(1, FPS)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return time.perf_counter() - started

    both = decode_and_encode()
    return both - min(decode_only(), decode_only())


def child(seconds: float, size: str) -> None:
    width, height = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        took = render_edit(seconds, width, height, out)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        floor = encoder_alone(out, width, height)
    print(json.dumps({"seconds": took, "peak_mb": peak_mb, "encoder": floor}))


def run_child(seconds: float, size: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(seconds), size],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _video_cuts(path: Path) -> list[float]:
    """Times (s) where the picture jumps: the cuts, found again in the rendered file."""
    import av
    import numpy as np

    previous, cuts = None, []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            small = frame.reformat(width=36, height=64, format="gray").to_ndarray().astype(float)
            if previous is not None and np.abs(small - previous).mean() > 25:
                cuts.append(float(frame.time or 0.0))
            previous = small
    return cuts


def judge_song(key: str, folder: Path) -> list[str]:
    """One row: the song rendered with its cuts, judged against the truth and librosa."""
    import librosa
    import numpy as np

    from nemo_sync.local import (
        LocalRenderBackend,
        make_sample_media,
    )
    from nemo_sync.local._audio import decode
    from tests.songs import SONGS

    song = SONGS[key]()
    music = song.write(folder / f"{key}.wav")
    total_ms = int(song.seconds * 1000)
    samples = make_sample_media(folder / "media", seconds=2.0)
    found, plan = cut_to_the_beat(samples.clips, music, total_ms)
    draft = {
        "d": total_ms,
        "t": [
            {"tt": 0, "sg": plan.video_segments},
            {"tt": 1, "sg": [{"mid": "music", "st": 0, "d": total_ms, "v": 1.0}]},
        ],
    }
    media = {p.stem: p for p in samples.clips} | {"music": music}
    out = folder / f"{key}.mp4"
    LocalRenderBackend().render(draft, media, out, width=360, height=640, on_progress=lambda _: 0)
    cuts = np.array(_video_cuts(out))
    truth = np.array(song.beats)
    offsets = np.array([np.min(np.abs(truth - c)) for c in cuts])
    # The frame difference sees a cut on the first frame of the new shot: up to a frame late.
    on_beat = float(np.mean(offsets <= FRAME_S + 1e-6)) if cuts.size else 0.0
    # The rendered file's sound, decoded by PyAV (librosa's own loaders cannot read MP4).
    sound = decode(out, rate=22050, channels=1)[0]
    tempo, beats = librosa.beat.beat_track(y=sound, sr=22050, hop_length=128, units="time")
    theirs = float(np.atleast_1d(tempo)[0])
    by_librosa = (
        float(np.mean([np.min(np.abs(beats - c)) <= FRAME_S + 0.01 for c in cuts]))
        if cuts.size and beats.size
        else 0.0
    )
    intro = [c for c in cuts for a, b in song.beatless if a <= c < b]
    drops_cut = sum(bool(cuts.size) and np.min(np.abs(cuts - d)) <= FRAME_S for d in song.drops)
    slow, fast = song.bpm
    true_bpm = f"{slow:g}" if slow == fast else f"{slow:g}-{fast:g}"
    low, high = found.bpm_range
    ours = f"{found.bpm:.1f}" if found.steady else f"{low:.0f}-{high:.0f}"
    return [
        song.name,
        str(len(cuts)),
        f"{on_beat:.0%}",
        f"{np.median(offsets) * 1000:.0f} ms",
        f"{by_librosa:.0%}",
        true_bpm,
        ours,
        f"{theirs:.1f}",
        f"{drops_cut}/{len(song.drops)}" if song.drops else "-",
        str(len(intro)) if song.beatless else "-",
    ]


def beats_table(quick: bool) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.songs import SONGS

    keys = ["steady100"] if quick else list(SONGS)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [judge_song(key, Path(tmp)) for key in keys]
    return table(
        f"Cuts on the beat, judged on the rendered files ({machine()})",
        [
            "song",
            "cuts",
            "within one frame of a true beat",
            "median offset",
            "within one frame of a librosa beat",
            "true BPM",
            "our BPM",
            "librosa BPM",
            "drops with a cut",
            "cuts in the beatless intro",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("SECONDS", "SIZE"))
    parser.add_argument("--beats", action="store_true", help="the cut-accuracy table only")
    args = parser.parse_args(argv)
    if args.beats:
        return beats_table(args.quick)
    if args.child:
        seconds, size = args.child
        child(float(seconds), size)
        return ""
    durations = (3.0,) if args.quick else (10.0, 30.0)
    rows = []
    for size in SIZES:
        for seconds in durations:
            ours = run_child(seconds, size)
            rows.append(
                [
                    f"{size} ({SIZES[size][0]}x{SIZES[size][1]})",
                    f"{seconds:.0f} s",
                    f"{ours['seconds']:.1f} s",
                    f"{ours['seconds'] / seconds:.2f}",
                    f"{ours['encoder'] / seconds:.2f}",
                    f"{ours['seconds'] / ours['encoder']:.2f}x",
                    f"{ours['peak_mb']:.0f} MB",
                ]
            )
    speed = table(
        f"Local render ({machine()})",
        [
            "size",
            "output",
            "render time",
            "s per output s",
            "encoder alone on the same frames, s per output s",
            "vs baseline",
            "peak RSS",
        ],
        rows,
    )
    return speed + "\n" + beats_table(args.quick)


if __name__ == "__main__":
    report = main()
    if report:
        print(report)
