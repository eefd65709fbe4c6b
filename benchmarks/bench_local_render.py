"""Local render: seconds per output second at 720p and 1080p, and peak memory vs duration.

Target: 30 s of 1080p output in <= 30 s on 2 cores (faster than real time), memory flat with
duration. Each render is a beat-cut edit of the sample media (clips, music, a title) through
``LocalRenderBackend``, in its own process so peak RSS is its own. The baseline, in the same
process right after, is the encoder alone on the same frames: the rendered file is decoded
and its frames encoded again by libx264 with the same settings; a decode-only pass of the
same file is timed too and subtracted, leaving the encoder's time (no clip decoding,
cropping, scaling, titles or audio): the floor for any renderer here.

    python benchmarks/bench_local_render.py            # 10 s and 30 s at 720p and 1080p
    python benchmarks/bench_local_render.py --quick    # 3 s at 720p and 1080p
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def render_edit(seconds: float, width: int, height: int, out: Path) -> float:
    """Render the sample edit to ``out``; returns wall seconds of the render alone."""
    from nemo_sync.local import (
        Clip,
        LocalRenderBackend,
        analyze_beats,
        make_sample_media,
        plan_beat_cuts,
        probe,
    )

    total_ms = int(seconds * 1000)
    samples = make_sample_media(out.parent / "media", seconds=seconds)
    beats = analyze_beats(samples.music)
    clips = [Clip(p.stem, p.name, probe(p).duration_ms) for p in samples.clips]
    plan = plan_beat_cuts(
        clips,
        beats_ms=beats.beats_ms,
        downbeats_ms=beats.downbeats_ms,
        drops_ms=beats.drops_ms,
        total_ms=total_ms,
    )
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
    from nemo_sync.local._render import FPS

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


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("SECONDS", "SIZE"))
    args = parser.parse_args(argv)
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
    return table(
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


if __name__ == "__main__":
    report = main()
    if report:
        print(report)
