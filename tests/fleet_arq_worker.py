"""examples/fleet_arq.py's worker settings for the test of a retry after a crash
(tests/test_example_fleet_arq.py), run as users run it: ``python -m arq
tests.fleet_arq_worker.settings --burst``, with examples/ on PYTHONPATH and NEMO_REDIS_URL,
NEMO_API_URL and NEMO_TOKEN set.

Only the times are shorter: arq retries a killed worker's job once its in-progress key runs
out, ``job_timeout`` + 10 s after the job started; a dead worker's render lease runs out in
``LEASE_TTL``.
"""

from __future__ import annotations

from typing import Any

import fleet_arq

fleet_arq.LEASE_TTL = 2.0

# arq reads a settings class's own __dict__ only (a subclass would lose the example's
# attributes): a dict of them, with the shorter times.
settings: dict[str, Any] = {
    **{k: v for k, v in vars(fleet_arq.WorkerSettings).items() if not k.startswith("__")},
    "job_timeout": 6,
    "poll_delay": 0.1,
}
