"""The render job store under crashes, damage and full disks (issue 24), from the user's side.

Every case works on real files in a real NEMO_HOME: damage written by hand, a FIFO, a sparse
1 GB file, real processes killed with SIGKILL mid-write, and jobs left unconfirmed by a crash,
settled against the emulator over real sockets. Each ends in one line that names the file and
says what was done, never a traceback, and no record is ever dropped unseen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync._jobstore import (
    MAX_FILE_BYTES,
    MAX_RECORDS,
    SUBMISSION_DEADLINE,
    JobRecord,
    JobStore,
)
from nemo_sync._render_job import NEVER_RECEIVED, fresh_render_id
from nemo_sync.emulator import Emulator
from tests.render_doubles import BytesRenderBackend

ROOT = Path(__file__).resolve().parent.parent
# A minimal ISO-BMFF header: enough for the upload checks; the test backend never decodes it.
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and FIFOs")


def item(job_id: str, **fields: Any) -> dict[str, Any]:
    """A record as jobs.json holds it."""
    return {"id": job_id, "session_id": "s1", "created_at": 1000.0, "status": "pending", **fields}


def write_jobs(home: Path, body: Any) -> bytes:
    home.mkdir(parents=True, exist_ok=True)
    data = json.dumps(body, indent=2).encode()
    (home / "jobs.json").write_bytes(data)
    return data


def set_aside_files(home: Path) -> list[Path]:
    return sorted(home.glob("jobs.json.damaged-*"))


def temp_files(home: Path) -> list[Path]:
    return sorted(home.glob(".jobs.json.*.tmp"))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nemo_sync" and r.levelno >= logging.WARNING
    ]


# -- damage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("first_look", ["list", "put"])
async def test_a_damaged_record_is_set_aside_with_the_file_and_the_good_ones_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, first_look: str
) -> None:
    home = tmp_path / "home"
    original = write_jobs(
        home,
        {
            "jobs": [
                item("render_1"),
                item("render_2", status="completed", created_at=900.0),
                # A pending job whose time became a string: before, the next write dropped it.
                item("render_3", created_at="2025-01-01T10:00:00Z"),
                42,
                {"session_id": "s1", "created_at": 1.0, "status": "pending"},
            ]
        },
    )
    store = JobStore(home)
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        if first_look == "put":
            await store.put(JobRecord(id="render_4", session_id="s1", created_at=2000.0))
        listed = [r.id for r in await store.list()]
    expected = ["render_4", "render_1", "render_2"] if first_look == "put" else listed
    assert listed == expected
    assert {"render_1", "render_2"} <= set(listed)
    # The file as it was is kept whole beside the store: the damaged records, verbatim.
    [aside] = set_aside_files(home)
    assert aside.read_bytes() == original
    assert json.loads(aside.read_bytes())["jobs"][2]["created_at"] == "2025-01-01T10:00:00Z"
    assert aside.stat().st_mode & 0o777 == 0o600
    [line] = warnings_of(caplog)
    assert str(home / "jobs.json") in line
    assert "3 of 5 records could not be read" in line
    assert "#3 render_3: created_at is a string, not a number" in line
    assert "#4: it is a number, not an object" in line
    assert "#5: id is missing" in line
    assert aside.name in line
    # Said once: the store no longer holds them, and later looks and writes are quiet.
    caplog.clear()
    await store.update("render_1", status="processing")
    assert [r.status for r in await JobStore(home).list() if r.id == "render_1"] == ["processing"]
    assert warnings_of(caplog) == []
    assert set_aside_files(home) == [aside]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "it is not JSON"),
        (b"", "it is not JSON"),  # emptied by a full disk
        (b"\xff\xfe\x00\x00garbage", "it is not JSON"),
        (b'{"jobs": [{"id": "a", "progress": NaN}]}', "it is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "it is not JSON"),  # deeper than any reader's stack
        (b"[]", "it holds a list, not an object with a job list"),
        (b'"jobs"', "it holds a string, not an object with a job list"),
        (b'{"jobs": 5}', 'its "jobs" is a number, not a list'),
        (b'{"jobs": {"render_1": {}}}', 'its "jobs" is an object, not a list'),
    ],
)
async def test_a_file_that_is_not_a_job_list_is_set_aside_whole_and_the_store_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, why: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "jobs.json").write_bytes(content)
    store = JobStore(home)
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        assert await store.list() == []
    [aside] = set_aside_files(home)
    assert aside.read_bytes() == content
    [line] = warnings_of(caplog)
    assert line == f"{home / 'jobs.json'} was damaged ({why}); moved aside to {aside.name}"
    await store.put(JobRecord(id="render_9", session_id="s1"))
    assert [r.id for r in await store.list()] == ["render_9"]


@posix_only
async def test_a_fifo_is_set_aside_without_hanging(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    os.mkfifo(home / "jobs.json")  # nobody writes to it: a plain read would wait forever
    store = JobStore(home)
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        assert await store.list() == []
    [aside] = set_aside_files(home)
    assert stat.S_ISFIFO(aside.lstat().st_mode)
    [line] = warnings_of(caplog)
    assert "jobs.json was damaged (it is not a regular file); moved aside" in line
    await store.put(JobRecord(id="render_9", session_id="s1"))
    assert [r.id for r in await store.list()] == ["render_9"]


async def test_a_1gb_file_is_set_aside_without_being_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with (home / "jobs.json").open("wb") as f:
        f.truncate(1 << 30)  # sparse: costs no disk; reading it cost 2.1 GB before
    store = JobStore(home)
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="nemo_sync"):
            assert await store.list() == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"{peak:,} bytes"
    [aside] = set_aside_files(home)
    assert aside.stat().st_size == 1 << 30
    [line] = warnings_of(caplog)
    assert "(1,073,741,824 bytes is more than such a file holds)" in line
    assert (home / "jobs.json").exists() is False


async def test_a_file_of_countless_tiny_values_is_refused_before_it_is_parsed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under the size cap, but parsing it would build millions of objects: memory stays
    near the file's own size, not the size of what it would parse into."""
    home = tmp_path / "home"
    home.mkdir()
    zeros = 4_000_000  # 8 MB of "0,": parsed, a list of 4 M items (32 MB of pointers alone)
    content = b'{"jobs": [], "x": [' + b"0," * (zeros - 1) + b"0]}"
    assert len(content) < MAX_FILE_BYTES
    (home / "jobs.json").write_bytes(content)
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="nemo_sync"):
            assert await JobStore(home).list() == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(content), f"{peak:,} bytes for a {len(content):,}-byte file"
    [line] = warnings_of(caplog)
    assert f"more than {MAX_RECORDS:,} records' worth of values" in line
    [aside] = set_aside_files(home)
    assert aside.stat().st_size == len(content)


async def test_more_records_than_the_cap_are_set_aside_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    write_jobs(home, {"jobs": [item(f"r{i}") for i in range(MAX_RECORDS + 1)]})
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        assert await JobStore(home).list() == []
    [line] = warnings_of(caplog)
    assert f"it holds {MAX_RECORDS + 1:,} records, more than {MAX_RECORDS:,}" in line
    assert len(json.loads(set_aside_files(home)[0].read_bytes())["jobs"]) == MAX_RECORDS + 1


async def test_a_newer_versions_fields_survive_a_write(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_jobs(
        home,
        {
            "format": 3,
            "jobs": [item("render_1", priority=2, render_node={"zone": "eu", "gpu": True})],
            "settings": {"keep": 500},
        },
    )
    store = JobStore(home)
    await store.update("render_1", status="completed", progress=100.0)
    await store.put(JobRecord(id="render_2", session_id="s1", created_at=2000.0))
    written = json.loads((home / "jobs.json").read_bytes())
    assert written["format"] == 3
    assert written["settings"] == {"keep": 500}
    [old] = [j for j in written["jobs"] if j["id"] == "render_1"]
    assert old["status"] == "completed"
    assert old["priority"] == 2
    assert old["render_node"] == {"zone": "eu", "gpu": True}
    record = await store.get("render_1")
    assert record is not None
    assert record.extra == {"priority": 2, "render_node": {"zone": "eu", "gpu": True}}
    assert set_aside_files(home) == []


def test_the_jobs_command_on_a_damaged_store_says_one_line_and_lists_the_rest(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    write_jobs(
        home,
        {"jobs": [item("render_1"), item("render_2", created_at="yesterday"), item("render_3")]},
    )
    done = subprocess.run(
        # No network: nothing is unconfirmed, so the listing comes from the file alone.
        [sys.executable, "-m", "nemo_sync", "--base-url", "http://127.0.0.1:9", "--home",
         str(home), "jobs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["render_1", "render_3"]
    [aside] = set_aside_files(home)
    [line] = done.stderr.splitlines()
    assert line.startswith(f"{home / 'jobs.json'}: 1 of 3 records could not be read")
    assert "#2 render_2: created_at is a string, not a number" in line
    assert aside.name in line


# -- crashes ----------------------------------------------------------------------------------

WRITER = r"""
import asyncio, os, signal, sys
from pathlib import Path
from nemo_sync._jobstore import JobRecord, JobStore

home, name, die_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if die_at:
    # Die inside a write, at its die_at-th: the temporary file is complete and synced, the
    # rename that would publish it never happens.
    real_replace = os.replace
    writes = 0

    def replace(src, dst):
        global writes
        if str(dst).endswith("jobs.json"):
            writes += 1
            if writes == die_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    os.replace = replace


async def main():
    store = JobStore(home)
    i = 0
    while True:
        job_id = f"{name}-{i}"
        await store.put(JobRecord(id=job_id, session_id="s", status="pending"))
        print(job_id, flush=True)  # stored: from here on it must never be lost
        if i:
            await store.update(f"{name}-{i - 1}", progress=float(i))
        i += 1


asyncio.run(main())
"""


def start_writer(home: Path, name: str, die_at: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home), name, str(die_at)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@posix_only
@pytest.mark.slow
async def test_writers_killed_mid_write_lose_no_record_and_leave_no_temporary_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    stored: set[str] = set()
    left_temporaries = 0
    for round_ in range(6):
        # Two writers killed from outside at whatever point they reached, beside one that
        # kills itself inside a write: three processes on one store, under its lock.
        free = [start_writer(home, f"r{round_}{name}") for name in "ab"]
        dying = start_writer(home, f"r{round_}c", die_at=2 + round_ % 3)
        try:
            for _ in range(3 + round_):  # a few stored records, then the kill lands anywhere
                line = free[0].stdout.readline() if free[0].stdout else ""
                assert line, free[0].stderr.read() if free[0].stderr else ""
                stored.add(line.strip())
            for proc in free:
                proc.send_signal(signal.SIGKILL)
        finally:
            for proc in (*free, dying):
                if proc.poll() is None and proc is not dying:
                    proc.kill()
                proc.wait(timeout=120)
        assert dying.returncode == -signal.SIGKILL, dying.stderr.read() if dying.stderr else ""
        for proc in (*free, dying):
            assert proc.stdout is not None
            stored.update(line.strip() for line in proc.stdout.read().splitlines())
            proc.stdout.close()
            assert proc.stderr is not None
            proc.stderr.close()
        left_temporaries += len(temp_files(home))
        # The next open: whole JSON, every record any process was told was stored, and
        # nothing left of the killed writes.
        with caplog.at_level(logging.WARNING, logger="nemo_sync"):
            ids = {r.id for r in await JobStore(home).list()}
        assert stored <= ids, sorted(stored - ids)
        json.loads((home / "jobs.json").read_bytes())
        assert temp_files(home) == []
        assert set_aside_files(home) == []  # a kill never looks like damage
        assert warnings_of(caplog) == []
    assert left_temporaries >= 6  # each self-killed write left one: the tidy was exercised


@posix_only
async def test_temporary_files_of_dead_writers_are_removed_when_the_store_opens(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    write_jobs(home, {"jobs": [item("render_1")]})
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(ended.stdout)
    live_pid = os.getpid()
    names = {
        "dead": f".jobs.json.{dead_pid}-abc123.tmp",  # its writer was killed: removed
        "live": f".jobs.json.{live_pid}-def456.tmp",  # a live writer's, maybe mid-write: kept
        "old": f".jobs.json.{live_pid}-aaa111.tmp",  # no write takes a minute: removed
        "legacy": ".jobs.json.f00dcafe.tmp",  # an older version's name, recent: kept
        "other": f".credentials.json.{dead_pid}-x.tmp",  # another file's: not the store's
    }
    for name in names.values():
        (home / name).write_bytes(b'{"jobs": [')
    two_minutes_ago = time.time() - 120
    os.utime(home / names["old"], (two_minutes_ago, two_minutes_ago))
    assert [r.id for r in await JobStore(home).list()] == ["render_1"]
    left = {p.name for p in home.iterdir() if p.name.endswith(".tmp")}
    assert left == {names["live"], names["legacy"], names["other"]}


FULL_DISK = r"""
import asyncio, resource, signal, sys
from pathlib import Path
from nemo_sync._jobstore import JobRecord, JobStore

home = Path(sys.argv[1])
size = (home / "jobs.json").stat().st_size
# No file may grow past this: every write that needs more space fails, as on a full disk.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64, resource.RLIM_INFINITY))
try:
    big = JobRecord(id="render_big", session_id="s", extra={"x": "y" * 4096})
    asyncio.run(JobStore(home).put(big))
except OSError as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


@posix_only
def test_a_write_on_a_full_disk_fails_in_one_line_and_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    before = write_jobs(home, {"jobs": [item("render_1"), item("render_2")]})
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("OSError: [Errno 27] File too large: could not save ")
    assert line.endswith(f"{home / 'jobs.json'}; it is unchanged")
    assert (home / "jobs.json").read_bytes() == before
    assert temp_files(home) == []


# -- orphans: jobs a crash left unconfirmed ---------------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        render_backend=BytesRenderBackend(b"video"), render_seconds=0.05
    ) as emulator:
        yield emulator


@pytest.fixture
async def nemo(emu: Emulator, tmp_path: Path) -> AsyncIterator[NemoClient]:
    async with NemoClient(base_url=emu.url, home=tmp_path / "home") as client:
        yield client


async def session_and_draft(nemo: NemoClient) -> tuple[nemo_sync.Session, dict[str, Any]]:
    session = await nemo.create_session()
    media = await session.upload(CLIP, filename="clip.mp4")
    return session, {"t": [{"tt": 0, "sg": [{"mid": media.id, "st": 0, "d": 1000}]}], "d": 1000}


EXPORTER = r"""
import asyncio, json, sys
from nemo_sync import NemoClient

async def main():
    async with NemoClient(base_url=sys.argv[1], home=sys.argv[2]) as nemo:
        await nemo.session(sys.argv[3]).export(json.loads(sys.argv[4]))

asyncio.run(main())
"""


class AnswerLosingProxy:
    """Forwards every request to the emulator, except that the first export's answer never
    comes back: the service has the job, and the exporter waits for an answer until it is
    killed. (Holding the request at the emulator would not do: a server cannot read the
    body of a request whose sender is gone.)"""

    def __init__(self, target: str) -> None:
        self.target = target
        self.submitted = asyncio.Event()
        self._release = asyncio.Event()
        self._held = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in {"host", "content-length", "transfer-encoding"}
        }
        async with aiohttp.ClientSession() as http:
            async with http.request(
                request.method,
                self.target + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as reply:
                body = await reply.read()
                kept = {"Content-Type": reply.headers.get("Content-Type", "application/json")}
        if request.path == "/api/render/proxy/lambda" and not self._held:
            self._held = True
            self.submitted.set()
            await self._release.wait()  # the answer is lost with the exporter
        return web.Response(status=reply.status, body=body, headers=kept)

    async def __aenter__(self) -> AnswerLosingProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._release.set()
        assert self._runner is not None
        await self._runner.cleanup()


@posix_only
async def test_an_export_killed_before_its_answer_is_resumed_at_the_next_look(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    session, draft = await session_and_draft(nemo)  # the token is stored in the home
    home = tmp_path / "home"
    async with AnswerLosingProxy(emu.url) as proxy:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", EXPORTER, proxy.url, str(home), session.id, json.dumps(draft),
            cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(proxy.submitted.wait(), 120)
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        [left] = json.loads((home / "jobs.json").read_bytes())["jobs"]
        assert left["status"] == "submitting"  # what the crash left: no answer was recorded
        assert left["id"] in emu.renders  # and the service has the job

        async with NemoClient(base_url=proxy.url, home=home) as again:
            [record] = await again.jobs()
            assert record.id == left["id"]
            assert record.status in {"pending", "processing", "completed"}
            result = await again.render_job(record.id).wait(poll_interval=0.02)
            assert result.ok
            assert [r.status for r in await again.jobs()] == ["completed"]


async def test_submissions_whose_answers_were_lost_are_resumed_at_the_next_look(
    emu: Emulator, nemo: NemoClient
) -> None:
    session, draft = await session_and_draft(nemo)
    # The service makes each job, then the connection drops before its answer, twice.
    emu.faults.add("POST /api/render/proxy/lambda", drop=True, times=2)
    with pytest.raises(nemo_sync.APIConnectionError):
        await session.export(draft)
    assert {r.status for r in await nemo._api.jobs.list()} == {"submitted"}
    records = await nemo.jobs()
    assert len(records) == 2
    assert all(r.status in {"pending", "processing", "completed"} for r in records)
    assert {r.id for r in records} <= set(emu.renders)


async def run_cli(*args: str) -> tuple[int, str, str]:
    """The command in its own process, while this loop serves the emulator."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nemo_sync", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await child.communicate()
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_a_submission_that_never_arrived_is_failed_after_its_deadline(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    session, _ = await session_and_draft(nemo)
    home = tmp_path / "home"
    store = JobStore(home)
    # What export() records before its request, as a crash before the request left it,
    # longer ago than the submission deadline.
    long_ago = time.time() - SUBMISSION_DEADLINE - 60
    listed, waited = fresh_render_id(), fresh_render_id()
    for job_id in (listed, waited):
        await store.put(
            JobRecord(id=job_id, session_id=session.id, base_url=emu.url, created_at=long_ago)
        )

    # Listing settles it: failed, with the reason, in the store too.
    records = {r.id: r for r in await nemo.jobs()}
    assert (records[listed].status, records[listed].error) == ("failed", NEVER_RECEIVED)
    assert (records[waited].status, records[waited].error) == ("failed", NEVER_RECEIVED)
    with pytest.raises(nemo_sync.RenderFailedError) as caught:
        await nemo.render_job(listed).wait(poll_interval=0.02)
    assert caught.value.reason == NEVER_RECEIVED

    # `jobs wait` settles one nobody listed: one line, no 404, no traceback.
    late = fresh_render_id()
    await store.put(
        JobRecord(id=late, session_id=session.id, base_url=emu.url, created_at=long_ago)
    )
    code, out, err = await run_cli("--base-url", emu.url, "--home", str(home), "jobs", "wait", late)
    assert code == 1
    assert err.splitlines() == [f"error: render {late} failed: {NEVER_RECEIVED}"]
    code, out, err = await run_cli("--base-url", emu.url, "--home", str(home), "jobs")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert f"failed     session {session.id}  ({NEVER_RECEIVED})" in lines[late]
    assert err == ""


async def test_before_its_deadline_a_missing_submission_is_not_known_yet(
    emu: Emulator, nemo: NemoClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session, _ = await session_and_draft(nemo)
    home = tmp_path / "home"
    job_id = fresh_render_id()
    await JobStore(home).put(JobRecord(id=job_id, session_id=session.id, base_url=emu.url))
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        [record] = await nemo.jobs()
        result = await nemo.render_job(job_id).status()
    assert record.status == "submitting"  # the request may still arrive: left as it was
    assert (result.status, result.done) == ("submitting", False)
    said = warnings_of(caplog)
    assert len(said) == 2  # one per look (each RenderJob says it once)
    assert f"render {job_id} (submitting in {home / 'jobs.json'} since" in said[0]
    assert "is not known to the service yet; it counts as failed if" in said[0]


async def test_a_job_of_another_api_is_not_settled_by_this_ones_404(
    emu: Emulator, nemo: NemoClient, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    long_ago = time.time() - SUBMISSION_DEADLINE - 60
    await JobStore(home).put(
        JobRecord(
            id="render_1", session_id="s", base_url="https://api.example", created_at=long_ago
        )
    )
    [record] = await nemo.jobs()
    assert record.status == "submitting"
    assert not [r for r in emu.requests if r.path.endswith("/render_1")]


@pytest.mark.parametrize(
    ("recorded", "current", "same"),
    [
        (None, "https://api.example", True),  # an older record, from before base_url was kept
        ("https://api.example", "https://api.example", True),
        ("https://staging.example", "https://api.example", False),
        # The --local emulator listens on a new port in each process, over the same state.
        ("http://127.0.0.1:41001", "http://127.0.0.1:52002", True),
        ("http://localhost:41001", "http://127.0.0.1:52002", True),
        ("http://127.0.0.1:41001/v2", "http://127.0.0.1:52002", False),
        ("http://127.0.0.1:41001", "http://api.example:41001", False),
    ],
)
def test_which_recorded_jobs_this_api_may_settle(
    recorded: str | None, current: str, same: bool
) -> None:
    from nemo_sync._render_job import same_service

    assert same_service(recorded, current) is same
