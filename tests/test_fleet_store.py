"""The JobStore protocol: the file store and the Redis store behave the same (issue 22).

Every behavioural case runs against both, the Redis one on a real redis-server (AOF on).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import nemo_sync
from nemo_sync import JobRecord, JobStore, JobStoreUnavailableError, NemoClient, RedisJobStore
from nemo_sync._jobstore import FileJobStore
from nemo_sync.emulator import Emulator
from tests.fleet_support import CLIP
from tests.redis_server import RedisServer
from tests.render_doubles import BytesRenderBackend


@pytest.fixture(params=["file", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "file":
        yield FileJobStore(tmp_path / "home")
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_store = RedisJobStore(server.url, prefix="test:")
    yield redis_store
    await redis_store.aclose()


def record(job_id: str, created_at: float, status: str = "pending") -> JobRecord:
    return JobRecord(id=job_id, session_id="s1", created_at=created_at, status=status)


async def test_both_stores_are_job_stores(store: JobStore) -> None:
    assert isinstance(store, JobStore)
    assert store.where


async def test_put_get_list_newest_first_and_replaces(store: JobStore) -> None:
    assert await store.list() == []
    assert await store.get("render_1") is None
    await store.put(record("render_1", 1000.0))
    await store.put(record("render_3", 3000.0))
    await store.put(record("render_2", 2000.0))
    assert [r.id for r in await store.list()] == ["render_3", "render_2", "render_1"]
    await store.put(record("server_9", 1500.0, status="processing"), replaces="render_1")
    assert await store.get("render_1") is None
    assert [r.id for r in await store.list()] == ["render_3", "render_2", "server_9"]
    assert await store.get("server_9") == record("server_9", 1500.0, status="processing")


async def test_update_changes_fields_only_when_the_status_allows(store: JobStore) -> None:
    assert await store.update("render_missing", status="failed") is None
    await store.put(record("render_1", 1000.0))
    updated = await store.update("render_1", status="processing", progress=40.0)
    assert updated is not None
    assert (updated.status, updated.progress) == ("processing", 40.0)
    refused = await store.update("render_1", when_status={"submitting"}, status="failed")
    assert refused is not None
    assert refused.status == "processing"
    assert (await store.get("render_1")) == updated


async def test_unknown_fields_are_kept_through_updates(store: JobStore) -> None:
    newer = JobRecord.from_json({**record("render_1", 1.0).to_json(), "lease_owner": "host-7"})
    await store.put(newer)
    await store.update("render_1", progress=10.0)
    got = await store.get("render_1")
    assert got is not None
    assert got.extra == {"lease_owner": "host-7"}
    assert got.progress == 10.0


async def test_finished_jobs_beyond_the_newest_200_are_pruned(store: JobStore) -> None:
    for n in range(205):
        await store.put(record(f"render_{n}", 1000.0 + n, status="completed"))
    await store.put(record("render_old_running", 1.0, status="processing"))
    # A job that finishes later counts as finished too.
    await store.update("render_old_running", status="failed")
    await store.put(record("render_still_running", 0.5, status="processing"))
    ids = [r.id for r in await store.list()]
    finished = [i for i in ids if i != "render_still_running"]
    assert len(finished) == 200
    assert finished == [f"render_{n}" for n in range(204, 4, -1)]
    assert ids[-1] == "render_still_running"  # unfinished: never pruned


async def test_concurrent_writers_lose_nothing(store: JobStore, tmp_path: Path) -> None:
    # A second store object on the same place stands for a second host (or process).
    other: JobStore = (
        FileJobStore(tmp_path / "home")
        if isinstance(store, FileJobStore)
        else RedisJobStore(store.redis, prefix="test:")  # type: ignore[attr-defined]
    )
    await store.put(record("render_1", 1.0))
    await asyncio.gather(
        *(
            s.put(record(f"render_{s is store}_{n}", 10.0 + n))
            for n in range(10)
            for s in (store, other)
        ),
        store.update("render_1", progress=50.0),
        other.update("render_1", output_path="/tmp/out.mp4"),
    )
    got = await store.get("render_1")
    assert got is not None
    assert (got.progress, got.output_path) == (50.0, "/tmp/out.mp4")
    assert len(await other.list()) == 21


async def test_a_record_survives_a_redis_crash(redis_server: RedisServer) -> None:
    store = RedisJobStore(redis_server.url)
    try:
        await store.put(record("render_1", 1.0, status="processing"))
    finally:
        await store.aclose()
    redis_server.restart()  # SIGKILL; the AOF has every write
    store = RedisJobStore(redis_server.url)
    try:
        assert await store.get("render_1") == record("render_1", 1.0, status="processing")
    finally:
        await store.aclose()


async def test_the_key_prefix_separates_fleets(redis_server: RedisServer) -> None:
    one, two = RedisJobStore(redis_server.url), RedisJobStore(redis_server.url, prefix="b:")
    try:
        await one.put(record("render_1", 1.0))
        assert await two.list() == []
        keys = sorted(k.decode() for k in await one.redis.keys("*"))
        assert keys == ["nemo:job:render_1", "nemo:jobs"]
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_down_is_a_typed_error(redis_server: RedisServer) -> None:
    store = RedisJobStore(redis_server.url)
    redis_server.stop()
    try:
        with pytest.raises(JobStoreUnavailableError, match="unreachable"):
            await store.list()
        with pytest.raises(JobStoreUnavailableError):
            await store.put(record("render_1", 1.0))
    finally:
        await store.aclose()


def test_without_redis_py_the_error_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import nemo_sync\n"
        "try:\n"
        "    nemo_sync.RedisJobStore\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "pip install 'nemo-sync[redis]'" in out


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        render_backend=BytesRenderBackend(b"video"), render_seconds=0.1
    ) as emulator:
        yield emulator


async def test_a_client_records_its_jobs_in_the_store_given(
    emu: Emulator, store: JobStore, tmp_path: Path
) -> None:
    home = tmp_path / "client-home"
    async with NemoClient(base_url=emu.url, home=home, job_store=store) as nemo:
        session = await nemo.create_session()
        media = await session.upload(CLIP, filename="clip.mp4")
        draft: dict[str, Any] = {"t": [{"tt": 0, "sg": [{"mid": media.key, "st": 0, "d": 1000}]}]}
        job = await session.export(draft)
        result = await job.wait(poll_interval=0.02)
        assert result.ok
        assert [(r.id, r.status) for r in await nemo.jobs()] == [(job.id, "completed")]
    assert [r.id for r in await store.list()] == [job.id]
    if not isinstance(store, FileJobStore):
        assert not (home / "jobs.json").exists()  # nothing is written to the host's disk


async def test_a_client_given_no_store_keeps_jobs_json(emu: Emulator, tmp_path: Path) -> None:
    home = tmp_path / "client-home"
    async with NemoClient(base_url=emu.url, home=home) as nemo:
        session = await nemo.create_session()
        media = await session.upload(CLIP, filename="clip.mp4")
        draft = {"t": [{"tt": 0, "sg": [{"mid": media.key, "st": 0, "d": 1000}]}]}
        job = await session.export(draft)
    stored = json.loads((home / "jobs.json").read_text())
    assert [r["id"] for r in stored["jobs"]] == [job.id]
    assert "JobStore" in nemo_sync.__all__
    assert "RedisJobStore" in nemo_sync.__all__
