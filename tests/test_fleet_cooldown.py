"""One 429 cooldown per fleet (issue 22): a 429 on one host makes every host wait it out.

Hosts here are clients sharing one emulator and one real Redis: in this process for the
unit tests (their waits recorded, not slept), separate processes for the acceptance test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from nemo_sync import NemoClient, RateLimitError, RedisJobStore
from nemo_sync._contract import CREDITS_PATH
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._recorder import RecordedRequest
from tests.fleet_support import ROOT, TOKEN, counting_commands
from tests.redis_server import RedisServer

CREDITS = f"GET {CREDITS_PATH}"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        emulator.add_token(TOKEN)
        yield emulator


def credits_sent(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path == CREDITS_PATH)


async def host(
    emu: Emulator, url: str, tmp_path: Path, name: str, **options: Any
) -> tuple[NemoClient, RedisJobStore]:
    store = RedisJobStore(url)
    client = NemoClient(
        base_url=emu.url, token=TOKEN, home=tmp_path / name, job_store=store, **options
    )
    await client.credits()  # its first call starts its listener
    return client, store


async def until(condition: Callable[[], object]) -> None:
    """Wait (5 s at most) for a pub/sub message to reach another host."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the fleet's cooldown never arrived")


@pytest.fixture
async def fleet(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[list[NemoClient]]:
    made = [await host(emu, redis_server.url, tmp_path, name) for name in ("a", "b")]
    # Both listen before the test starts (the first host's own subscription included).
    await asyncio.sleep(0.2)
    yield [client for client, _ in made]
    for client, store in made:
        await client.aclose()
        await store.aclose()


async def test_a_long_429_on_one_host_fails_the_others_calls_at_once_in_words(
    emu: Emulator, fleet: list[NemoClient]
) -> None:
    a, b = fleet
    emu.faults.add(CREDITS, status=429, retry_after=120)
    with pytest.raises(RateLimitError):
        await a.credits()
    await until(lambda: b._transport.cooldown.not_before)
    sent = credits_sent(emu)
    with pytest.raises(RateLimitError) as caught:
        await b.credits()
    assert "2 minutes" in str(caught.value)
    assert credits_sent(emu) == sent  # nothing was sent to be refused again


async def test_another_host_waits_out_the_cooldown_then_calls(
    emu: Emulator, fleet: list[NemoClient], waits: list[float]
) -> None:
    a, b = fleet
    emu.faults.add(CREDITS, status=429, retry_after=5)
    await a.credits()  # waited 5 s (recorded), then retried
    assert waits == [5.0]
    await until(lambda: b._transport.cooldown.not_before)
    await b.credits()
    assert len(waits) == 2
    assert 4.0 < waits[1] <= 5.0  # what was left of the 5 s when b called


async def test_a_host_that_starts_during_a_cooldown_waits_before_its_first_call(
    emu: Emulator,
    redis_server: RedisServer,
    fleet: list[NemoClient],
    waits: list[float],
    tmp_path: Path,
) -> None:
    """A host that joins mid-cooldown: its very first call waits for its listener to read
    the cooldown in force (a round trip, bounded), then waits that out, before sending."""
    a, _ = fleet
    emu.faults.add(CREDITS, status=429, retry_after=5)
    await a.credits()  # waited 5 s (recorded), then retried
    kept = redis.Redis.from_url(redis_server.url)
    try:
        for _ in range(500):  # the deadline is recorded in the background
            if kept.get("nemo:cooldown"):
                break
            await asyncio.sleep(0.01)
    finally:
        kept.close()
    store = RedisJobStore(redis_server.url)
    late = NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "late", job_store=store)
    try:
        await late.credits()  # its first call
    finally:
        await late.aclose()
        await store.aclose()
    assert len(waits) == 2, waits
    assert 4.0 < waits[1] <= 5.0  # what was left of the fleet's 5 s


async def test_a_call_whose_timeout_ends_before_the_cooldown_fails_at_once(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    a, a_store = await host(emu, redis_server.url, tmp_path, "a")
    b, b_store = await host(emu, redis_server.url, tmp_path, "b", timeout=2.0)
    try:
        await asyncio.sleep(0.2)
        emu.faults.add(CREDITS, status=429, retry_after=30)
        await a.credits()
        await until(lambda: b._transport.cooldown.not_before)
        sent = credits_sent(emu)
        with pytest.raises(RateLimitError, match="timeout ends before"):
            await b.credits()
        assert credits_sent(emu) == sent
    finally:
        for client, store in ((a, a_store), (b, b_store)):
            await client.aclose()
            await store.aclose()


async def test_the_longer_of_two_cooldowns_is_kept(
    emu: Emulator, fleet: list[NemoClient], redis_server: RedisServer
) -> None:
    a, b = fleet
    emu.faults.add(CREDITS, status=429, retry_after=120)
    with pytest.raises(RateLimitError):
        await a.credits()
    await until(lambda: b._transport.cooldown.not_before)
    b._transport.cooldown.not_before = 0.0  # b has not heard: it meets a shorter 429 itself
    emu.faults.add(CREDITS, status=429, retry_after=2)
    await b.credits()
    await asyncio.sleep(0.2)
    kept = redis.Redis.from_url(redis_server.url)
    try:
        assert float(kept.get("nemo:cooldown")) == a._transport.cooldown.not_before
        assert 110_000 < kept.pttl("nemo:cooldown") <= 120_000
    finally:
        kept.close()


async def test_calls_make_no_redis_round_trip(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    store = RedisJobStore(redis_server.url)
    sent = counting_commands(store)
    async with NemoClient(
        base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
    ) as nemo:
        for _ in range(30):
            await nemo.credits()
        await asyncio.sleep(0.2)
    await store.aclose()
    # The one read of the cooldown in force when the host starts listening; none per call.
    assert [args[0] for args in sent] == ["GET"]


async def test_redis_down_each_host_obeys_its_own_429_and_says_so_once(
    emu: Emulator, tmp_path: Path, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisJobStore(f"unix://{tmp_path}/no-redis.sock")
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(
        base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
    ) as nemo:
        for _ in range(2):
            emu.faults.add(CREDITS, status=429, retry_after=3)
            await nemo.credits()
        await asyncio.sleep(0.1)
    await store.aclose()
    # Each 429 waited for, then its call retried (between them, the second call waited out
    # what was left of the first: here waits are recorded, not slept).
    assert waits[0] == waits[-1] == 3.0
    said = [r.getMessage() for r in caplog.records if "cooldown" in r.getMessage()]
    assert len(said) == 1, said
    assert "this host obeys its own 429s" in said[0]


# -- three processes ---------------------------------------------------------------------------


def stamped(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, RecordedRequest]]:
    """The emulator's request log with the time each request arrived."""
    seen: list[tuple[float, RecordedRequest]] = []
    append = emu.requests.append

    def record(item: RecordedRequest) -> None:
        seen.append((time.time(), item))
        append(item)

    monkeypatch.setattr(emu.requests, "append", record)
    return seen


async def test_a_429_seen_by_one_of_three_hosts_is_waited_out_by_all(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = tmp_path / "go"
    config = {
        "base_url": emu.url,
        "token": TOKEN,
        "home": str(tmp_path / "home"),
        "redis_url": redis_server.url,
        "go": str(go),
        "seconds": 5.0,
    }
    hosts = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fleet_cooldown_host",
            json.dumps(config),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for process in hosts:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert "ready" in json.loads(line), line
    await asyncio.sleep(0.3)  # every host listens to the fleet
    log = stamped(emu, monkeypatch)
    emu.faults.add(CREDITS, status=429, retry_after=3)
    go.touch()
    outputs = await asyncio.gather(*(h.communicate() for h in hosts))
    reports = []
    for process, (out, err) in zip(hosts, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        reports.append([json.loads(line) for line in out.splitlines()])

    limited = [at for at, r in log if r.status == 429]
    assert len(limited) == 1
    deadline = limited[0] + 3.0
    # Pub/sub reaches the others within a few ms; calls already in flight then are allowed.
    quiet = [at - limited[0] for at, _ in log if limited[0] + 0.25 < at < deadline]
    assert quiet == [], "requests sent during the fleet's cooldown"
    for calls in reports:
        made = [c for c in calls if "call" in c]
        assert all(c["error"] is None for c in made), made
        assert any(c["call"] >= deadline for c in made)  # every host went on afterwards
        # Each host had a call that waited the cooldown out (the 429's host: its retry).
        assert any(c["call"] < deadline - 1.0 and c["end"] >= deadline for c in made), made
        commands = next(c["redis_commands"] for c in calls if "redis_commands" in c)
        assert len(made) > 20
        assert commands <= 4, commands  # the start-up read, the 429's record: not per call
