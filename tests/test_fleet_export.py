"""Fleet-unique render ids and idempotent export (issue 22), on both job stores.

The race runs as real processes sharing one emulator (over real sockets) and one real Redis
(or one NEMO_HOME, for the file store).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import nemo_sync._export_claims
import nemo_sync._redis_store
from nemo_sync import JobStore, JobStoreUnavailableError, NemoClient, RedisJobStore
from nemo_sync._contract import RENDER_PATH, path_segment
from nemo_sync._jobstore import FileJobStore
from nemo_sync.emulator import Emulator
from tests.fleet_support import ROOT, TOKEN, fleet_emulator, new_draft
from tests.redis_server import RedisServer

SUBMIT = RENDER_PATH  # a render submission (GETs of one go to RENDER_PATH/<id>)
ID_SHAPE = re.compile(r"render_\d{13}(_\d+)?")


@pytest.fixture(params=["file", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    if request.param == "file":
        yield FileJobStore(tmp_path / "home")
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_store = RedisJobStore(server.url)
    yield redis_store
    await redis_store.aclose()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with fleet_emulator(render_seconds=0.1) as emulator:
        yield emulator


@pytest.fixture
async def nemo(emu: Emulator, store: JobStore, tmp_path: Path) -> AsyncIterator[NemoClient]:
    async with NemoClient(
        base_url=emu.url, token=TOKEN, home=tmp_path / "home", job_store=store
    ) as client:
        yield client


def submits(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if r.method == "POST" and r.path == SUBMIT]


def frozen_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The stores' clocks stand still: every id below is made in one millisecond."""
    clock = types.SimpleNamespace(time=lambda: seconds)
    monkeypatch.setattr(nemo_sync._redis_store, "time", clock)
    monkeypatch.setattr(nemo_sync._export_claims, "time", clock)


# -- ids ---------------------------------------------------------------------------------------


async def test_fifty_ids_in_one_millisecond_are_fifty_ids(
    store: JobStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    frozen_clock(monkeypatch, 1765000000.123)
    # A second store object on the same place stands for another host (or process).
    other: JobStore = (
        FileJobStore(tmp_path / "home")
        if isinstance(store, FileJobStore)
        else RedisJobStore(store.redis)  # type: ignore[attr-defined]
    )
    ids = await asyncio.gather(*(s.new_render_id() for _ in range(25) for s in (store, other)))
    assert len(set(ids)) == 50
    for render_id in ids:
        assert ID_SHAPE.fullmatch(render_id), render_id
        assert path_segment(render_id, "id") == render_id  # a path segment as it is
    assert "render_1765000000123" in ids  # the vendor's shape for the first one


async def test_the_service_accepts_a_second_id_of_a_millisecond(
    emu: Emulator, nemo: NemoClient, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, draft = await new_draft(nemo)
    frozen_clock(monkeypatch, 1765000000.456)
    first = await store.new_render_id()
    job = await session.export(draft)
    assert job.id != first
    assert ID_SHAPE.fullmatch(job.id)
    if isinstance(store, RedisJobStore):
        assert job.id == f"{first}_2"  # the same millisecond's second id, fleet-wide
    assert (await job.wait(poll_interval=0.02)).ok


# -- idempotency keys in one process ------------------------------------------------------------


async def test_the_same_key_gives_the_same_job_with_one_request(
    emu: Emulator, nemo: NemoClient
) -> None:
    session, draft = await new_draft(nemo)
    jobs = await asyncio.gather(
        *(session.export(draft, idempotency_key="edit-42") for _ in range(5))
    )
    again = await session.export(draft, idempotency_key="edit-42")
    other = await session.export(draft, idempotency_key="edit-43")
    assert {j.id for j in jobs} == {again.id}
    assert other.id != again.id
    assert len(submits(emu)) == 2
    assert (await again.wait(poll_interval=0.02)).ok


async def test_a_key_whose_holder_died_before_sending_is_taken_over(
    emu: Emulator, nemo: NemoClient, store: JobStore
) -> None:
    session, draft = await new_draft(nemo)
    # A host reserved the key and died before it sent anything; its short lease ran out.
    dead = await store.claim_export("edit-1", "render_1", lease=0.001)
    assert dead.won
    await asyncio.sleep(0.01)
    job = await session.export(draft, idempotency_key="edit-1")
    assert job.id != "render_1"
    assert len(submits(emu)) == 1
    assert (await session.export(draft, idempotency_key="edit-1")).id == job.id


async def test_a_key_whose_holder_died_after_sending_attaches_to_its_render(
    emu: Emulator, nemo: NemoClient, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, draft = await new_draft(nemo)
    sent = await session.export(draft)  # the dead host's request, which did arrive
    claim = await store.claim_export("edit-2", sent.id, lease=30)
    assert claim.won
    assert await store.advance_export("edit-2", sent.id, "sending", from_state="reserving")
    monkeypatch.setattr(nemo_sync._render_job, "_ASK_AFTER", 0.0)
    job = await session.export(draft, idempotency_key="edit-2")
    assert job.id == sent.id
    assert len(submits(emu)) == 1  # the dead host's only


async def test_a_refused_export_frees_its_key(emu: Emulator, nemo: NemoClient) -> None:
    session, draft = await new_draft(nemo)
    emu.config.export_requires_plan = True
    emu.account(TOKEN).registered = False
    with pytest.raises(nemo_sync.ExportBlockedError):
        await session.export(draft, idempotency_key="edit-3")
    emu.account(TOKEN).registered = True
    job = await session.export(draft, idempotency_key="edit-3")
    assert (await job.wait(poll_interval=0.02)).ok


async def test_redis_down_refuses_an_idempotent_export_and_sends_nothing(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    store = RedisJobStore(redis_server.url)
    try:
        async with NemoClient(
            base_url=emu.url, token=TOKEN, home=tmp_path / "home", job_store=store
        ) as nemo:
            session, draft = await new_draft(nemo)
            redis_server.stop()
            with pytest.raises(JobStoreUnavailableError):
                await session.export(draft, idempotency_key="edit-4")
    finally:
        await store.aclose()
    assert submits(emu) == []


async def test_an_idempotency_key_must_be_a_short_string(nemo: NemoClient) -> None:
    session, draft = await new_draft(nemo)
    for bad in ("", "k" * 201):
        with pytest.raises(nemo_sync.ConfigurationError, match="idempotency_key"):
            await session.export(draft, idempotency_key=bad)


# -- twenty hosts ------------------------------------------------------------------------------


async def test_twenty_hosts_racing_one_key_make_one_render(
    emu: Emulator, nemo: NemoClient, store: JobStore, tmp_path: Path
) -> None:
    session, draft = await new_draft(nemo)
    go = tmp_path / "go"
    config = {
        "mode": "export",
        "base_url": emu.url,
        "token": TOKEN,
        "session_id": session.id,
        "draft": draft,
        "key": "task-7",
        "store": "file" if isinstance(store, FileJobStore) else "redis",
        "redis_url": None if isinstance(store, FileJobStore) else store.where.split(" ")[0],
        "home": str(tmp_path / "home"),
        "go": str(go),
    }
    hosts = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fleet_host",
            json.dumps(config),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(20)
    ]
    await asyncio.sleep(0.5)
    go.touch()
    outputs = await asyncio.gather(*(h.communicate() for h in hosts))
    reports = []
    for host, (out, err) in zip(hosts, outputs, strict=True):
        assert host.returncode == 0, err.decode()
        reports.append(json.loads(out))
    assert len(submits(emu)) == 1
    assert len({r.get("id") for r in reports}) == 1, reports
    assert reports[0]["id"] in {job.id for job in emu.renders.values()}


async def test_a_damaged_exports_file_is_set_aside_and_ids_stay_unique(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path / "home")
    first = await store.new_render_id()
    (tmp_path / "home" / "exports.json").write_text('{"last_id_ms": "soon", "keys": []}')
    second = await store.new_render_id()
    assert second != first
    assert len(list((tmp_path / "home").glob("exports.json.damaged-*"))) == 1
    claim = await store.claim_export("edit-9", second, lease=30)
    assert claim.won
