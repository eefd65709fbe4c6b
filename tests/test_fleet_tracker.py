"""The tracker finishes render jobs nobody is waiting for (issue 22, adoption).

The hand-overs run as real processes (tests/fleet_tracker_host.py) sharing one emulator and
one real Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import nemo_sync
from nemo_sync import NemoClient, RedisJobStore
from nemo_sync.emulator import Emulator
from tests.fleet_support import ROOT, TOKEN, HostProcesses, fleet_emulator, new_draft
from tests.redis_server import RedisServer

TTL = 2.0
SCAN = 1.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with fleet_emulator(render_seconds=1.0) as emulator:
        yield emulator


class Processes(HostProcesses):
    """Hosts and trackers (tests/fleet_tracker_host.py), and what each one said."""

    def __init__(self, emu: Emulator, redis_server: RedisServer, tmp_path: Path) -> None:
        base = {
            "base_url": emu.url,
            "token": TOKEN,
            "redis_url": redis_server.url,
            "lease_ttl": TTL,
            "scan_interval": SCAN,
        }
        super().__init__("tests.fleet_tracker_host", base, tmp_path, keep_stderr=False)


@pytest.fixture
async def procs(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Processes]:
    started = Processes(emu, redis_server, tmp_path)
    try:
        yield started
    finally:
        await started.close()


async def started_and_killed(emu: Emulator, procs: Processes, tmp_path: Path) -> tuple[str, float]:
    """A host exports a render and is SIGKILLed before anyone waits for it."""
    async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "t") as nemo:
        session, draft = await new_draft(nemo)
    await procs.start("host", mode="start", session_id=session.id, draft=draft)
    job_id = await procs.until("host", "job")
    return job_id, procs.kill("host")


async def fleet_view(redis_url: str, emu: Emulator, home: Path, job_id: str) -> str | None:
    """The job's status as another host's ``nemo.jobs()`` lists it."""
    store = RedisJobStore(redis_url, lease_ttl=TTL)
    try:
        async with NemoClient(base_url=emu.url, token=TOKEN, home=home, job_store=store) as nemo:
            found = [r.status for r in await nemo.jobs() if r.id == job_id]
    finally:
        await store.aclose()
    return found[0] if found else None


async def test_a_tracker_finishes_a_job_whose_host_died_before_anyone_waited(
    emu: Emulator, procs: Processes, redis_server: RedisServer, tmp_path: Path
) -> None:
    emu.config.render_seconds = 3.0
    job_id, killed_at = await started_and_killed(emu, procs, tmp_path)
    assert await fleet_view(redis_server.url, emu, tmp_path / "other", job_id) != "completed"
    await procs.start("tracker", mode="track")
    await procs.until("tracker", "finished", within=TTL + SCAN + 10)
    # Adopted within TTL + the scan interval (+5 s of slack), and then finished.
    first_poll = procs.polls(job_id)[0][0]
    assert first_poll - killed_at <= TTL + SCAN + 5
    assert await fleet_view(redis_server.url, emu, tmp_path / "other", job_id) == "completed"


async def test_a_tracker_killed_mid_adoption_is_replaced_by_another(
    emu: Emulator, procs: Processes, redis_server: RedisServer, tmp_path: Path
) -> None:
    emu.config.render_seconds = 8.0
    job_id, _ = await started_and_killed(emu, procs, tmp_path)
    await procs.start("t1", mode="track")
    while not procs.polls(job_id):  # t1 adopted it
        await asyncio.sleep(0.02)
    await procs.start("t2", mode="track")
    await procs.until("t2", "ready")
    await asyncio.sleep(SCAN + 0.5)  # t2 has scanned, and left the job to t1
    assert {name for _, name in procs.polls(job_id)} == {"t1"}
    killed_at = procs.kill("t1")
    store = RedisJobStore(redis_server.url)
    try:
        lease_left = await store.redis.pttl(f"nemo:lease:{job_id}") / 1000  # t1's, now orphaned
    finally:
        await store.aclose()
    assert lease_left > 0
    await procs.until("t2", "finished", within=TTL + SCAN + 15)
    polls = procs.polls(job_id)
    t2_polls = [t for t, name in polls if name == "t2"]
    assert t2_polls[0] - killed_at <= TTL + SCAN + 5
    # Never two trackers polling in one lease period: t1's polls all came before its death,
    # and t2's first came once t1's lease had expired.
    assert max(t for t, name in polls if name == "t1") <= killed_at
    assert t2_polls[0] >= killed_at + lease_left - 0.05
    runs = [name for i, (_, name) in enumerate(polls) if i == 0 or polls[i - 1][1] != name]
    assert runs == ["t1", "t2"]
    assert await fleet_view(redis_server.url, emu, tmp_path / "other", job_id) == "completed"


async def test_a_tracker_survives_a_redis_restart_and_says_so_once(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        async with NemoClient(
            base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
        ) as nemo:
            session, draft = await new_draft(nemo)
            redis_server.stop()
            with caplog.at_level(logging.WARNING, logger="nemo_sync"):
                tracker = nemo.tracker(scan_interval=0.05, poll_interval=0.05)
                async with tracker:
                    await asyncio.sleep(0.5)  # about ten scans with Redis down
                    redis_server.start()
                    job = await session.export(draft)  # a job nobody waits for
                    while tracker.finished == 0:
                        await asyncio.sleep(0.05)
            record = await store.get(job.id)
    finally:
        await store.aclose()
    assert record is not None
    assert record.status == "completed"
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_with_the_file_store_a_tracker_finishes_this_machines_jobs(
    emu: Emulator, tmp_path: Path
) -> None:
    async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path) as nemo:
        session, draft = await new_draft(nemo)
        job = await session.export(draft)
        async with nemo.tracker(scan_interval=0.05, poll_interval=0.05) as tracker:
            while tracker.finished == 0:
                await asyncio.sleep(0.05)
        assert [r.status for r in await nemo.jobs() if r.id == job.id] == ["completed"]


async def test_bad_tracker_settings_are_refused(tmp_path: Path) -> None:
    async with NemoClient(token=TOKEN, home=tmp_path) as nemo:
        with pytest.raises(nemo_sync.ConfigurationError, match="scan_interval"):
            nemo.tracker(scan_interval=0)
        with pytest.raises(nemo_sync.ConfigurationError, match="max_jobs"):
            nemo.tracker(max_jobs=0)


async def test_cli_jobs_track_adopts_and_ends_cleanly_on_ctrl_c(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    store = RedisJobStore(redis_server.url, lease_ttl=TTL)
    try:
        async with NemoClient(
            base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
        ) as nemo:
            session, draft = await new_draft(nemo)
            job = await session.export(draft)  # nobody waits for it
            env = {
                **os.environ,
                "NEMO_HOME": str(tmp_path / "cli"),
                "NEMO_TOKEN": TOKEN,
                "NEMO_REDIS_URL": redis_server.url,  # the CLI's Redis, without --redis
            }
            tracker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "nemo_sync",
                "--base-url",
                emu.url,
                "jobs",
                "track",
                "--scan-interval",
                "0.2",
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                loop = asyncio.get_running_loop()
                end = loop.time() + 30
                while (record := await store.get(job.id)) is None or not record.finished:
                    assert tracker.returncode is None
                    assert loop.time() < end, "the CLI tracker never finished the job"
                    await asyncio.sleep(0.1)
                tracker.send_signal(signal.SIGINT)
                out, err = await asyncio.wait_for(tracker.communicate(), 30)
            finally:
                if tracker.returncode is None:
                    tracker.kill()
                    await tracker.wait()
    finally:
        await store.aclose()
    assert record.status == "completed"
    assert tracker.returncode == 0, err.decode()
    assert "Tracker stopped: adopted 1 job(s), finished 1" in out.decode()
    assert "Traceback" not in err.decode()
    assert TOKEN not in out.decode() + err.decode()


async def test_a_stopped_tracker_gives_its_leases_back(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    emu.config.render_seconds = 30.0
    store = RedisJobStore(redis_server.url)  # a 30 s lease: only giving it back frees it
    try:
        async with NemoClient(
            base_url=emu.url, token=TOKEN, home=tmp_path / "a", job_store=store
        ) as nemo:
            session, draft = await new_draft(nemo)
            job = await session.export(draft)
            async with nemo.tracker(scan_interval=0.05, poll_interval=0.05) as tracker:
                while not await store.redis.exists(f"nemo:lease:{job.id}"):
                    await asyncio.sleep(0.02)
                assert tracker.tracking == {job.id}
            assert not await store.redis.exists(f"nemo:lease:{job.id}")
            assert [r.id for r in await store.unleased(10)] == [job.id]  # the next scan's
    finally:
        await store.aclose()
