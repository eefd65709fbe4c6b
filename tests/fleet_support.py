"""Helpers of the fleet tests (issue 22)."""

from __future__ import annotations

import time

import redis
import redis.exceptions

from tests.redis_server import RedisServer


def answering(server: RedisServer) -> RedisServer:
    """Wait until a just-started redis-server answers: its socket file appears a moment
    before it accepts connections, longer on a loaded machine."""
    client = redis.Redis.from_url(server.url)
    try:
        for _ in range(400):
            try:
                client.ping()
                return server
            except redis.exceptions.ConnectionError:
                time.sleep(0.025)
        raise AssertionError("redis-server does not answer")
    finally:
        client.close()
