"""One host of the fleet cooldown test (issue 22), as a separate process.

``python -m tests.fleet_cooldown_host '<json>'``; the JSON holds ``base_url``, ``token``,
``home``, ``redis_url``, ``go`` (a file whose appearance starts the calls) and ``seconds``
(how long to go on calling). Prints, one JSON object a line: ``{"ready": t}`` after a first
call, ``{"call": start, "end": end, "error": name-or-null}`` for every credits call, and at
the end ``{"redis_commands": n}``: the Redis commands this host sent besides its
subscription (every call checks the fleet's cooldown in memory, so n stays small).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from nemo_sync import NemoClient, NemoError, RedisJobStore
from tests.fleet_support import counting_commands


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def main(config: dict[str, Any]) -> None:
    store = RedisJobStore(config["redis_url"])
    sent = counting_commands(store)
    async with NemoClient(
        base_url=config["base_url"], token=config["token"], home=config["home"], job_store=store
    ) as nemo:
        await nemo.credits()
        say(ready=time.time())
        while not os.path.exists(config["go"]):
            await asyncio.sleep(0.01)
        until = time.time() + config["seconds"]
        while time.time() < until:
            started = time.time()
            error = None
            try:
                await nemo.credits()
            except NemoError as exc:
                error = type(exc).__name__
            say(call=started, end=time.time(), error=error)
            await asyncio.sleep(0.05)
    await store.aclose()
    say(redis_commands=len(sent))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
