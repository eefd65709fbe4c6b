"""The persistent local backend: an emulator with a ``data_dir`` keeps its state in SQLite.

In-process emulators on one folder (restarted, or two at once) over real sockets, then the
CLI as separate processes: every ``--local`` command is one service, whatever process runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._store import DB_FILE, MemoryStore, SqliteStore
from nemo_sync.emulator._store_admin import worker_alive
from nemo_sync.local import make_sample_media
from tests.render_doubles import BytesRenderBackend


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=4.0)


def _emulator(folder: Path, backend: BytesRenderBackend | None = None, **options: Any) -> Emulator:
    return Emulator(
        data_dir=folder,
        render_backend=backend or BytesRenderBackend(),
        render_seconds=options.pop("render_seconds", 0.05),
        silent_ratio=0,
        **options,
    )


async def test_the_in_memory_default_writes_no_database() -> None:
    async with Emulator() as emu:
        assert isinstance(emu.store, MemoryStore)
        folder = emu.data_dir
        async with NemoClient(base_url=emu.url) as nemo:
            await nemo.create_session()
        assert not (folder / DB_FILE).exists()
    assert not folder.exists()  # the temporary folder goes with the emulator


async def test_everything_survives_a_restart_on_a_new_port(media, tmp_path: Path) -> None:
    folder = tmp_path / "backend"
    async with _emulator(folder) as first:
        assert isinstance(first.store, SqliteStore)
        async with NemoClient(base_url=first.url) as nemo:
            session = await nemo.create_session()
            await session.upload(media.music)
            await session.upload(media.clips[0])
            await session.send("sync the background music to my video")
            before = await session.state()
            credits = await nemo.credits()
            link = await session.claim_url()
        first_url = first.url
    async with _emulator(folder) as second:
        assert second.url != first_url
        async with NemoClient(base_url=second.url) as nemo:  # the same saved token
            again = nemo.session(session.id, task_id=session.task_id)
            after = await again.state()
            assert after.draft_wire == before.draft_wire
            assert [m.name for m in after.media] == ["beat.wav", "sunset.mp4"]
            # Stored URLs would point at the stopped emulator: they are made per reply.
            assert all((m.url or "").startswith(second.url) for m in after.media)
            assert (await nemo.credits()).available == credits.available < 100
            # The claim token made before the restart still opens the project.
            async with aiohttp.ClientSession() as http:
                query = link.split("?", 1)[1]
                async with http.get(f"{second.url}/workspace/claim?{query}") as page:
                    assert page.status == 200
                    assert session.id in await page.text()
            # Chat goes on from the stored draft, version and id counter.
            version = second.sessions[session.id].version
            assert version >= 1
            await again.send("add a title: Hello")
            assert second.sessions[session.id].version == version + 1


async def test_two_emulators_on_one_folder_act_as_one_service(media, tmp_path: Path) -> None:
    folder = tmp_path / "backend"
    async with _emulator(folder) as one, _emulator(folder) as two:
        async with NemoClient(base_url=one.url) as a, NemoClient(base_url=two.url) as b:
            session = await a.create_session()
            there = b.session(session.id)
            # Uploads into one session through both at once: none is lost.
            paths = [media.music, *media.clips]
            await asyncio.gather(
                *((session if i % 2 else there).upload(path) for i, path in enumerate(paths))
            )
            state = await there.state()
            assert sorted(m.name for m in state.media) == sorted(p.name for p in paths)
            # Edits through both, one after the other and at once: each lands on the last.
            await session.send("sync the background music to my video")
            await asyncio.gather(
                there.send("add a title: One"), session.send("make it 16:9 widescreen")
            )
            final = (await session.state()).draft_wire
            assert final["m"]["aspect"] == "16:9"
            assert any(t.get("tt") == 7 for t in final["t"])  # the title track
            assert one.sessions[session.id].version == 3


async def test_a_render_left_by_a_stopped_emulator_is_finished_by_the_next(
    media, tmp_path: Path
) -> None:
    folder = tmp_path / "backend"
    slow = BytesRenderBackend(seconds=0.0)
    async with _emulator(folder, slow, render_seconds=30) as first:
        async with NemoClient(base_url=first.url) as nemo:
            session = await nemo.create_session()
            await session.upload(media.music)
            await session.upload(media.clips[0])
            await session.send("sync the background music to my video")
            job = await session.export()
            await asyncio.sleep(0.3)
            assert (await job.status()).status in ("pending", "processing")
    # Stopped mid-render: the job is not failed, it waits for the next emulator.
    again = BytesRenderBackend()
    async with _emulator(folder, again) as second:
        async with NemoClient(base_url=second.url) as nemo:
            resumed = nemo.render_job(job.id)
            result = await resumed.wait(poll_interval=0.05, timeout=30)
            assert result.ok
            assert result.download_url is not None
            assert result.download_url.startswith(second.url)
            out = await resumed.download(tmp_path / "out.mp4")
    assert len(again.calls) == 1  # rendered again, from the stored draft
    assert out.read_bytes() == again.payload


async def test_one_live_worker_renders_a_job_however_many_emulators_poll_it(
    media, tmp_path: Path
) -> None:
    folder = tmp_path / "backend"
    worker, bystander = BytesRenderBackend(seconds=1.0), BytesRenderBackend()
    async with _emulator(folder, worker, render_seconds=1.5) as one:
        async with _emulator(folder, bystander) as two:
            async with NemoClient(base_url=one.url) as a, NemoClient(base_url=two.url) as b:
                session = await a.create_session()
                await session.upload(media.music)
                await session.upload(media.clips[0])
                await session.send("sync the background music to my video")
                job = await session.export()
                seen = [r.progress async for r in b.render_job(job.id).watch(poll_interval=0.1)]
    assert len(worker.calls) == 1
    assert len(bystander.calls) == 0  # the worker said it was alive: nobody else took the job
    assert seen[-1] == 100
    assert len(seen) > 2  # the other process saw the progress move


async def test_reset_empties_the_store_for_every_emulator_on_it(media, tmp_path: Path) -> None:
    folder = tmp_path / "backend"
    async with _emulator(folder) as one, _emulator(folder) as two:
        async with NemoClient(base_url=one.url) as a:
            session = await a.create_session()
            await session.upload(media.music)
        assert len(two.sessions) == 0  # not looked yet
        two.reset()
        async with NemoClient(base_url=two.url, home=tmp_path / "other") as b:
            await b.credits()  # the reset lands with this request
        # The other emulator drops what it held, and knows the token made since.
        async with NemoClient(base_url=one.url, home=tmp_path / "other") as c:
            await c.credits()
        assert session.id not in one.sessions
        assert len(one.state.accounts) == 1
    with sqlite3.connect(folder / DB_FILE) as db:
        kinds = sorted(k for (k,) in db.execute("SELECT kind FROM records"))
    assert kinds == ["account", "token"]  # only the account made after the reset


async def test_each_emulator_on_a_folder_says_it_is_alive_until_it_stops(tmp_path: Path) -> None:
    """What tells a later process whether a file is being written or was left by a killed
    one: each emulator holds a lock in the folder for as long as it runs."""
    folder = tmp_path / "backend"
    killed = "wrk_" + "0" * 12
    async with _emulator(folder) as one, _emulator(folder) as two:
        assert worker_alive(folder, one.worker_id) is True
        assert worker_alive(folder, two.worker_id) is True
        assert worker_alive(folder, "wrk_" + "1" * 12) is None  # never ran here
        (folder / "workers" / killed).touch()  # what a killed one leaves: a free lock file
        assert worker_alive(folder, killed) is False
    assert worker_alive(folder, one.worker_id) is None  # stopped cleanly: its file is gone
    async with _emulator(folder) as three:  # and the next one clears the killed one's
        assert [p.name for p in (folder / "workers").iterdir()] == [three.worker_id]


# -- the CLI, as separate processes ------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NEMO_HOME": str(home),
        "NEMO_EMULATOR_SILENT_RATIO": "0",
        "NEMO_EMULATOR_RENDER_SECONDS": "0.2",
        "COLUMNS": "200",
        **extra,
    }


def cli(*args: str, home: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_sync", "--local", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(home, **extra),
        timeout=300,
        check=False,
    )


def cli_json(*args: str, home: Path, cwd: Path) -> Any:
    done = cli("--json", *args, home=home, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def spawn(*args: str, home: Path, cwd: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nemo_sync", "--local", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home, **extra),
    )


def _chat(home: Path, cwd: Path, session_id: str, *lines: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_sync", "--local", "chat", "--session", session_id],
        cwd=cwd,
        input="\n".join([*lines, "quit"]) + "\n",
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=300,
        check=False,
    )


def _video_height(path: Path) -> int:
    with av.open(str(path)) as container:
        return int(container.streams.video[0].codec_context.height)


def test_the_cli_workflow_across_processes(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    upload = cli_json("upload", str(media.music), home=home, cwd=tmp_path)
    session_id = upload["session_id"]
    cli_json("upload", str(media.clips[0]), str(media.clips[1]), home=home, cwd=tmp_path)
    # Two uploads into the same session at once, from two processes.
    both = [spawn("upload", str(media.clips[2]), home=home, cwd=tmp_path) for _ in range(2)]
    for proc in both:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    # The session made by the first process, continued in another.
    chatted = _chat(home, tmp_path, session_id, "sync the background music to my video")
    assert chatted.returncode == 0, chatted.stderr
    assert "Cut your clips on the beat" in chatted.stdout

    state = cli_json("state", home=home, cwd=tmp_path)
    assert state["session_id"] == session_id
    names = [m["name"] for m in state["media"]]
    assert names == ["beat.wav", "sunset.mp4", "night-ball.mp4", "neon.mp4", "neon.mp4"]
    assert state["draft"]["t"], "the chat's edit is in the stored draft"

    # Export and leave: the render is picked up by whichever process asks for it next.
    job_id = cli_json("export", home=home, cwd=tmp_path)["job_id"]
    listed = cli_json("jobs", "list", home=home, cwd=tmp_path)
    assert [j["id"] for j in listed] == [job_id]
    waited = cli_json("jobs", "wait", job_id, home=home, cwd=tmp_path)
    assert waited["job_id"] == job_id
    downloaded = cli_json("jobs", "download", job_id, "-o", "out.mp4", home=home, cwd=tmp_path)
    assert _video_height(Path(downloaded["output"])) == 1920

    reset = cli_json("reset", home=home, cwd=tmp_path)
    assert reset["removed"]["session"] == 1
    assert reset["removed"]["media"] == 5
    assert reset["removed"]["render"] == 1
    assert reset["removed"]["files"] == 6  # five uploads and the video
    gone = cli("state", "--session", session_id, home=home, cwd=tmp_path)
    assert gone.returncode == 1
    assert "not found" in gone.stderr
    # That `state` signed in afresh: a new account, which the next reset removes alone.
    again = cli_json("reset", home=home, cwd=tmp_path)
    assert again["removed"] == {"account": 1, "token": 1}
    assert [Path(f).name for f in again["files"]] == ["credentials.json"]


def test_two_sync_runs_at_once_share_one_backend(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = [str(media.music), str(media.clips[0]), str(media.clips[1])]
    runs = [
        spawn("--json", "sync", *files, "-o", f"out{i}.mp4", home=home, cwd=tmp_path)
        for i in range(2)
    ]
    reports = []
    for proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert reports[0]["session_id"] != reports[1]["session_id"]
    for report in reports:
        assert _video_height(Path(report["output"])) == 1920
    listed = cli_json("jobs", "list", home=home, cwd=tmp_path)
    assert {j["id"] for j in listed} == {r["job_id"] for r in reports}
    assert all(j["status"] == "completed" for j in listed)
    # Both sessions are in the one backend: each is still there for a later command.
    for report in reports:
        state = cli_json("state", "--session", report["session_id"], home=home, cwd=tmp_path)
        assert len(state["media"]) == 3


def test_a_render_killed_mid_way_is_finished_by_the_next_command(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    uploaded = cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    chatted = _chat(home, tmp_path, uploaded["session_id"], "sync the background music to it")
    assert chatted.returncode == 0, chatted.stderr
    # A render that would take 20 s, killed (no clean shutdown) while it runs.
    proc = spawn("export", "--wait", home=home, cwd=tmp_path, NEMO_EMULATOR_RENDER_SECONDS="20")
    jobs_file = home / "local" / "jobs.json"
    deadline = time.monotonic() + 60
    job: dict[str, Any] = {}
    while time.monotonic() < deadline and job.get("status") != "processing":
        time.sleep(0.2)
        if jobs_file.exists():
            jobs = json.loads(jobs_file.read_text())["jobs"]
            job = jobs[0] if jobs else {}
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert job.get("status") == "processing", err
    started = time.monotonic()
    waited = cli_json("jobs", "download", job["id"], "-o", "out.mp4", home=home, cwd=tmp_path)
    # The dead worker's heartbeat had to go stale first (3 s), then a quick render.
    assert time.monotonic() - started < 18
    assert _video_height(Path(waited["output"])) == 1920


def test_local_logout_signs_out_of_the_backend_and_in_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = cli_json("credits", home=home, cwd=tmp_path)
    assert cli("logout", home=home, cwd=tmp_path).returncode == 0
    assert not (home / "local" / "credentials.json").exists()
    # One anonymous token a week per machine: without the backend's sign-out this is a 429.
    again = cli_json("credits", home=home, cwd=tmp_path)
    assert again == first  # the same account: its sessions and credits are kept


def test_reset_needs_local(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nemo_sync", "reset"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(tmp_path / "home"),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--local reset" in done.stderr


def _open_store(path: str, barrier: Any, failures: Any) -> None:
    from nemo_sync.emulator._store import connect

    barrier.wait()
    try:
        connect(Path(path)).close()
    except Exception as exc:  # reported to the test, which fails on it
        failures.put(repr(exc))


def test_many_processes_opening_a_new_store_at_once_all_get_in(tmp_path: Path) -> None:
    """Two `--local` commands started together on a fresh home raced to switch the new
    database to WAL, and the loser failed with "database is locked" (seen in CI-like runs)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    for attempt in range(6):
        path = tmp_path / f"fresh-{attempt}" / "emulator.db"
        barrier = context.Barrier(6)
        procs = [
            context.Process(target=_open_store, args=(str(path), barrier, failures))
            for _ in range(6)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
    seen = []
    while not failures.empty():
        seen.append(failures.get())
    assert seen == []
