"""The render job store on its own: records, concurrency, damage, cancellation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from nemo_sync._jobstore import KEEP_FINISHED, JobRecord, JobStore


async def test_put_update_list_round_trip(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    await store.put(JobRecord(id="a", session_id="s", created_at=1.0))
    await store.put(JobRecord(id="b", session_id="s", created_at=2.0))
    updated = await store.update("a", status="processing", progress=40.0)
    assert updated is not None
    assert updated.progress == 40.0
    assert [r.id for r in await store.list()] == ["b", "a"]  # newest first
    assert await store.update("missing", status="x") is None
    assert (tmp_path / "jobs.json").stat().st_mode & 0o777 == 0o600


async def test_replaces_swaps_the_client_id_for_the_servers(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    await store.put(JobRecord(id="render_1", session_id="s"))
    await store.put(JobRecord(id="srv-9", session_id="s"), replaces="render_1")
    assert [r.id for r in await store.list()] == ["srv-9"]


async def test_many_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    stores = [JobStore(tmp_path) for _ in range(4)]
    await asyncio.gather(
        *(
            stores[i % 4].put(JobRecord(id=f"j{i}", session_id="s", created_at=float(i)))
            for i in range(40)
        )
    )
    assert len(await JobStore(tmp_path).list()) == 40


async def test_a_damaged_file_is_ignored_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "jobs.json").write_text("{not json")
    assert await JobStore(tmp_path).list() == []
    assert "ignoring unreadable" in caplog.text
    (tmp_path / "jobs.json").write_text(
        json.dumps({"jobs": [{"id": 3}, {"id": "ok", "session_id": "s"}, {"id": "x", "bogus": 1}]})
    )
    assert [r.id for r in await JobStore(tmp_path).list()] == ["ok"]


async def test_finished_jobs_beyond_the_newest_are_pruned(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    for i in range(KEEP_FINISHED + 5):
        await store.put(
            JobRecord(id=f"done{i}", session_id="s", created_at=float(i), status="completed")
        )
    await store.put(JobRecord(id="running", session_id="s", created_at=0.0))
    ids = [r.id for r in await store.list()]
    assert len(ids) == KEEP_FINISHED + 1
    assert "running" in ids  # an unfinished job is never pruned
    assert "done0" not in ids


async def test_a_cancelled_write_completes_before_the_lock_is_released(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    task = asyncio.create_task(store.put(JobRecord(id="a", session_id="s")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Whatever point the cancel hit, the file is whole JSON and the next writer gets the lock.
    await store.put(JobRecord(id="b", session_id="s"))
    assert {r.id for r in await store.list()} <= {"a", "b"}
    assert "b" in {r.id for r in await store.list()}
    json.loads((tmp_path / "jobs.json").read_text())


def test_finished_means_completed_failed_or_cancelled_not_submitted() -> None:
    assert JobRecord(id="a", session_id="s", status="completed").finished
    assert JobRecord(id="a", session_id="s", status="failed").finished
    # [R]'s cancel endpoint: a cancelled job is over, and pruned like the others.
    assert JobRecord(id="a", session_id="s", status="cancelled").finished
    assert not JobRecord(id="a", session_id="s", status="submitted").finished
    assert not JobRecord(id="a", session_id="s", status="encoding").finished
