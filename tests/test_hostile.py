"""Hostile servers: each row of issue 14's table that concerns sizes, as a measured outcome.

Every scenario runs in its own process (``tests/hostile_run.py``), so the peak memory growth
it reports belongs to the SDK call alone. The bounds are generous against the 32 MB JSON cap
and the 16 MB event-stream cap, and far below what an uncapped read takes (the same servers
cost 300 MB to 1.5 GB before the caps).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak memory is read from /proc"
)


def run(name: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile_run", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("sse_line_without_end", "a line over 16777216 bytes"),
        ("sse_data_never_dispatched", "an event over 16777216 bytes"),
    ],
)
def test_an_endless_event_stream_line_is_capped(name: str, words: str) -> None:
    outcome = run(name)
    assert outcome["error"] == "ResponseTooLargeError", outcome
    assert words in outcome["message"]
    assert outcome["rss_growth_mb"] < 120, outcome  # was +1030 MB / +551 MB


@pytest.mark.slow
def test_a_flood_of_small_events_keeps_memory_flat() -> None:
    outcome = run("sse_many_heartbeats")
    assert outcome["error"] is None, outcome
    assert outcome["rss_growth_mb"] < 120, outcome  # was +774 MB (280,064 events kept)


@pytest.mark.slow
def test_an_endless_partial_reply_is_capped() -> None:
    outcome = run("sse_endless_partial_text")
    assert outcome["error"] == "ResponseTooLargeError", outcome
    assert "reply passed" in outcome["message"]
    assert outcome["rss_growth_mb"] < 250, outcome


@pytest.mark.slow
@pytest.mark.parametrize("name", ["credits_huge_json", "poll_huge_json"])
def test_a_huge_json_reply_is_refused_without_reading_it(name: str) -> None:
    outcome = run(name)
    assert outcome["error"] == "ResponseTooLargeError", outcome
    assert "32 MB cap" in outcome["message"]
    assert outcome["rss_growth_mb"] < 150, outcome  # was +1500 MB / +1596 MB


@pytest.mark.slow
def test_a_huge_error_page_is_read_only_in_part() -> None:
    outcome = run("bad_gateway_huge_page")
    assert outcome["error"] == "ServerError", outcome
    assert outcome["rss_growth_mb"] < 60, outcome  # was +301 MB
