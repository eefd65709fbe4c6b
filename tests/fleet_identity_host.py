"""One cold host of the fleet identity tests (issue 22), as a separate process.

``python -m tests.fleet_identity_host '<json>'``; the JSON holds ``base_url``, ``home`` (this
host's own NEMO_HOME: no credentials file is shared), ``redis_url``, ``start`` (a file whose
appearance starts the first call, so every host starts at once) and optionally ``go`` (a
file whose appearance starts a second call). No token is given: the host is anonymous.
Prints ``{"ready": true}`` before waiting for ``start``, then ``{"user": id}`` (the
anonymous account's id) after its first call, and again after the second one when ``go``
is given; an error as ``{"error": type, "message": text}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from nemo_sync import NemoClient, NemoError, RedisJobStore


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def main(config: dict[str, Any]) -> None:
    store = RedisJobStore(config["redis_url"])
    async with NemoClient(
        base_url=config["base_url"], home=config["home"], job_store=store
    ) as nemo:
        say(ready=True)
        while not os.path.exists(config["start"]):
            await asyncio.sleep(0.01)
        try:
            await nemo.credits()
            say(user=nemo._auth.user_id)
            if config.get("go"):
                while not os.path.exists(config["go"]):
                    await asyncio.sleep(0.01)
                await nemo.credits()
                say(user=nemo._auth.user_id)
        except NemoError as exc:
            say(error=type(exc).__name__, message=str(exc))
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
