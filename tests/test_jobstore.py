"""The render job store on its own: records, concurrency, damage, cancellation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import attrs
import pytest

from nemo_sync import _jobstore
from nemo_sync._jobstore import KEEP_FINISHED, DamagedRecordError, JobRecord, JobStore
from nemo_sync.errors import ConfigurationError


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


async def test_a_damaged_file_is_set_aside_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "jobs.json").write_text("{not json")
    assert await JobStore(tmp_path).list() == []
    assert "was damaged (it is not JSON); moved aside to jobs.json.damaged-" in caplog.text
    [aside] = tmp_path.glob("jobs.json.damaged-*")
    assert aside.read_text() == "{not json"


def test_a_record_reads_and_writes_its_known_fields_and_keeps_the_rest() -> None:
    item = {
        "id": "r1",
        "session_id": "s",
        "created_at": 5,  # an integer is a number too
        "status": "pending",
        "progress": 10,
        "render_node": {"zone": "eu"},  # a newer version's
    }
    record = JobRecord.from_json(item)
    assert record == JobRecord(id="r1", session_id="s", created_at=5.0, status="pending",
                               progress=10.0)  # fmt: skip
    assert record.extra == {"render_node": {"zone": "eu"}}
    assert "render_node" not in repr(record)
    assert record.to_json()["render_node"] == {"zone": "eu"}
    assert JobRecord.from_json(record.to_json()).extra == record.extra
    # Unknown fields survive an update: evolve keeps them.
    assert attrs.evolve(record, status="completed").extra == record.extra


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (["not", "an", "object"], "it is a list, not an object"),
        ({"session_id": "s", "created_at": 1, "status": "pending"}, "id is missing"),
        ({"id": "", "session_id": "s", "created_at": 1, "status": "x"}, "id is empty"),
        ({"id": 7, "session_id": "s", "created_at": 1, "status": "x"}, "id is a number"),
        ({"id": "a", "created_at": 1, "status": "x"}, "session_id is missing"),
        ({"id": "a", "session_id": "s", "created_at": "today", "status": "x"},
         "created_at is a string, not a number"),
        ({"id": "a", "session_id": "s", "created_at": True, "status": "x"},
         "created_at is a boolean, not a number"),
        ({"id": "a", "session_id": "s", "created_at": 10**400, "status": "x"},
         "created_at is out of range"),
        ({"id": "a", "session_id": "s", "created_at": 1, "status": None},
         "status is null, not a string"),
        ({"id": "a", "session_id": "s", "created_at": 1, "status": "x", "progress": "50%"},
         "progress is a string, not a number"),
        ({"id": "a", "session_id": "s", "created_at": 1, "status": "x", "output_path": []},
         "output_path is a list, not a string"),
    ],
)  # fmt: skip
def test_a_record_of_the_wrong_shape_says_what_is_wrong(item: object, why: str) -> None:
    with pytest.raises(DamagedRecordError) as caught:
        JobRecord.from_json(item)
    assert str(caught.value).startswith(why)


async def test_update_when_status_changes_only_a_record_still_in_that_status(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path)
    await store.put(JobRecord(id="a", session_id="s", status="submitting"))
    moved = await store.update("a", when_status={"submitting"}, status="pending")
    assert moved is not None
    assert moved.status == "pending"
    # Another process confirmed it meanwhile: a stale "mark it failed" must not undo that.
    kept = await store.update("a", when_status={"submitting"}, status="failed")
    assert kept is not None
    assert kept.status == "pending"
    assert (await store.get("a")) == moved


async def test_a_write_past_the_record_cap_is_refused_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_jobstore, "MAX_RECORDS", 3)
    store = JobStore(tmp_path)
    for i in range(3):
        await store.put(JobRecord(id=f"j{i}", session_id="s", created_at=float(i)))
    before = (tmp_path / "jobs.json").read_bytes()
    with pytest.raises(ConfigurationError, match="would hold 4 render jobs, more than 3"):
        await store.put(JobRecord(id="j3", session_id="s"))
    # A file the store would refuse to read is never written.
    assert (tmp_path / "jobs.json").read_bytes() == before


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
