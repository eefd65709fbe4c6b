"""Drafts: summary(), diff() and the SVG picture on large and hostile timelines.

Every draft has N uniquely named segments on one track (the case that was quadratic: 40k
segments took 9 s to summarise). The baseline is ``json.loads`` of the same draft's JSON,
measured in the same run: a ratio that stays flat as N grows means the operation is linear.
The second table is the picture of drafts a hostile server could send.

    python benchmarks/bench_draft.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

from nemo_sync.draft import Draft


def wire(count: int, volume: float = 0.35, *, track_type: int = 1) -> dict[str, Any]:
    segments = [
        {"id": f"s{i}", "n": f"clip {i}", "st": i * 1000, "d": 1000, "v": volume}
        for i in range(count)
    ]
    return {"t": [{"id": "t1", "tt": track_type, "sg": segments}], "m": {"beats": [0, 500]}}


def best(fn: Callable[[], object], rounds: int = 3) -> tuple[float, object]:
    """The fastest of ``rounds`` runs, and what the last one returned."""
    fastest, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, result


def scaling_rows(sizes: list[int]) -> list[list[str]]:
    rows = []
    for count in sizes:
        text = json.dumps(wire(count))
        base, _ = best(lambda: json.loads(text))  # noqa: B023 (called before the loop moves on)
        draft = Draft.from_wire(wire(count))
        louder = Draft.from_wire(wire(count, volume=0.5))
        empty = Draft()
        took = {
            "from_wire": best(lambda: Draft.from_wire(json.loads(text)))[0] - base,  # noqa: B023
            "summary()": best(draft.summary)[0],
            "diff(), every volume": best(lambda: draft.diff(louder))[0],  # noqa: B023
            "diff(), track added": best(lambda: empty.diff(draft))[0],  # noqa: B023
            "_repr_html_()": best(draft._repr_html_)[0],
        }
        _, changes = best(lambda: draft.diff(louder), rounds=1)  # noqa: B023
        assert isinstance(changes, list)
        assert len(changes) == count, "diff lost changes"
        for name, seconds in took.items():
            rows.append(
                [
                    f"{count:,}",
                    name,
                    f"{seconds * 1000:,.1f} ms",
                    f"{seconds / count * 1e6:.2f} us",
                    f"{base * 1000:,.1f} ms",
                    f"{seconds / base:.2f}x",
                ]
            )
    return rows


def picture_rows() -> list[list[str]]:
    many = wire(40_000, track_type=0)
    cases: list[tuple[str, dict[str, Any]]] = [
        ('{"d": 10**12}', {"d": 10**12}),
        ('{"d": 10**15}', {"d": 10**15}),
        ('{"d": 10**400}', {"d": 10**400}),
        ("40k segments", many),
        ("500 tracks", {"t": [{"tt": 1, "sg": many["t"][0]["sg"][:10]}] * 500}),
        ("1 MB names with NUL/ESC", {"t": [{"tt": 0, "sg": [{"n": "\x00\x1b" * 500_000}]}]}),
    ]
    rows = []
    for name, data in cases:
        draft = Draft.from_wire(data)
        seconds, svg = best(draft._repr_html_)
        assert isinstance(svg, str)
        rows.append([name, f"{seconds * 1000:,.2f} ms", f"{len(svg):,} bytes"])
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = [1_000, 4_000] if args.quick else [1_000, 10_000, 40_000]
    scaling = table(
        f"Drafts with N uniquely named segments ({machine()})",
        ["segments", "operation", "time", "per segment", "json.loads (baseline)", "ratio"],
        scaling_rows(sizes),
    )
    picture = table(
        "The picture of hostile drafts (`Draft._repr_html_`)",
        ["draft", "time", "SVG size"],
        picture_rows(),
    )
    return scaling + "\n" + picture


if __name__ == "__main__":
    print(main())
