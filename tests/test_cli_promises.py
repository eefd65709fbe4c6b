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


def test_export_never_overwrites_without_force_and_local_json_prints_no_emulator_url(
    media: SampleMedia, tmp_path: Path
) -> None:
    env = {"NEMO_HOME": str(tmp_path / "h")}
    kept = tmp_path / "out.mp4"
    kept.write_bytes(b"the user's own file")
    clips = [str(c) for c in media.clips]

    done = run(
        "--local",
        "--json",
        "sync",
        str(media.music),
        *clips,
        "-o",
        "out.mp4",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["output"] == str(tmp_path / "out-2.mp4")
    assert "out.mp4 exists: saving as out-2.mp4 (--force overwrites)" in done.stderr
    assert kept.read_bytes() == b"the user's own file"
    assert (tmp_path / "out-2.mp4").stat().st_size > 10_000

    # Every JSON document of the local backend: no link to an emulator that is gone.
    outputs = [done.stdout]
    for args in (
        ["export", "--wait"],
        ["state"],
        ["upload", str(media.music)],
        ["jobs", "list"],
    ):
        done = run("--local", "--json", *args, cwd=tmp_path, env=env)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(done.stdout)
    job_id = json.loads(outputs[1])["job_id"]
    done = run("--local", "--json", "jobs", "wait", job_id, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["job_id"] == job_id
    outputs.append(done.stdout)
    for output in outputs:
        json.loads(output)
        assert "http://127.0.0.1:" not in output
    # Nor in words: the human line says how to get the video later.
    done = run("--local", "jobs", "wait", job_id, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "http://" not in done.stdout
    assert f"nemo-sync --local jobs download {job_id}" in done.stdout

    # A download into a taken name picks the next free one; --force overwrites.
    done = run("--local", "jobs", "download", job_id, "-o", "out.mp4", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"Saved {tmp_path / 'out-3.mp4'}" in done.stdout
    assert kept.read_bytes() == b"the user's own file"
    done = run("--local", "export", "-o", "out.mp4", "--force", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"Saved {kept}" in done.stdout
    assert kept.stat().st_size > 10_000
