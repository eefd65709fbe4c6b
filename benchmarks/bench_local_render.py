"""Local render: seconds per output second at 720p and 1080p, and peak memory vs duration.

Target: 30 s of 1080p output in <= 30 s on 2 cores (faster than real time), memory flat with
duration. Each render is a beat-cut edit of the sample media (clips, music, a title) through
``LocalRenderBackend``, in its own process so peak RSS is its own. The baseline, in the same
run, is the encoder alone: libx264 with the same preset encoding the same number of
ready-made frames (no decoding, scaling, titles or audio), the floor for any renderer here.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def render_edit(seconds: float, width: int, height: int) -> float:
    """Render the sample edit; returns wall seconds of the render alone."""
    from nemo_sync.local import (
        Clip,
        LocalRenderBackend,
        analyze_beats,
        make_sample_media,
        plan_beat_cuts,
        probe,
    )

    total_ms = int(seconds * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_sample_media(Path(tmp), seconds=seconds)
        beats = analyze_beats(samples.music)
        clips = [Clip(p.stem, p.name, probe(p).duration_ms) for p in samples.clips]
        plan = plan_beat_cuts(
            clips, beats_ms=beats.beats_ms, downbeats_ms=beats.downbeats_ms, total_ms=total_ms
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
            draft,
            media,
            Path(tmp) / "out.mp4",
            width=width,
            height=height,
            on_progress=lambda _: None,
        )
        return time.perf_counter() - started


def encode_only(seconds: float, width: int, height: int) -> float:
    """The baseline: libx264 (same preset and CRF) on ready-made moving frames, no audio."""
    import av
    import numpy as np

    from nemo_sync.local._render import FPS

    backend_defaults = {"preset": "veryfast", "crf": "23"}
    frames = int(seconds * FPS)
    # Smooth gradients, like footage; noise would make the encoder (the floor) unfairly slow.
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xs * 255 // width, ys * 255 // height, (xs + ys) * 127 // (width + height)], axis=-1
    ).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with av.open(str(Path(tmp) / "out.mp4"), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = backend_defaults
            stream.thread_type = "AUTO"
            for i in range(frames):
                picture = np.roll(base, i * 4, axis=1)  # moving content, as in a real edit
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return time.perf_counter() - started


def child(kind: str, seconds: float, size: str) -> None:
    width, height = SIZES[size]
    took = (render_edit if kind == "render" else encode_only)(seconds, width, height)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": took, "peak_mb": peak_mb}))


def run_child(kind: str, seconds: float, size: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(seconds), size],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SECONDS", "SIZE"))
    args = parser.parse_args(argv)
    if args.child:
        kind, seconds, size = args.child
        child(kind, float(seconds), size)
        return ""
    durations = (3.0,) if args.quick else (10.0, 30.0)
    rows = []
    for size in SIZES:
        for seconds in durations:
            ours = run_child("render", seconds, size)
            floor = run_child("encode", seconds, size)
            rows.append(
                [
                    f"{size} ({SIZES[size][0]}x{SIZES[size][1]})",
                    f"{seconds:.0f} s",
                    f"{ours['seconds']:.1f} s",
                    f"{ours['seconds'] / seconds:.2f}",
                    f"{floor['seconds'] / seconds:.2f}",
                    f"{ours['seconds'] / floor['seconds']:.2f}x",
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
            "encoder alone (baseline), s per output s",
            "vs baseline",
            "peak RSS",
        ],
        rows,
    )


if __name__ == "__main__":
    report = main()
    if report:
        print(report)
