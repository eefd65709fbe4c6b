"""credentials.json on disk: private modes, no symlinks followed, no token in any repr.

Issue 14, row 19: a world-readable credentials.json was used as is, a symlinked one was
followed, the home folder was made 0755, and RetryBudget's repr held the token.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nemo_sync import NemoClient
from nemo_sync._auth import AnonymousAuth, StaticTokenAuth
from nemo_sync._credentials import CredentialStore, Secret, StoredCredentials
from nemo_sync._retry import RetryBudget
from tests.scripted import ScriptedServer, credits_reply

CREDITS = ("GET", "/api/credits/balance/simple")
TOKEN = ("POST", "/api/auth/anonymous-token")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and symlinks")


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    # The modes asserted below must come from the SDK, not from a strict umask on the runner.
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _saved(home: Path, token: str, client_id: str = "cid-1") -> Path:
    path = home / "credentials.json"
    body = {"client_id": client_id, "token": token, "expires_at": time.time() + 86400}
    path.write_text(json.dumps(body))
    return path


async def test_a_new_home_is_0700_and_the_file_0600(api: ScriptedServer, tmp_path: Path) -> None:
    home = tmp_path / "made-by-sdk" / "nemo"
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, home=home) as nemo:
        await nemo.credits()
    assert _mode(home) == 0o700
    assert _mode(home / "credentials.json") == 0o600
    assert json.loads((home / "credentials.json").read_text())["token"] == "tok-1"


async def test_a_users_own_folder_keeps_its_mode(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "mine"
    home.mkdir(mode=0o755)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, home=home) as nemo:
        await nemo.credits()
    assert _mode(home) == 0o755
    assert _mode(home / "credentials.json") == 0o600
    assert "nemo_sync" not in {r.name for r in caplog.records if r.levelno >= logging.WARNING}


async def test_a_shared_writable_home_is_reported_not_changed(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o777)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, home=home) as nemo:
        await nemo.credits()
        await nemo.credits()
    assert _mode(home) == 0o777
    warnings = [r for r in caplog.records if r.name == "nemo_sync" and "writable" in r.message]
    assert len(warnings) == 1  # once per client, not per call
    assert str(home) in warnings[0].getMessage()


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o666])
async def test_an_existing_file_open_to_others_is_fixed_with_a_warning(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    path = _saved(home, "stored-token")
    path.chmod(mode)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, home=home, client_id="cid-1") as nemo:
        await nemo.credits()
    assert _mode(path) == 0o600
    assert api.count(*TOKEN) == 0  # still the user's token: fixed, not thrown away
    assert api.seen[-1].headers["Authorization"] == "Bearer stored-token"
    [warning] = [r for r in caplog.records if r.name == "nemo_sync"]
    assert "0600" in warning.getMessage()
    assert "stored-token" not in caplog.text


async def test_a_symlinked_file_is_not_followed_and_is_replaced(
    api: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = _saved(elsewhere, "planted-token")
    planted = target.read_bytes()
    (home / "credentials.json").symlink_to(target)
    api.reply(*CREDITS, credits_reply)
    caplog.set_level(logging.WARNING, logger="nemo_sync")
    async with NemoClient(base_url=api.url, home=home, client_id="cid-1") as nemo:
        await nemo.credits()
    # The planted token was not used, and the new one was not written through the link.
    assert api.count(*TOKEN) == 1
    assert api.seen[-1].headers["Authorization"] == "Bearer tok-1"
    assert target.read_bytes() == planted
    path = home / "credentials.json"
    assert not path.is_symlink()
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["token"] == "tok-1"
    assert any("symbolic link" in r.getMessage() for r in caplog.records)


async def test_a_symlink_to_a_missing_file_creates_nothing_there(
    api: ScriptedServer, tmp_path: Path
) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    target = tmp_path / "not-yet"
    (home / "credentials.json").symlink_to(target)
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url, home=home) as nemo:
        await nemo.credits()
    assert not target.exists()
    assert not (home / "credentials.json").is_symlink()


def test_a_fifo_or_a_huge_file_is_ignored_without_blocking(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    os.mkfifo(store.path)
    assert store.load() is None  # would block forever in open() without O_NONBLOCK
    store.path.unlink()
    store.path.write_bytes(b" " * (1024 * 1024))
    assert store.load() is None


async def test_no_auth_object_repr_shows_a_token(api: ScriptedServer, tmp_path: Path) -> None:
    token = "nmv_usr_repr-secret"
    stored = StoredCredentials(client_id="cid-1", token=Secret(token), expires_at=1.0)
    budget = RetryBudget(method="GET", max_retries=2, anonymous_auth=True, token_used=token)
    objects: list[object] = [
        Secret(token),
        stored,
        StaticTokenAuth(token),
        budget,
        NemoClient(token=token, home=tmp_path / "h"),
    ]
    api.reply(*CREDITS, credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
        auth = nemo._auth
        assert isinstance(auth, AnonymousAuth)
        objects += [nemo, auth, auth._current, auth._store, auth._store.load()]
        shown = [repr(o) + str(o) for o in objects]
        assert all(token not in text for text in shown)
        assert all("tok-1" not in text for text in shown)
    assert "token_used='***'" in repr(budget)
    assert Secret(token).reveal() == token
    assert str(Secret(token)) == "Secret('***')"


async def test_the_job_store_first_still_makes_a_private_home(tmp_path: Path) -> None:
    """The home folder is 0700 whichever file the SDK writes first (here: the job lock)."""
    from nemo_sync._filelock import file_lock

    home = tmp_path / "fresh-home"
    async with file_lock(home / "jobs.lock"):
        pass
    assert (home.stat().st_mode & 0o777) == 0o700
