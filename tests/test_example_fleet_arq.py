"""examples/fleet_arq.py: an arq worker whose render task, retried after the worker is
killed, attaches to the render the first try started (one render request, not two).

Both tests use a real redis-server (skipped when it is missing, outside CI); the retry test
runs the workers as real processes (``python -m arq``) against one emulator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import JobStatus

from nemo_sync import NemoClient
from nemo_sync._contract import RENDER_PATH
from nemo_sync.emulator import Emulator
from tests.fleet_support import ROOT, TOKEN, new_draft
from tests.redis_server import RedisServer
from tests.render_doubles import BytesRenderBackend

EXAMPLES = ROOT / "examples"
SUBMIT = RENDER_PATH  # a render submission (GETs of one go to RENDER_PATH/<id>)
VIDEO = b"video-bytes" * 100
# arq 0.28's Worker.close() calls redis-py's deprecated close() (redis-py 5.0.1 on).
ARQ_CLOSE = "ignore:Call to deprecated close:DeprecationWarning"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def submits(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests if r.method == "POST" and r.path == SUBMIT]


@pytest.mark.filterwarnings(ARQ_CLOSE)
async def test_main_renders_through_the_queue(tmp_path: Path, redis_server: RedisServer) -> None:
    import fleet_arq

    path = await fleet_arq.main(["--local", "--out", str(tmp_path), "--redis", redis_server.url])
    assert path.parent == tmp_path
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # Long enough that the first worker is killed while it waits for the render.
    async with Emulator(render_backend=BytesRenderBackend(VIDEO), render_seconds=3.0) as emulator:
        emulator.add_token(TOKEN)
        yield emulator


class Workers:
    """``python -m arq tests.fleet_arq_worker.settings --burst`` processes."""

    def __init__(self, emu: Emulator, redis_url: str, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(ROOT)]),
            "PYTHONUNBUFFERED": "1",
            "NEMO_REDIS_URL": redis_url,
            "NEMO_API_URL": emu.url,
            "NEMO_TOKEN": TOKEN,
        }
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        n = len(self.procs) + 1
        with (self.tmp_path / f"worker{n}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "arq",
                "tests.fleet_arq_worker.settings",
                "--burst",
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(process)
        return process

    def log(self, n: int) -> str:
        return (self.tmp_path / f"worker{n}.log").read_text(errors="replace")

    async def close(self) -> None:
        for process in self.procs:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_task_retried_after_its_worker_is_killed_attaches_to_its_render(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "app") as nemo:
        session, draft = await new_draft(nemo)
    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    workers = Workers(emu, redis_server.url, tmp_path)
    try:
        # No order id: the idempotency key comes from arq's job id, which a retry keeps.
        job = await pool.enqueue_job("render_video", session.id, draft, str(tmp_path / "out"))
        assert job is not None
        first = await workers.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        # Killed while it waits: after the service accepted the render (the task says so
        # once export() returns; killing it when the request has only arrived would make
        # this a test of a death mid-submission, which tests/test_fleet_export.py covers).
        while "try 1: render " not in workers.log(1):
            assert first.returncode is None, workers.log(1)
            assert loop.time() < deadline, workers.log(1)
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        # Killed mid-task: the render goes on at the service, the arq job is unfinished.
        assert await job.status() == JobStatus.in_progress
        assert len(submits(emu)) == 1

        second = await workers.start()
        assert await asyncio.wait_for(second.wait(), 35) == 0, workers.log(2)

        info = await job.result_info()
        assert info is not None, workers.log(2)
        assert info.success, info.result
        assert info.job_try == 2  # arq ran it again after the kill
        assert len(submits(emu)) == 1  # the retry made no second render request
        path = Path(info.result)
        assert path.read_bytes() == VIDEO
        render_id = workers.log(1).split("try 1: render ")[1].split()[0]
        assert f"try 2: render {render_id}" in workers.log(2)  # the same render
    finally:
        await workers.close()
        await pool.aclose()


async def test_the_second_try_with_the_same_job_id_makes_no_render_request(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task function itself, called twice as arq's retry would (the same job id): one
    render request, one job, the same file."""
    import fleet_arq

    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    ctx: dict[str, Any] = {"redis": pool, "base_url": emu.url}
    monkeypatch.setenv("NEMO_TOKEN", TOKEN)  # the worker's client reads it, as under `arq`
    try:
        async with NemoClient(base_url=emu.url, token=TOKEN, home=tmp_path / "app") as nemo:
            session, draft = await new_draft(nemo)
        await fleet_arq.startup(ctx)
        out = str(tmp_path / "out")
        paths = [
            await fleet_arq.render_video(
                {**ctx, "job_id": "j1", "job_try": n}, session.id, draft, out
            )
            for n in (1, 2)
        ]
        assert paths[0] == paths[1]
        assert Path(paths[0]).read_bytes() == VIDEO
        assert len(submits(emu)) == 1
    finally:
        await fleet_arq.shutdown(ctx)
        await pool.aclose()
