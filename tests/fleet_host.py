"""One host of a fleet, as a separate process, for the fleet tests (issue 22).

``python -m tests.fleet_host '<json>'``; the JSON holds ``mode``, ``base_url``, ``token``,
``home``, ``store`` (``redis`` or ``file``), ``redis_url`` and, by mode:

- ``export``: ``session_id``, ``draft``, ``key`` (an idempotency key), ``go`` (a file whose
  appearance starts the export, so every host starts at once); prints the job id it got,
  or the error's type and message;
- ``wait``: ``job_id`` (or ``session_id`` and ``draft`` to export first), ``lease_ttl``;
  prints ``{"job": id}`` once it has one, ``{"ready": t}`` just before waiting,
  ``{"poll": t}`` at each of its polls of the render, and ``{"done": status, "at": t}``.

One JSON object a line, flushed at once: a host killed mid-wait has said what it did.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from nemo_sync import JobStore, NemoClient, NemoError, RedisJobStore, RenderJob, RenderResult
from nemo_sync._jobstore import FileJobStore


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def count_polls() -> None:
    """Every poll this host sends is said (the emulator cannot tell the hosts apart)."""
    original = RenderJob.status

    async def status(self: RenderJob) -> RenderResult:
        say(poll=time.time())
        return await original(self)

    RenderJob.status = status  # type: ignore[method-assign]


async def main(config: dict[str, Any]) -> None:
    store: JobStore
    if config["store"] == "redis":
        store = RedisJobStore(config["redis_url"], lease_ttl=config.get("lease_ttl", 30.0))
    else:
        store = FileJobStore(Path(config["home"]))
    async with NemoClient(
        base_url=config["base_url"], token=config["token"], home=config["home"], job_store=store
    ) as nemo:
        if config["mode"] == "export":
            session = nemo.session(config["session_id"])
            go = Path(config["go"])
            while not go.exists():  # every host is ready before any exports
                await asyncio.sleep(0.01)
            try:
                job = await session.export(config["draft"], idempotency_key=config["key"])
            except NemoError as exc:
                say(error=type(exc).__name__, message=str(exc))
            else:
                say(id=job.id, at=time.time())
        else:
            count_polls()
            if config.get("job_id"):
                job = nemo.render_job(config["job_id"])
            else:
                job = await nemo.session(config["session_id"]).export(config["draft"])
            say(job=job.id)
            say(ready=time.time())
            result = await job.wait(poll_interval=0.25, timeout=60)
            say(done=result.status, at=time.time())
    if isinstance(store, RedisJobStore):
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
