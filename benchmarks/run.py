"""Run every benchmark and print their tables (Markdown, ready for docs/performance.md).

    python benchmarks/run.py            # full runs (minutes; 500 MB uploads, 60 s waits)
    python benchmarks/run.py --quick    # small sizes, a few seconds each
    python benchmarks/run.py --only sse --only upload

Each benchmark is a plain script, ``bench_<name>.py``, run in its own process so that one's
memory use cannot skew another's RSS numbers. Every result is a ratio against a baseline
measured in the same run on the same local server, so shared-machine noise mostly cancels.
CI runs ``--quick --smoke`` only to check that they all start and finish.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    parser.add_argument("--smoke", action="store_true", help="only check each one runs (CI)")
    parser.add_argument("--only", action="append", default=[], help="run bench_<NAME>.py only")
    args = parser.parse_args(argv)
    chosen = [p for p in benchmarks() if not args.only or p.stem[len("bench_") :] in args.only]
    failed = []
    for path in chosen:
        started = time.perf_counter()
        cmd = [sys.executable, str(path)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            failed.append(path.name)
            print(f"## {path.name}: FAILED (exit {proc.returncode}, {took:.1f} s)\n")
            print(proc.stderr[-3000:])
            continue
        if args.smoke:
            print(f"{path.name}: ok ({took:.1f} s)")
        else:
            print(proc.stdout)
    if failed:
        print(f"{len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
