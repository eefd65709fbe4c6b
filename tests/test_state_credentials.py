"""Credentials, the client id and the CLI's last session survive damage (issue 24).

Before: a damaged credentials.json made the SDK ask for a new token with the same client id,
the service (and the local emulator) answered 429 for 7 days, and the SDK waited 60 s in
silence before failing, on every command; a FIFO client id hung the command; a last-session
file of the wrong shape raised TypeError; a read-only home failed with [Errno 30] although a
valid token was there. Every case here ends at once, with one line naming the file and what
was done, and the user's sessions are still theirs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync._credentials import CredentialStore
from nemo_sync._retry import describe_wait
from nemo_sync.emulator import Emulator
from nemo_sync.local import SampleMedia, make_sample_media
from tests.scripted import ScriptedServer, credits_reply, envelope

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX files: FIFOs, modes, links")

CREDITS = ("GET", "/api/credits/balance/simple")
TOKEN = ("POST", "/api/auth/anonymous-token")
ROOT = os.geteuid() == 0
# A command that meets damage must end well within this (before: 60 s of silent waiting).
PROMPTLY = 10.0
A_WEEK_LESS_A_LITTLE = "604681"


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=3.0)


def _nemo_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nemo_sync" and r.levelno >= logging.WARNING
    ]


def _aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def _valid(client_id: str = "cid-1", token: str = "stored-token", **extra: object) -> bytes:
    body = {"client_id": client_id, "token": token, "expires_at": time.time() + 86400, **extra}
    return json.dumps(body).encode()


def _machine_id(tmp_path: Path) -> Path:
    """The shared client id file, as the conftest points XDG_CONFIG_HOME."""
    return tmp_path / "xdg-config" / "nemovideo" / "client_id"


# -- damaged credentials.json, in the SDK -----------------------------------------------------

DAMAGE: dict[str, bytes] = {
    "empty": b"",
    "truncated": b'{"client_id": "cid-1", "token": "stor',
    "garbage": b"\x00\xff\xfe not json at all \x1b[31m",
    "a list": b'["cid-1", "stored-token"]',
    "client id a number": b'{"client_id": 5}',
    "no client id": b'{"token": "stored-token"}',
    "token a number": b'{"client_id": "cid-1", "token": 12345}',
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
async def test_damaged_credentials_are_moved_aside_whole_and_a_new_token_is_used(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    path = home / "credentials.json"
    path.write_bytes(damage)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
    assert api.count(*TOKEN) == 1
    assert json.loads(path.read_text())["token"] == "tok-1"
    [aside] = _aside(path)
    assert aside.read_bytes() == damage  # kept whole: nothing the user had is lost
    [line] = _nemo_warnings(caplog)
    assert str(path) in line
    assert f"moved aside to {aside.name}" in line


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink"])
async def test_a_credentials_path_that_is_no_file_is_moved_aside_without_a_hang(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    path = home / "credentials.json"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(_valid(token="planted-token"))
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes to it: a plain open() would wait forever
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(elsewhere)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
    assert api.seen[-1].headers["Authorization"] == "Bearer tok-1"
    assert stat.S_ISREG(path.lstat().st_mode)
    [aside] = _aside(path)
    assert (
        stat.S_IFMT(aside.lstat().st_mode)
        == {
            "fifo": stat.S_IFIFO,
            "folder": stat.S_IFDIR,
            "symlink": stat.S_IFLNK,
        }[kind]
    )
    assert json.loads(elsewhere.read_text())["token"] == "planted-token"  # not written through
    [line] = _nemo_warnings(caplog)
    assert str(path) in line
    assert aside.name in line


async def test_fields_a_newer_version_wrote_are_kept_when_the_token_is_renewed(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    path = home / "credentials.json"
    body = {"client_id": "cid-1", "token": "old", "expires_at": 1.0, "refresh": {"n": 2}}
    path.write_text(json.dumps(body))
    path.chmod(0o600)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
        assert "'refresh'" in repr(nemo._auth._current)  # type: ignore[attr-defined]
        assert "{'n': 2}" not in repr(nemo._auth._current)  # type: ignore[attr-defined]
    saved = json.loads(path.read_text())
    assert (saved["token"], saved["refresh"]) == ("tok-1", {"n": 2})
    assert _nemo_warnings(caplog) == []
    assert _aside(path) == []


async def test_a_wrong_type_in_a_field_the_token_does_not_need_is_reported_and_the_token_used(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    path = home / "credentials.json"
    path.write_text(json.dumps({"client_id": "cid-1", "token": "stored", "expires_at": "soon"}))
    path.chmod(0o600)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
    assert api.count(*TOKEN) == 0  # still the user's token: a lost token may cost 7 days
    assert api.seen[-1].headers["Authorization"] == "Bearer stored"
    [line] = _nemo_warnings(caplog)
    assert str(path) in line
    assert "expires_at" in line


def test_loading_alone_never_moves_a_file_and_never_raises(tmp_path: Path) -> None:
    """Reading without the lock must not move a file another process may be replacing."""
    store = CredentialStore(tmp_path)
    store.path.write_bytes(b"{not json")
    assert store.load() is None
    assert store.path.read_bytes() == b"{not json"
    assert store.read().problem == "it is not JSON"


# -- damaged or rejected credentials against the real service: never a silent lock-out -------


def _rate_limited(retry_after: str) -> web.Response:
    return envelope(
        None,
        code=429,
        message="one anonymous token per client id per 7 days",
        status=429,
        headers={"Retry-After": retry_after},
    )


async def test_a_week_long_retry_after_fails_at_once_saying_the_wait_and_the_ways_back(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited(A_WEEK_LESS_A_LITTLE))
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        with pytest.raises(nemo_sync.RateLimitError) as caught:
            await nemo.credits()
    assert waits == []  # before: 60 s of silence, then the same failure
    assert api.count(*TOKEN) == 1
    message = str(caught.value)
    assert "about 7 days" in message
    assert "cid-1" in message
    assert "register" in message
    assert "NEMO_CLIENT_ID=" in message
    assert "10 anonymous tokens per IP" in message
    assert caught.value.retry_after == float(A_WEEK_LESS_A_LITTLE)
    assert caught.value.status == 429


async def test_a_rejected_token_whose_replacement_is_refused_for_a_week_fails_at_once(
    api: ScriptedServer, tmp_path: Path, waits: list[float]
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_bytes(_valid(token="revoked"))
    (home / "credentials.json").chmod(0o600)
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited(A_WEEK_LESS_A_LITTLE))
    api.reply(*CREDITS, lambda: envelope(None, code=1001, message="invalid token", status=401))
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        with pytest.raises(nemo_sync.RateLimitError, match="about 7 days"):
            await nemo.credits()
    assert waits == [0.0]  # the re-auth after the 1001, and no wait for the week
    assert (api.count(*CREDITS), api.count(*TOKEN)) == (1, 1)


async def test_any_call_with_a_retry_after_past_the_cap_fails_at_once_in_words(
    api: ScriptedServer, waits: list[float]
) -> None:
    api.reply(*CREDITS, lambda: _rate_limited("12000"))
    async with NemoClient(base_url=api.url, token="users-own") as nemo:
        with pytest.raises(nemo_sync.RateLimitError) as caught:
            await nemo.credits()
    assert waits == []
    assert api.count(*CREDITS) == 1
    assert "3 hours 20 minutes" in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (61, "about 1 minute"),
        (12000, "3 hours 20 minutes"),
        (3600, "1 hour"),
        (86400 + 2 * 3600, "1 day 2 hours"),
        (604681, "about 7 days"),
        (604800, "7 days"),
    ],
)
def test_waits_in_words(seconds: float, words: str) -> None:
    assert describe_wait(seconds) == words


async def test_against_the_service_emulated_damaged_credentials_end_at_once_with_the_ways_back(
    tmp_path: Path, waits: list[float]
) -> None:
    """The emulator's default is the service's rule: one token per client id per 7 days."""
    home = tmp_path / "nemo-home"
    async with Emulator() as emu:
        async with NemoClient(base_url=emu.url, home=home) as nemo:
            session = await nemo.create_session()
        (home / "credentials.json").write_bytes(b"\x00" * 40)  # a crash left zeros
        async with NemoClient(base_url=emu.url, home=home) as nemo:
            with pytest.raises(nemo_sync.RateLimitError, match=r"in (about )?7 days \(") as caught:
                await nemo.credits()
    assert waits == []
    assert "NEMO_CLIENT_ID=" in str(caught.value)
    assert session.id in emu.sessions  # the account and its sessions are still there


# -- the local emulator is the user's own: it lets them back in ------------------------------


async def test_reissue_anonymous_tokens_gives_the_same_account_a_fresh_token(
    tmp_path: Path,
) -> None:
    async with Emulator(reissue_anonymous_tokens=True) as emu:
        async with NemoClient(base_url=emu.url, client_id="c-1", home=tmp_path / "1") as first:
            session = await first.create_session()
            emu.account("c-1").available = 42  # credits spent: the second sees this account
        # A second process whose credentials were lost asks again within the week.
        async with NemoClient(base_url=emu.url, client_id="c-1", home=tmp_path / "2") as second:
            assert (await second.credits()).available == 42
            assert (await second.session(session.id).state()).draft is not None
        assert len([t for t in emu.state.tokens.values() if t.account.client_id == "c-1"]) == 2


async def test_the_service_default_still_refuses_a_second_token_in_the_week(
    tmp_path: Path,
) -> None:
    async with Emulator() as emu:
        async with NemoClient(base_url=emu.url, client_id="c-1", home=tmp_path / "1") as first:
            await first.credits()
        async with NemoClient(base_url=emu.url, client_id="c-1", home=tmp_path / "2") as second:
            with pytest.raises(nemo_sync.RateLimitError):
                await second.credits()


# -- the client id file ------------------------------------------------------------------------

CLIENT_ID_DAMAGE: dict[str, bytes] = {
    "empty": b"",
    "garbage": b"\x00\xffnot an id!\n",
    "json": b'{"client_id": 5}',
    "huge": b"a" * 100_000,
}


@pytest.mark.parametrize("damage", CLIENT_ID_DAMAGE.values(), ids=CLIENT_ID_DAMAGE.keys())
async def test_a_damaged_client_id_is_moved_aside_and_the_saved_identity_kept(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    shared = _machine_id(tmp_path)
    shared.parent.mkdir(parents=True)
    shared.write_bytes(damage)
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_bytes(_valid(client_id="machine-1"))
    (home / "credentials.json").chmod(0o600)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    # The id of the saved token went back into the file: the same client, no token spent.
    assert api.count(*TOKEN) == 0
    assert shared.read_text() == "machine-1\n"
    [aside] = _aside(shared)
    assert aside.read_bytes() == damage
    [line] = _nemo_warnings(caplog)
    assert str(shared) in line
    assert aside.name in line


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
async def test_a_client_id_that_is_no_file_never_hangs(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    shared = _machine_id(tmp_path)
    shared.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(shared)
    else:
        (tmp_path / "planted").write_text("someone-elses-id\n")
        shared.symlink_to(tmp_path / "planted")
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    made = shared.read_text().strip()
    assert api.seen[0].headers["X-Client-Id"] == made != "someone-elses-id"
    assert stat.S_ISREG(shared.lstat().st_mode)
    [aside] = _aside(shared)
    [line] = _nemo_warnings(caplog)
    assert aside.name in line


# -- a read-only home, or one where the lock cannot be made -----------------------------------


def _lock_cannot_be_made(home: Path) -> None:
    """Works as root too: a folder where the lock file goes cannot be opened as a file."""
    (home / "credentials.lock").mkdir()


async def test_a_valid_token_is_read_without_the_lock(api: ScriptedServer, tmp_path: Path) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_bytes(_valid())
    (home / "credentials.json").chmod(0o600)
    _lock_cannot_be_made(home)
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
    assert api.count(*TOKEN) == 0
    assert api.seen[-1].headers["Authorization"] == "Bearer stored-token"


async def test_a_token_that_cannot_be_kept_is_not_asked_for(
    api: ScriptedServer, tmp_path: Path
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    _lock_cannot_be_made(home)
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        with pytest.raises(nemo_sync.ConfigurationError) as caught:
            await nemo.credits()
    # A token fetched and then lost would cost the client id its week: none is fetched.
    assert api.count(*TOKEN) == 0
    message = str(caught.value)
    assert str(home / "credentials.lock") in message
    assert "NEMO_HOME" in message
    assert "\n" not in message


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions")
async def test_a_read_only_home_with_a_valid_token_works(
    api: ScriptedServer, tmp_path: Path
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_bytes(_valid())
    (home / "credentials.json").chmod(0o600)
    home.chmod(0o500)
    api.reply(*CREDITS, credits_reply)
    try:
        async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
            await nemo.credits()
    finally:
        home.chmod(0o700)
    assert api.seen[-1].headers["Authorization"] == "Bearer stored-token"


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions")
async def test_a_read_only_home_without_a_token_says_so_in_one_line(
    api: ScriptedServer, tmp_path: Path
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    home.chmod(0o500)
    try:
        async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
            with pytest.raises(nemo_sync.ConfigurationError, match=r"credentials\.lock"):
                await nemo.credits()
    finally:
        home.chmod(0o700)
    assert api.count(*TOKEN) == 0


_CHILD = """
import asyncio, sys
import nemo_sync

async def main():
    async with nemo_sync.NemoClient(base_url=sys.argv[1], home=sys.argv[2], client_id="cid-1") as n:
        try:
            await n.credits()
        except nemo_sync.ConfigurationError as exc:
            print(exc)
            sys.exit(3)

asyncio.run(main())
"""


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1) for a private mount")
@pytest.mark.parametrize("saved", [True, False], ids=["valid-token", "no-token"])
async def test_a_read_only_file_system_home_even_as_root(
    api: ScriptedServer, tmp_path: Path, saved: bool
) -> None:
    """EROFS, the [Errno 30] of the issue, which root meets too: a read-only bind mount of the
    home in a mount namespace of the child's own (nothing outside it sees the mount)."""
    home = tmp_path / "nemo-home"
    home.mkdir()
    if saved:
        (home / "credentials.json").write_bytes(_valid())
        (home / "credentials.json").chmod(0o600)
    api.reply(*CREDITS, credits_reply)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 99; shift; exec "$@"'
    child = await asyncio.create_subprocess_exec(
        "unshare",
        "-m",
        "sh",
        "-c",
        script,
        "sh",
        str(home),
        sys.executable,
        "-c",
        _CHILD,
        api.url,
        str(home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), PROMPTLY)
    if child.returncode == 99 or b"unshare failed" in err:
        pytest.skip("no private mounts here (needs CAP_SYS_ADMIN)")
    assert b"Traceback" not in err
    if saved:
        assert child.returncode == 0, err
        assert api.seen[-1].headers["Authorization"] == "Bearer stored-token"
    else:
        assert child.returncode == 3, err
        [line] = out.decode().splitlines()
        assert "Read-only file system" in line
        assert str(home / "credentials.lock") in line
    assert api.count(*TOKEN) == 0
    assert not (home / "credentials.lock").exists()


async def test_a_full_disk_after_the_token_came_keeps_it_for_this_process(
    api: ScriptedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("nemo_sync._credentials.write_private", full)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, client_id="cid-1") as nemo:
        await nemo.credits()
        await nemo.credits()
    assert api.count(*TOKEN) == 1
    [line] = _nemo_warnings(caplog)
    assert "credentials.json" in line
    assert "No space left on device" in line
    assert "tok-1" not in caplog.text


# -- the command line: real processes ----------------------------------------------------------


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_sync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _no_trace(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr
    assert "unexpected" not in done.stderr
    assert "Errno" not in done.stderr


def _upload(media: SampleMedia, tmp_path: Path, home: Path) -> str:
    done = run("--local", "--json", "upload", str(media.music), cwd=tmp_path, env=_home(home))
    assert done.returncode == 0, done.stderr
    session_id: str = json.loads(done.stdout)["session_id"]
    return session_id


def _home(home: Path) -> dict[str, str]:
    return {"NEMO_HOME": str(home)}


def _state(tmp_path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`nemo-sync --local --json state`, which must end promptly (a hang fails the test)."""
    return run("--local", "--json", "state", cwd=tmp_path, env=_home(home), timeout=PROMPTLY)


def _revoked(home: Path) -> bytes:
    saved = json.loads((home / "local" / "credentials.json").read_text())
    return _valid(client_id=saved["client_id"], token="nmv_usr_the-server-forgot-this-one")


LOCAL_DAMAGE: dict[str, Callable[[Path], bytes]] = {
    "emptied": lambda _home: b"",
    "garbage": lambda _home: b"\x00\x00\x00\x00garbage",
    "wrong shape": lambda _home: b'{"client_id": 5}',
    "a token the server rejects": _revoked,
}


@pytest.mark.parametrize("damage", LOCAL_DAMAGE.values(), ids=LOCAL_DAMAGE.keys())
def test_local_damaged_credentials_the_next_command_works_and_the_session_is_still_there(
    media: SampleMedia, tmp_path: Path, damage: Callable[[Path], bytes]
) -> None:
    home = tmp_path / "h"
    session_id = _upload(media, tmp_path, home)
    credentials = home / "local" / "credentials.json"
    credentials.write_bytes(damage(home))
    done = _state(tmp_path, home)
    assert done.returncode == 0, done.stderr
    _no_trace(done)
    shown = json.loads(done.stdout)
    assert shown["session_id"] == session_id
    assert [m["name"] for m in shown["media"]] == ["beat.wav"]
    lines = done.stderr.splitlines()
    if _aside(credentials):  # the damaged file: one line says where it went
        [line] = lines
        assert str(credentials) in line
        assert _aside(credentials)[0].name in line
    else:  # a well-formed file whose token was refused is simply replaced
        assert lines == []
    # And the command after that needs nothing new.
    again = _state(tmp_path, home)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""


def test_local_a_fifo_client_id_never_hangs_a_command(media: SampleMedia, tmp_path: Path) -> None:
    home = tmp_path / "h"
    session_id = _upload(media, tmp_path, home)
    shared = _machine_id(tmp_path)
    shared.unlink()
    os.mkfifo(shared)
    done = _state(tmp_path, home)
    assert done.returncode == 0, done.stderr
    _no_trace(done)
    assert json.loads(done.stdout)["session_id"] == session_id
    [line] = done.stderr.splitlines()
    assert str(shared) in line
    assert _aside(shared)[0].name in line


LAST_SESSION_DAMAGE: dict[str, bytes] = {
    "sessions a list": b'{"sessions": []}',
    "a list": b"[]",
    "an entry a number": b'{"sessions": {"local": 5}}',
    "garbage": b"\x00garbage",
    "truncated": b'{"sessions": {"local": {"id": "ab',
}


@pytest.mark.parametrize("damage", LAST_SESSION_DAMAGE.values(), ids=LAST_SESSION_DAMAGE.keys())
def test_local_a_damaged_last_session_file_is_moved_aside_and_upload_works(
    media: SampleMedia, tmp_path: Path, damage: bytes
) -> None:
    home = tmp_path / "h"
    last = home / "local" / "cli-state.json"
    last.parent.mkdir(parents=True)
    last.write_bytes(damage)
    done = run(
        "--local",
        "--json",
        "upload",
        str(media.music),
        cwd=tmp_path,
        env=_home(home),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    _no_trace(done)
    [aside] = _aside(last)
    assert aside.read_bytes() == damage
    [line] = [line for line in done.stderr.splitlines() if "cli-state.json" in line]
    assert str(last) in line
    assert aside.name in line
    remembered = json.loads(last.read_text())["sessions"]["local"]["id"]
    assert remembered == json.loads(done.stdout)["session_id"]


def test_local_unknown_fields_in_the_last_session_file_are_kept(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "h"
    last = home / "local" / "cli-state.json"
    last.parent.mkdir(parents=True)
    last.write_text(
        json.dumps({"theme": "dark", "sessions": {"https://other": {"id": "s-1", "pin": 1}}})
    )
    done = run("--local", "upload", str(media.music), cwd=tmp_path, env=_home(home))
    assert done.returncode == 0, done.stderr
    kept = json.loads(last.read_text())
    assert kept["theme"] == "dark"
    assert kept["sessions"]["https://other"] == {"id": "s-1", "pin": 1}
    assert "local" in kept["sessions"]


@pytest.mark.parametrize("local", [False, True], ids=["service", "local"])
def test_logout_on_garbage_succeeds_and_keeps_the_garbage_aside(
    tmp_path: Path, local: bool
) -> None:
    home = tmp_path / "h"
    folder = home / "local" if local else home
    folder.mkdir(parents=True)
    credentials = folder / "credentials.json"
    credentials.write_bytes(b"\x00garbage")
    flags = ["--local"] if local else []
    done = run(*flags, "logout", cwd=tmp_path, env=_home(home), timeout=PROMPTLY)
    assert done.returncode == 0, done.stderr
    _no_trace(done)
    assert not credentials.exists()
    [aside] = _aside(credentials)
    assert aside.read_bytes() == b"\x00garbage"
    assert str(credentials) in done.stdout
    assert aside.name in done.stdout


def test_local_logout_on_garbage_signs_the_machine_out_so_login_works_at_once(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "h"
    session_id = _upload(media, tmp_path, home)
    (home / "local" / "credentials.json").write_bytes(b"garbage")
    done = run("--local", "logout", cwd=tmp_path, env=_home(home), timeout=PROMPTLY)
    assert done.returncode == 0, done.stderr
    after = _state(tmp_path, home)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["session_id"] == session_id


def test_local_a_lock_that_cannot_be_made_does_not_stop_reading(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "h"
    session_id = _upload(media, tmp_path, home)
    (home / "local" / "credentials.lock").unlink(missing_ok=True)
    (home / "local" / "credentials.lock").mkdir()
    done = _state(tmp_path, home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session_id"] == session_id


def test_local_a_write_that_cannot_happen_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / "local" / "credentials.lock").mkdir(parents=True)
    done = run("--local", "credits", cwd=tmp_path, env=_home(home), timeout=PROMPTLY)
    assert done.returncode == 1
    _no_trace(done)
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert str(home / "local" / "credentials.lock") in line


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions")
def test_local_a_read_only_home_with_a_valid_token_reads(
    media: SampleMedia, tmp_path: Path
) -> None:
    home = tmp_path / "h"
    session_id = _upload(media, tmp_path, home)
    (home / "local" / "credentials.lock").unlink(missing_ok=True)
    (home / "local").chmod(0o500)  # the emulator's own folder beneath stays writable
    try:
        done = _state(tmp_path, home)
    finally:
        (home / "local").chmod(0o700)
    assert done.returncode == 0, done.stderr
    _no_trace(done)
    assert json.loads(done.stdout)["session_id"] == session_id


async def test_cli_a_week_long_rate_limit_fails_at_once_with_the_ways_back(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.clear(*TOKEN)
    api.reply(*TOKEN, lambda: _rate_limited(A_WEEK_LESS_A_LITTLE))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nemo_sync",
        "--base-url",
        api.url,
        "credits",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(child.communicate(), PROMPTLY)
    assert child.returncode == 1
    text = err.decode()
    assert "Traceback" not in text
    [line] = text.splitlines()
    assert line.startswith("error: ")
    assert "about 7 days" in line
    assert "NEMO_CLIENT_ID=" in line
    assert api.count(*TOKEN) == 1
