"""The fleet tests' Redis is real: it answers, persists with AOF and survives a crash."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.redis_server import RedisServer


async def test_a_real_redis_keeps_its_data_across_a_crash(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await client.set("nemo:test", "kept")
        assert await client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        await client.aclose()
    redis_server.restart()  # SIGKILL, then a new process on the same folder
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.get("nemo:test") == b"kept"  # the AOF replayed it
    finally:
        await client.aclose()
