"""The `--local` backend's state on disk survives crashes, damage and full disks (issue 24).

From the user's side: a `--local` command run on a folder in the state a crash, a bad disk,
another version or a full disk left it. The database is a real one made by `--local`
commands, then damaged the way disks damage files; the kills are real SIGKILLs; the full
disk is a real 2 MB tmpfs where one can be mounted, else a real file-size limit (EFBIG).
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._rows import describe
from nemo_sync.emulator._store_admin import DB_FILE, ORPHAN_GRACE_SECONDS
from nemo_sync.local import SampleMedia, make_sample_media
from tests.render_doubles import BytesRenderBackend
from tests.test_local_backend import _chat, _env, cli, cli_json, spawn

PAGE = 4096  # SQLite's default page size, the emulator's


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=2.0)


def data_dir(home: Path) -> Path:
    return home / "local" / "emulator"


def set_aside(home: Path) -> list[Path]:
    """The damaged databases moved aside (not their -wal and -shm)."""
    found = data_dir(home).glob(f"{DB_FILE}.damaged-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


def rows(path: Path) -> list[tuple[str, str, int, dict[str, Any]]]:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT kind, key, rev, body FROM records ORDER BY rowid").fetchall()
    return [(kind, key, rev, json.loads(body)) for kind, key, rev, body in found]


def counts(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for kind, *_ in rows(path):
        found[kind] = found.get(kind, 0) + 1
    return found


def root_page(path: Path, name: str) -> int:
    with sqlite3.connect(path) as db:
        (page,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)
        ).fetchone()
    return int(page)


def overwrite_page(path: Path, number: int) -> None:
    """A page of garbage, as a bad sector or a stray write leaves it."""
    with path.open("r+b") as f:
        f.seek((number - 1) * PAGE)
        f.write(b"\xff" * PAGE)


def wav_bytes(seconds: float, rate: int = 44100) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buffer.getvalue()


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert "unexpected" not in done.stderr, done.stderr


# -- a damaged database ----------------------------------------------------------------


def test_a_database_truncated_to_half_is_set_aside_and_the_next_command_works(
    media: SampleMedia, tmp_path: Path
) -> None:
    """The issue's case: a real database cut to half its size. A small one keeps its rows
    at its end, so nothing of them survives: the command says so, and goes on."""
    home = tmp_path / "home"
    cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    db = data_dir(home) / DB_FILE
    half = db.read_bytes()[: db.stat().st_size // 2]
    db.write_bytes(half)

    state = cli("state", home=home, cwd=tmp_path)
    no_traceback(state)
    [copy] = set_aside(home)
    assert copy.read_bytes() == half  # moved aside whole, nothing lost
    said = state.stderr.splitlines()[0]
    assert said.startswith(f"{db} was damaged (database disk image is malformed)")
    assert f"moved aside to {copy.name} and started a new one: kept nothing" in said
    assert "session" not in counts(db)  # (the command signed in again: a new account)
    # The session's rows did not survive: a clear error, not a crash.
    assert state.returncode == 1
    assert "session was not found" in state.stderr
    # Every later command works on the new database.
    assert cli_json("credits", home=home, cwd=tmp_path)["available"] == 100
    assert len(set_aside(home)) == 1


async def test_a_truncated_database_keeps_the_sessions_whose_rows_survived(
    media: SampleMedia, tmp_path: Path
) -> None:
    """A database that grew after the session was made: cut to half, the session's pages
    are in the half that is left, so `state` shows it as it was."""
    home = tmp_path / "home"
    made = cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    before = cli_json("state", home=home, cwd=tmp_path)
    # Forty more sessions, by another account, written after it.
    async with Emulator(data_dir=data_dir(home), render_backend=None) as emu:
        async with NemoClient(
            base_url=emu.url, home=tmp_path / "other", client_id="another-machine"
        ) as nemo:
            for _ in range(40):
                await (await nemo.create_session()).upload(media.music)
    db = data_dir(home) / DB_FILE
    size = db.stat().st_size
    os.truncate(db, size // 2)

    state = cli("--json", "state", home=home, cwd=tmp_path)
    no_traceback(state)
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout) == before
    assert json.loads(state.stdout)["session_id"] == made["session_id"]
    said = state.stderr.splitlines()[0]
    kept = counts(db)
    assert 1 < kept["session"] < 41  # some of the later sessions were in the lost half
    assert f"and started a new one: kept {describe(kept)}; " in said
    assert "could not be read" in said  # the later rows, in the half that was cut off


@pytest.mark.parametrize("page", ["records_rev", "records"], ids=["an index page", "a root page"])
def test_a_garbled_page_keeps_every_record_that_reads(
    media: SampleMedia, tmp_path: Path, page: str
) -> None:
    """Malformed pages: an index page (nothing of the records is on it), or the records
    table's root (its leaves are found without it): every record is kept."""
    home = tmp_path / "home"
    cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    before = cli_json("state", home=home, cwd=tmp_path)
    db = data_dir(home) / DB_FILE
    stored = counts(db)
    overwrite_page(db, root_page(db, page))

    state = cli("--json", "state", home=home, cwd=tmp_path)
    no_traceback(state)
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout) == before
    assert counts(db) == stored
    assert (stored["session"], stored["media"]) == (1, 2)
    assert f"and started a new one: kept {describe(stored)}\n" in state.stderr
    assert "could not be read" not in state.stderr


def test_a_file_that_is_not_a_database_is_set_aside(media: SampleMedia, tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = data_dir(home) / DB_FILE
    db.parent.mkdir(parents=True)
    junk = b"these are not the pages you are looking for\n" * 200
    db.write_bytes(junk)
    done = cli("--json", "upload", str(media.music), home=home, cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    [copy] = set_aside(home)
    assert copy.read_bytes() == junk
    assert "(file is not a database)" in done.stderr
    assert "started a new one: kept nothing" in done.stderr
    assert counts(db)["media"] == 1


def _write_and_die(path: Path) -> None:
    """Write a row and die without closing: the row is only in the -wal, as after a kill."""
    code = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA wal_autocheckpoint=0')\n"
        "db.execute('INSERT INTO records VALUES (?, ?, 99, ?)', ('note', 'n1', sys.argv[2]))\n"
        "os._exit(0)\n"
    )
    note = json.dumps({"text": "hi"})
    subprocess.run([sys.executable, "-c", code, str(path), note], check=True, timeout=60)


def test_the_log_moves_aside_with_the_database_and_its_rows_are_read(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    cli_json("upload", str(media.music), home=home, cwd=tmp_path)
    db = data_dir(home) / DB_FILE
    _write_and_die(db)
    assert Path(f"{db}-wal").stat().st_size > 0
    overwrite_page(db, root_page(db, "records"))  # in the file; the log has the new leaf

    done = cli("credits", home=home, cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    [copy] = set_aside(home)
    assert Path(f"{copy}-wal").stat().st_size > 0  # the companions went with it
    assert Path(f"{copy}-shm").exists()
    # The row that was only in the log is in the new database.
    assert [r for r in rows(db) if r[0] == "note"] == [("note", "n1", 1, {"text": "hi"})]
    assert "1 note" in done.stderr


# -- reset always works ----------------------------------------------------------------


def _truncated(home: Path) -> None:
    db = data_dir(home) / DB_FILE
    os.truncate(db, db.stat().st_size // 2)


def _not_a_database(home: Path) -> None:
    (data_dir(home) / DB_FILE).write_bytes(b"garbage" * 1000)


def _folder_for_database(home: Path) -> None:
    db = data_dir(home) / DB_FILE
    db.unlink()
    (db / "inside").mkdir(parents=True)
    (db / "inside" / "file").write_text("x")


def _fifo_for_database(home: Path) -> None:
    db = data_dir(home) / DB_FILE
    db.unlink()
    os.mkfifo(db)


def _garbage_log(home: Path) -> None:
    db = data_dir(home) / DB_FILE
    Path(f"{db}-wal").write_bytes(b"\x01" * 10_000)
    Path(f"{db}-shm").write_bytes(b"\x02" * 32_768)


def _file_for_media(home: Path) -> None:
    media = data_dir(home) / "media"
    for path in media.iterdir():
        path.unlink()
    media.rmdir()
    media.write_text("a file where the media folder should be")


def _file_for_data_folder(home: Path) -> None:
    import shutil

    shutil.rmtree(data_dir(home))
    data_dir(home).write_text("a file where the folder should be")


def _file_for_local_folder(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "local")
    (home / "local").write_text("a file where the local folder should be")


def _no_data_folder(home: Path) -> None:
    import shutil

    shutil.rmtree(data_dir(home))


def _set_aside_earlier(home: Path) -> None:
    _truncated(home)
    assert cli("credits", home=home, cwd=home.parent).returncode == 0
    assert set_aside(home)


@pytest.mark.parametrize(
    "damage",
    [
        _truncated,
        _not_a_database,
        _folder_for_database,
        _fifo_for_database,
        _garbage_log,
        _file_for_media,
        _file_for_data_folder,
        _file_for_local_folder,
        _no_data_folder,
        _set_aside_earlier,
    ],
    ids=lambda f: f.__name__.strip("_").replace("_", " "),
)
def test_reset_works_whatever_state_the_folder_is_in(
    media: SampleMedia, tmp_path: Path, damage: Any
) -> None:
    home = tmp_path / "home"
    cli_json("upload", str(media.music), home=home, cwd=tmp_path)
    damage(home)
    done = cli("--json", "reset", home=home, cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["problems"] == []
    # A sound database is emptied (running emulators see that); a damaged one is gone.
    db = data_dir(home) / DB_FILE
    assert not db.exists() or counts(db) == {}
    assert not list(data_dir(home).glob(f"{DB_FILE}.damaged-*"))
    assert not list(data_dir(home).glob("media/*"))
    assert not (home / "local" / "credentials.json").exists()
    # And the local backend works again, from scratch.
    assert cli_json("credits", home=home, cwd=tmp_path)["available"] == 100


def test_reset_says_what_it_removed_from_a_damaged_folder(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    earlier = data_dir(home) / f"{DB_FILE}.damaged-20250101T000000Z"
    earlier.write_bytes(b"a copy set aside by an earlier recovery")
    _not_a_database(home)
    done = cli_json("reset", home=home, cwd=tmp_path)
    removed = sorted(Path(p).name for p in done["files"])
    assert removed == sorted(["credentials.json", "cli-state.json", DB_FILE, earlier.name])
    assert done["removed"] == {"files": 2}  # the two uploads; no record could be counted
    assert not [p for p in data_dir(home).iterdir() if p.name.startswith(DB_FILE)]


# -- records written by a newer version -------------------------------------------------


def test_records_of_a_newer_version_are_kept_and_ignored(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    made = cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    db = data_dir(home) / DB_FILE
    with sqlite3.connect(db) as conn:
        # A record kind this version does not know, and fields it does not know.
        conn.execute(
            "INSERT INTO records VALUES ('playlist', 'pl_1', 1, ?)",
            (json.dumps({"name": "mine", "items": [1, 2]}),),
        )
        for kind, extra in (("account", {"plan": "pro"}), ("session", {"tags": ["trip"]})):
            (key, body) = conn.execute(
                "SELECT key, body FROM records WHERE kind = ?", (kind,)
            ).fetchone()
            conn.execute(
                "UPDATE records SET body = ? WHERE kind = ? AND key = ?",
                (json.dumps({**json.loads(body), **extra}), kind, key),
            )
        conn.execute("PRAGMA user_version = 7")

    # An edit (the session and the account's credits are written again), then an upload.
    chatted = _chat(home, tmp_path, made["session_id"], "make it 16:9 widescreen")
    no_traceback(chatted)
    assert chatted.returncode == 0, chatted.stderr
    uploaded = cli("upload", str(media.clips[1]), home=home, cwd=tmp_path)
    no_traceback(uploaded)
    assert uploaded.returncode == 0, uploaded.stderr

    stored = {(kind, key): (rev, body) for kind, key, rev, body in rows(db)}
    assert stored["playlist", "pl_1"] == (1, {"name": "mine", "items": [1, 2]})  # untouched
    [account] = [body for (kind, _), (_, body) in stored.items() if kind == "account"]
    assert account["plan"] == "pro"
    assert account["available"] == 99  # written again, with the edit's cost
    session = stored["session", made["session_id"]][1]
    assert session["tags"] == ["trip"]
    assert session["draft"]["m"]["aspect"] == "16:9"
    assert sum(1 for kind, _ in stored if kind == "media") == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (7,)  # never lowered


async def test_rows_that_do_not_read_are_skipped_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "backend"
    async with Emulator(data_dir=folder, render_backend=None) as emu:
        async with NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
    with sqlite3.connect(folder / DB_FILE) as conn:
        conn.execute("INSERT INTO records VALUES ('account', 'odd', 1, '[1, 2]')")
        conn.execute("INSERT INTO records VALUES ('token', 'tok', 1, '{\"account_id\": 5}')")
        conn.execute(
            "INSERT INTO records VALUES ('session', 's2', 1, ?)",
            (json.dumps({"account_id": "odd", "rng": "not a state"}),),
        )
    async with Emulator(data_dir=folder, render_backend=None) as emu:
        async with NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo:
            assert (await nemo.session(session.id).state()).draft is not None
        assert set(emu.sessions) == {session.id}


# -- no orphan files ---------------------------------------------------------------------


def unreferenced(home: Path) -> list[Path]:
    """The stored files no record refers to."""
    named = set()
    for kind, _, _, body in rows(data_dir(home) / DB_FILE):
        if kind == "media":
            named.add(body["path"])
        if kind == "render" and body.get("output"):
            named.add(body["output"])
    return [
        path
        for folder in ("media", "renders")
        for path in sorted((data_dir(home) / folder).glob("*"))
        if f"{folder}/{path.name}" not in named
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed meanwhile by the process starting up
        return 0


def _size_words(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / 1048576:.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def _kill_when(proc: subprocess.Popen[str], ready: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def test_uploads_and_renders_killed_midway_leave_no_orphan_files(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    made = cli_json("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
    assert _chat(home, tmp_path, made["session_id"], "sync the music").returncode == 0
    kept = sorted((data_dir(home) / "media").iterdir())
    # Large enough to be caught halfway (sparse: it costs no disk here).
    big = tmp_path / "big.mp4"
    with big.open("wb") as f:
        f.write(b"\0\0\0\x18ftypisom" + b"\0" * 52)
        f.truncate(150 * 1024 * 1024)
    media_dir, renders = data_dir(home) / "media", data_dir(home) / "renders"

    def partial_upload() -> bool:
        return any(_size(p) > 1 << 20 for p in media_dir.iterdir() if p not in kept)

    left_behind = []
    for _ in range(10):
        _kill_when(spawn("upload", str(big), home=home, cwd=tmp_path), partial_upload)
        left_behind.append(unreferenced(home))
        render = spawn(
            "export", "--wait", home=home, cwd=tmp_path, NEMO_EMULATOR_RENDER_SECONDS="3"
        )
        _kill_when(render, lambda: any(".part" in p.name for p in renders.glob("*")))
        left_behind.append(unreferenced(home))
    # Every kill left a file behind (so the test shows something): half an upload, then a
    # partial video; and each next command removed the one before's.
    for upload_kill, render_kill in zip(left_behind[::2], left_behind[1::2], strict=True):
        assert [p.parent for p in upload_kill] == [media_dir]
        assert {p.parent for p in render_kill} == {renders}

    before = unreferenced(home)
    size = sum(p.stat().st_size for p in before)
    opened = cli("-v", "credits", home=home, cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    assert f"freed {_size_words(size)} in {len(before)} file(s) nobody" in opened.stderr
    assert unreferenced(home) == []
    assert sorted(media_dir.iterdir()) == kept  # what the session holds is all still there
    assert list((data_dir(home) / "workers").iterdir()) == []


async def test_only_files_whose_writer_is_gone_or_that_are_old_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "backend"
    backend = BytesRenderBackend()
    async with Emulator(data_dir=folder, render_backend=backend) as live:
        async with NemoClient(base_url=live.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
            song = tmp_path / "song.wav"
            song.write_bytes(wav_bytes(0.5))
            uploaded = live.media_record(await session.upload(song)).path
        dead, unknown = "wrk_" + "0" * 12, "wrk_" + "1" * 12
        (folder / "workers" / dead).touch()  # what a killed process leaves: a free lock
        media, renders = folder / "media", folder / "renders"
        old = time.time() - ORPHAN_GRACE_SECONDS - 60
        files = {
            media / f"aaaa-{dead}.wav": False,  # a killed process's partial upload
            media / f"bbbb-{live.worker_id}.wav": True,  # an upload a live process writes
            media / f"eeee-{unknown}.wav": True,  # a writer nobody knows about: too young
            media / "cccc.wav": True,  # whose writer is unknown, written just now
            media / "dddd.wav": False,  # the same, written long ago
            renders / f"rnd_1.{dead}.0a0b.part.mp4": False,
            renders / f".rnd_1.{dead}.0a0b.part.mp4.1234.part.mp4": False,  # the encoder's
            renders / f"rnd_2.{live.worker_id}.0c0d.part.mp4": True,
            renders / "rnd_3.mp4": True,  # no job, but recent
            renders / "rnd_4.mp4": False,  # no job, and old
        }
        renders.mkdir(exist_ok=True)
        for path in files:
            path.write_bytes(b"x" * 1000)
        for name in ("dddd.wav", "rnd_4.mp4"):
            path = media / name if name.endswith("wav") else renders / name
            os.utime(path, (old, old))
        with caplog.at_level(logging.INFO, logger="nemo_sync.emulator"):
            async with Emulator(data_dir=folder, render_backend=backend):
                pass
    assert {path: path.exists() for path in files} == files
    assert uploaded.exists()
    assert "freed 4.9 KB in 5 file(s) nobody refers to" in caplog.text
    assert not (folder / "workers" / dead).exists()  # its lock file went after its files


# -- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB disk (a tmpfs), where this machine lets the tests mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_during_an_upload_is_a_typed_error_naming_it(
    small_disk: Path, tmp_path: Path
) -> None:
    folder = small_disk / "emulator"
    song = tmp_path / "long.wav"
    song.write_bytes(wav_bytes(40.0))  # 3.5 MB on a 2 MB disk
    async with Emulator(data_dir=folder, render_backend=None) as emu:
        async with NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
            with pytest.raises(nemo_sync.StorageFullError) as caught:
                await session.upload(song)
            error = caught.value
            assert not isinstance(error, nemo_sync.ServerError)
            assert error.status == 507
            assert f"the emulator's disk is full: {folder / 'media'}, " in error.message
            assert " MB free; free some space on it" in error.message
            assert "Try again in a moment" not in str(error)
            # Nothing half-written is left, and the upload was not sent again.
            assert list((folder / "media").iterdir()) == []
            assert len(emu.requests.matching("POST", "/api/upload-video/*")) == 1
            # What fits still goes in.
            short = tmp_path / "short.wav"
            short.write_bytes(wav_bytes(1.0))
            await session.upload(short)
            assert len(list((folder / "media").iterdir())) == 1


async def test_a_full_disk_during_a_render_fails_the_job_naming_it(
    small_disk: Path, tmp_path: Path
) -> None:
    folder = small_disk / "emulator"
    backend = BytesRenderBackend(payload=b"v" * (3 << 20))
    async with Emulator(data_dir=folder, render_backend=backend, silent_ratio=0) as emu:
        async with NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
            clip = tmp_path / "clip.mp4"
            clip.write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 52)
            await session.upload(clip)
            await session.send("make it 9:16")
            job = await session.export()
            with pytest.raises(nemo_sync.RenderFailedError) as caught:
                await job.wait(poll_interval=0.02)
    assert caught.value.reason.startswith(f"the emulator's disk is full: {folder / 'renders'}, ")
    assert [p.name for p in (folder / "renders").iterdir()] == []  # no partial video


def _limited_cli(home: Path, cwd: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with a file-size limit: a write past it fails with EFBIG, as a full disk would."""
    code = (
        "import resource, runpy, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "sys.argv = ['nemo-sync', *sys.argv[1:]]\n"
        "runpy.run_module('nemo_sync', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "--local", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("disk", ["a 2 MB tmpfs", "a file-size limit"])
def test_a_full_disk_during_a_local_upload_is_one_clear_line(
    tmp_path: Path, request: pytest.FixtureRequest, disk: str
) -> None:
    song = tmp_path / "long.wav"
    song.write_bytes(wav_bytes(40.0))
    if disk == "a 2 MB tmpfs":
        home = request.getfixturevalue("small_disk") / "home"
        done = cli("upload", str(song), home=home, cwd=tmp_path)
        words = "the emulator's disk is full"
    else:
        home = tmp_path / "home"
        done = _limited_cli(home, tmp_path, 1 << 20, "upload", str(song))
        words = "the emulator's disk takes no file this large (a file-size limit of the disk"
    no_traceback(done)
    assert done.returncode == 1
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert words in line
    assert str(data_dir(home) / "media") in line
    assert "HTTP 507" in line
    assert "Try again in a moment" not in done.stderr
    assert [p.name for p in (data_dir(home) / "media").iterdir()] == []


async def test_a_507_is_not_retried_and_not_called_temporary(
    nemo_client: NemoClient, nemo_emulator: Emulator
) -> None:
    nemo_emulator.faults.add(
        "GET /api/credits/balance/simple", status=507, message="the disk is full: /srv, 0 MB"
    )
    with pytest.raises(nemo_sync.StorageFullError, match="the disk is full: /srv") as caught:
        await nemo_client.credits()
    assert "Try again in a moment" not in str(caught.value)
    assert len(nemo_emulator.requests.matching("GET", "/api/credits/*")) == 1


# -- an error the emulator did not expect -----------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True])
def test_an_emulator_bug_is_one_line_and_its_traceback_only_with_v(
    media: SampleMedia, tmp_path: Path, verbose: bool
) -> None:
    home = tmp_path / "home"
    cli_json("credits", home=home, cwd=tmp_path)
    (data_dir(home) / "media").write_text("a file where the media folder should be")
    done = cli(*(["-v"] if verbose else []), "upload", str(media.music), home=home, cwd=tmp_path)
    assert done.returncode == 1
    assert "emulator error: FileExistsError" in done.stderr
    if verbose:
        assert "emulator error on POST /api/upload-video/" in done.stderr
        assert "Traceback" in done.stderr
    else:
        assert "Traceback" not in done.stderr
        assert [x for x in done.stderr.splitlines() if x.strip()][-1].startswith("error: ")


async def test_a_database_replaced_while_an_emulator_runs_is_read_again(
    media: SampleMedia, tmp_path: Path
) -> None:
    folder = tmp_path / "backend"
    async with Emulator(data_dir=folder, render_backend=None) as one:
        async with NemoClient(base_url=one.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
            await session.upload(media.music)
            db = folder / DB_FILE
            with sqlite3.connect(db) as other:  # everything into the file, then damage it
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            overwrite_page(db, root_page(db, "records_rev"))
            # Another process opens the folder: it replaces the damaged database.
            async with Emulator(data_dir=folder, render_backend=None):
                pass
            assert len(list(folder.glob(f"{DB_FILE}.damaged-*"))) >= 1
            # This one goes on, on the new database, with everything that was kept.
            await session.upload(media.clips[0])
            assert [m.name for m in (await session.state()).media] == ["beat.wav", "sunset.mp4"]
    assert counts(folder / DB_FILE)["media"] == 2
