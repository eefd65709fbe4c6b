"""One host polls a render, the others follow it through Redis (issue 22): leases, fencing,
hand-over after a SIGKILL, and a Redis that is down.

The hand-over runs as real processes sharing one emulator and one real Redis.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

import nemo_sync
from nemo_sync import NemoClient, RedisJobStore, RenderResult
from nemo_sync.emulator import Emulator
from tests.fleet_support import TOKEN, HostProcesses, fleet_emulator, new_draft
from tests.redis_server import RedisServer

TTL = 2.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with fleet_emulator(render_seconds=1.0) as emulator:
        yield emulator


def polls_of(emu: Emulator, job_id: str) -> int:
    return sum(1 for r in emu.requests if r.method == "GET" and r.path.endswith(f"/{job_id}"))


@pytest.fixture
async def two_hosts(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[NemoClient, NemoClient]]:
    """Two hosts of one fleet in this process: clients with their own home and their own
    Redis store (connection), as separate machines have."""
    stores = [RedisJobStore(redis_server.url, lease_ttl=TTL) for _ in range(2)]
    try:
        async with (
            NemoClient(
                base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=stores[0]
            ) as a,
            NemoClient(
                base_url=emu.url, token=TOKEN, home=tmp_path / "b", job_store=stores[1]
            ) as b,
        ):
            yield a, b
    finally:
        for store in stores:
            await store.aclose()


async def test_a_follower_gets_the_owners_progress_without_polling(
    emu: Emulator, two_hosts: tuple[NemoClient, NemoClient]
) -> None:
    owner, follower = two_hosts
    session, draft = await new_draft(owner)
    job = await session.export(draft)
    owned: list[RenderResult] = []
    followed: list[RenderResult] = []
    owner_wait = asyncio.create_task(
        owner.render_job(job.id).wait(poll_interval=0.05, on_progress=owned.append)
    )
    while polls_of(emu, job.id) == 0:  # the owner has its lease
        await asyncio.sleep(0.01)
    follower_job = follower.render_job(job.id)
    follower_polls: list[float] = []
    poll = follower_job.status

    async def counted() -> RenderResult:
        follower_polls.append(time.time())
        return await poll()

    follower_job.status = counted  # type: ignore[method-assign]
    result = await follower_job.wait(poll_interval=0.05, on_progress=followed.append)
    await owner_wait
    assert result.ok
    assert follower_polls == []  # it followed the store: the owner alone polled
    assert followed[-1].status == "completed"
    assert len(followed) >= 2  # changes came as the owner saw them, not only the end
    # What the follower saw after its first look is what the owner saw, in the same order.
    owner_seen = iter([(r.status, r.progress) for r in owned])
    assert all(look in owner_seen for look in [(r.status, r.progress) for r in followed[1:]])


async def test_a_host_that_lost_its_lease_cannot_write(redis_server: RedisServer) -> None:
    store = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        await store.put(nemo_sync.JobRecord(id="render_1", session_id="s1", status="processing"))
        first = await store.take_lease("render_1")
        assert first is not None
        assert await store.take_lease("render_1") is None  # held
        # The first owner paused past its TTL: the lease lapsed and another host took it.
        await store.redis.delete("nemo:lease:render_1")
        second = await store.take_lease("render_1")
        assert second is not None
        assert not await store.fenced_update("render_1", first, status="failed")
        assert not await store.renew_lease("render_1", first)
        record = await store.get("render_1")
        assert record is not None
        assert record.status == "processing"  # the late write was refused
        assert await store.fenced_update("render_1", second, status="completed", progress=100.0)
        record = await store.get("render_1")
        assert record is not None
        assert record.status == "completed"
    finally:
        await store.aclose()


async def test_a_progress_write_is_one_script_and_a_finish_prunes(
    redis_server: RedisServer,
) -> None:
    """The owner writes at each change it sees: a progress write runs the fenced script
    only (the pruning script runs when a job finishes, as update() does), so the fleet's
    Redis commands per poll stay few (benchmarks/bench_fleet.py measures them)."""
    store = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        for n in range(201):
            record = nemo_sync.JobRecord(id=f"render_{n}", session_id="s1", status="completed")
            await store.put(attrs.evolve(record, created_at=1000.0 + n))
        await store.put(nemo_sync.JobRecord(id="render_x", session_id="s1", created_at=1.0))
        token = await store.take_lease("render_x")
        assert token is not None

        async def scripts_run() -> int:
            stats = await store.redis.info("commandstats")
            return int(stats["cmdstat_evalsha"]["calls"])

        before = await scripts_run()
        assert await store.fenced_update("render_x", token, status="processing", progress=40.0)
        assert await scripts_run() - before == 1
        assert await store.fenced_update("render_x", token, status="completed", progress=100.0)
        ids = [r.id for r in await store.list()]
        # render_x finished as the oldest of 201 finished ones: the pruning took it.
        assert ids == [f"render_{n}" for n in range(200, 0, -1)]
    finally:
        await store.aclose()


async def test_a_follower_gets_each_change_with_its_record_reading_nothing(
    redis_server: RedisServer,
) -> None:
    """Each change reaches a follower with the record it wrote: a follower sends Redis no
    command per change, so the fleet's commands per poll do not grow with its hosts."""
    owner = RedisJobStore(redis_server.url, lease_ttl=TTL)
    follower = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        await owner.put(nemo_sync.JobRecord(id="render_1", session_id="s1", status="pending"))
        token = await owner.take_lease("render_1")
        assert token is not None
        async with follower.follow("render_1") as next_change:
            assert await next_change(0.05) is None  # quiet
            assert await owner.fenced_update("render_1", token, status="processing", progress=40)
            before = await follower.redis.info("commandstats")
            changed = await next_change(5.0)
            after = await follower.redis.info("commandstats")
            assert changed is not None
            assert (changed.id, changed.status, changed.progress) == ("render_1", "processing", 40)
            # Between the two INFO calls: nothing but the first INFO itself.
            ran = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
            assert {k: n for k, n in ran.items() if n} == {"cmdstat_info": 1}
    finally:
        await owner.aclose()
        await follower.aclose()


async def test_with_redis_down_wait_polls_the_service_itself(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        async with NemoClient(
            base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
        ) as nemo:
            session, draft = await new_draft(nemo)
            job = await session.export(draft)
            redis_server.stop()
            with caplog.at_level(logging.WARNING, logger="nemo_sync"):
                result = await job.wait(poll_interval=0.05)
    finally:
        await store.aclose()
    assert result.ok
    assert polls_of(emu, job.id) >= 1
    assert any("degraded" in r.getMessage() for r in caplog.records)


async def test_a_redis_restart_mid_wait_is_survived(
    emu: Emulator, redis_server: RedisServer, two_hosts: tuple[NemoClient, NemoClient]
) -> None:
    emu.config.render_seconds = 2.0
    owner, follower = two_hosts
    session, draft = await new_draft(owner)
    job = await session.export(draft)
    waits = asyncio.gather(
        owner.render_job(job.id).wait(poll_interval=0.05),
        follower.render_job(job.id).wait(poll_interval=0.05),
    )
    while polls_of(emu, job.id) < 3:
        await asyncio.sleep(0.01)
    redis_server.restart()  # SIGKILL mid-wait; the AOF brings the records back
    results = await asyncio.wait_for(waits, 30)
    assert [r.status for r in results] == ["completed", "completed"]
    record = next(r for r in await owner.jobs() if r.id == job.id)
    assert record.status == "completed"


class Fleet(HostProcesses):
    """Host processes (tests/fleet_host.py) on one emulator and one Redis, and what each
    one said, line by line."""

    def __init__(self, emu: Emulator, redis_server: RedisServer, tmp_path: Path) -> None:
        base = {
            "mode": "wait",
            "base_url": emu.url,
            "token": TOKEN,
            "store": "redis",
            "redis_url": redis_server.url,
            "lease_ttl": TTL,
        }
        super().__init__("tests.fleet_host", base, tmp_path)


@pytest.fixture
async def fleet(emu: Emulator, redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Fleet]:
    hosts = Fleet(emu, redis_server, tmp_path)
    try:
        yield hosts
    finally:
        await hosts.close()


async def test_a_host_killed_mid_wait_is_taken_over_within_the_ttl(
    emu: Emulator, fleet: Fleet, tmp_path: Path
) -> None:
    emu.config.render_seconds = 5.0
    async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "t") as nemo:
        session, draft = await new_draft(nemo)
    a = await fleet.start("a", session_id=session.id, draft=draft)
    job_id = await fleet.until("a", "job")
    await fleet.start("b", job_id=job_id)
    await fleet.start("c", job_id=job_id)
    await fleet.until("b", "ready")
    await fleet.until("c", "ready")
    await asyncio.sleep(0.3)  # B and C are following
    assert fleet.said("a", "poll"), fleet.lines
    assert not fleet.said("a", "done"), "A must die mid-wait"
    a.send_signal(signal.SIGKILL)
    killed_at = time.time()
    await fleet.finished("b", "c")

    assert fleet.said("b", "done") == fleet.said("c", "done") == ["completed"]
    assert max(fleet.said("b", "at") + fleet.said("c", "at")) - killed_at <= TTL + 5
    # No two hosts polled in the same lease period: sorted by time, each host's polls are one
    # run (A's before its death, then one new owner's), never interleaved.
    polls, runs = fleet.poll_runs()
    assert runs[0] == "a"
    assert len(runs) == len(set(runs)) == 2, runs
    assert max(t for t, name in polls if name == "a") <= killed_at


async def test_an_owner_paused_past_its_ttl_stops_polling_when_it_wakes(
    emu: Emulator, fleet: Fleet, tmp_path: Path
) -> None:
    emu.config.render_seconds = 6.0
    async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "t") as nemo:
        session, draft = await new_draft(nemo)
    a = await fleet.start("a", session_id=session.id, draft=draft)
    job_id = await fleet.until("a", "job")
    await fleet.start("b", job_id=job_id)
    await fleet.until("b", "ready")
    await asyncio.sleep(0.3)
    a.send_signal(signal.SIGSTOP)  # a long GC pause, say
    stopped_at = time.time()
    while not fleet.said("b", "poll"):  # its lease ran out: B took over
        assert time.time() - stopped_at < TTL + 5, fleet.lines
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    a.send_signal(signal.SIGCONT)
    await fleet.finished("a", "b")

    assert fleet.said("a", "done") == fleet.said("b", "done") == ["completed"]
    late = [t for t in fleet.said("a", "poll") if t > stopped_at]
    # Awake, A may send the one poll it had due (an idempotent GET) before it learns the
    # lease is gone (its write refused, or its renewal); then it only follows.
    assert len(late) <= 1, fleet.lines
    _, runs = fleet.poll_runs()
    assert runs[:2] == ["a", "b"], runs
