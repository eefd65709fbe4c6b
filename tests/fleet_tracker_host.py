"""A host or a tracker of a fleet, as a separate process, for the tracker tests (issue 22).

``python -m tests.fleet_tracker_host '<json>'``; the JSON holds ``mode``, ``base_url``,
``token``, ``home``, ``redis_url``, ``lease_ttl`` and, by mode:

- ``start``: ``session_id``, ``draft``; exports, prints ``{"job": id}`` and then idles
  without ever waiting (the test SIGKILLs it: a host that died before anyone waited);
- ``track``: ``scan_interval``; runs ``nemo.tracker()`` and prints ``{"ready": t}`` once it
  scans, ``{"poll": t, "job": id}`` at each of its polls and ``{"finished": n}`` each time
  its count of finished jobs grows.

One JSON object a line, flushed at once: a process killed midway has said what it did.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from nemo_sync import NemoClient, RedisJobStore, RenderJob, RenderResult


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def count_polls() -> None:
    """Every poll this process sends is said, with its job (the emulator cannot tell the
    processes apart)."""
    original = RenderJob.status

    async def status(self: RenderJob) -> RenderResult:
        say(poll=time.time(), job=self.id)
        return await original(self)

    RenderJob.status = status  # type: ignore[method-assign]


async def main(config: dict[str, Any]) -> None:
    store = RedisJobStore(config["redis_url"], lease_ttl=config["lease_ttl"])
    try:
        async with NemoClient(
            base_url=config["base_url"], token=config["token"], home=config["home"],
            job_store=store,
        ) as nemo:  # fmt: skip
            if config["mode"] == "start":
                job = await nemo.session(config["session_id"]).export(config["draft"])
                say(job=job.id)
                await asyncio.Event().wait()  # never waits for the job
            count_polls()
            tracker = nemo.tracker(scan_interval=config["scan_interval"], poll_interval=0.25)
            async with tracker:
                say(ready=time.time())
                finished = 0
                while True:
                    await asyncio.sleep(0.05)
                    if tracker.finished != finished:
                        finished = tracker.finished
                        say(finished=finished, at=time.time())
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
