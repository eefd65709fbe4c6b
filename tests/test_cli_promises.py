"""The CLI keeps its word (issue 16, item 6): options anywhere, runnable suggestions, undo, no
overwritten files, clear errors and exit codes, verbose logs, no dead links in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_sync.cli import _parser
from nemo_sync.local import SampleMedia, make_sample_media
from tests.test_cli import run


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=6.0)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Given before the subcommand only: the subcommand's copy must not reset it.
        (
            ["--local", "--json", "-v", "--home", "H", "--base-url", "U", "credits"],
            {"local": True, "json": True, "verbose": True, "home": "H", "base_url": "U"},
        ),
        # Given after it only.
        (
            ["credits", "--local", "--json", "-v", "--home", "H", "--base-url", "U"],
            {"local": True, "json": True, "verbose": True, "home": "H", "base_url": "U"},
        ),
        # Given nowhere: the defaults.
        (
            ["state", "--session", "S"],
            {"local": False, "json": False, "verbose": False, "home": None, "base_url": None},
        ),
        # Given twice: the later one, after the subcommand, wins.
        (["--home", "A", "jobs", "list", "--home", "B"], {"home": "B", "local": False}),
    ],
)
def test_global_options_parse_before_or_after_the_subcommand(
    argv: list[str], expected: dict[str, object]
) -> None:
    args = vars(_parser().parse_args(argv))
    assert {key: args[key] for key in expected} == expected


def test_local_after_the_subcommand_runs_on_the_local_backend(tmp_path: Path) -> None:
    done = run("credits", "--local", "--json", "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["available"] == 100
    # --home after the subcommand was honoured: the local credentials are there.
    assert (tmp_path / "h" / "local" / "credentials.json").is_file()


@pytest.mark.parametrize("action", ["wait", "download"])
def test_a_jobs_action_without_an_id_is_a_usage_error(tmp_path: Path, action: str) -> None:
    done = run("--local", "jobs", action, cwd=tmp_path, env={"NEMO_HOME": str(tmp_path / "h")})
    assert done.returncode == 2, done.stderr
    assert f"jobs {action}" in done.stderr
    assert "needs a job id" in done.stderr


@pytest.mark.parametrize("verbose", [True, False])
def test_verbose_shows_the_connection_retries(tmp_path: Path, verbose: bool) -> None:
    flags = ["-v"] if verbose else []
    done = run(
        *flags,
        "--base-url",
        "http://127.0.0.1:9",
        "credits",
        cwd=tmp_path,
        env={"NEMO_HOME": str(tmp_path / "h")},
    )
    assert done.returncode == 1
    assert "could not connect" in done.stderr
    assert ("retrying POST" in done.stderr) is verbose


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("music", "sync needs music too: add an audio file (mp3, wav, m4a or aac)"),
        (
            "clips",
            "sync needs clips too: add a video or an image (mp4, mov, avi, webm, mkv, jpg, "
            "png, gif or webp)",
        ),
    ],
)
def test_sync_with_one_kind_of_media_says_which_is_missing_and_sends_nothing(
    media: SampleMedia, tmp_path: Path, kind: str, words: str
) -> None:
    home = tmp_path / "h"
    files = [str(media.music)] if kind == "clips" else [str(c) for c in media.clips]
    done = run("--local", "sync", *files, cwd=tmp_path, env={"NEMO_HOME": str(home)})
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: {words}"]
    # Nothing was sent: the local backend was never even started, no session remembered.
    assert not (home / "local").exists()
    assert not (tmp_path / "synced.mp4").exists()
