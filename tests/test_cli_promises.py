"""The CLI keeps its word (issue 16, item 6): options anywhere, runnable suggestions, undo, no
overwritten files, clear errors and exit codes, verbose logs, no dead links in JSON."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import pexpect
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
def test_an_unreachable_api_hints_at_local_and_verbose_shows_the_retries(
    tmp_path: Path, verbose: bool
) -> None:
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
    assert "--local" in done.stderr  # the hint: the emulator works offline
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


def _all_gui_hints() -> list[str]:
    from nemo_sync.emulator import _replies

    return [*_replies._GUI_HINTS_EN, *_replies._GUI_HINTS_ZH]


@pytest.mark.parametrize(
    "reply",
    [
        *_all_gui_hints(),
        "Preview in timeline, then click Export.",
        "Open the timeline panel. Drag the clip, then click Apply.",
        "在时间线上预览,然后点击导出。",
    ],
)
def test_chat_offers_only_commands_its_loop_runs(reply: str) -> None:
    from nemo_sync import SuggestedKind, route
    from nemo_sync._gui import suggested_actions
    from nemo_sync._routing import Action
    from nemo_sync.cli._interactive import suggestion_lines

    actions = suggested_actions(reply)
    assert actions
    lines = suggestion_lines(actions)
    offered = [m.group(1) for line in lines for m in re.finditer(r"`([^`]+)`", line)]
    runs = {"export": Action.EXPORT, "status": Action.STATE}
    assert lines  # every suggestion gets an answer: a command, or how to say it instead
    for command in offered:
        assert route(command) is runs[command]
    # Every kind the reply asked for that has a command is offered; the rest is explained.
    kinds = {a.kind for a in actions}
    assert ("export" in offered) is (SuggestedKind.EXPORT in kinds)
    assert ("status" in offered) is bool(kinds & {SuggestedKind.STATE, SuggestedKind.SUMMARY})
    explained = any("say the change in words" in line for line in lines)
    assert explained is (SuggestedKind.CHAT_EDIT in kinds)


PROMPT = "\n> "


def _spawn(args: list[str], cwd: Path, env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", *args],
        cwd=str(cwd),
        env={**os.environ, "COLUMNS": "200", **env},
        encoding="utf-8",
        timeout=120,
    )


def test_chat_runs_what_it_offers_undoes_keeps_files_and_says_goodbye_with_local(
    media: SampleMedia, tmp_path: Path
) -> None:
    env = {
        "NEMO_HOME": str(tmp_path / "h"),
        "NEMO_EMULATOR_SILENT_RATIO": "0",
        "NEMO_EMULATOR_GUI_PHRASE_RATIO": "1",
        "NEMO_EMULATOR_SEED": "5",
    }
    (tmp_path / "synced.mp4").write_bytes(b"an earlier video")
    child = _spawn(["chat", "--local"], tmp_path, env)  # --local after the subcommand too
    try:
        child.expect("Connected")
        child.sendline(f"upload {media.music} {media.clips[0]}")
        child.expect("Uploaded sunset.mp4")
        child.expect(PROMPT)
        offered: list[str] = []
        # Which GUI phrase ends a reply is drawn at random (seeded): edit until one names a
        # command, then add the title that `undo` takes away again.
        for edit in [*(["make it 16:9", "make it 1:1"] * 4), 'add the title "Hello there"']:
            if offered and "title" not in edit:
                continue
            child.sendline(edit)
            child.expect(PROMPT)
            # Every reply here ends with a GUI phrase: the CLI answers it.
            answers = re.findall(
                r"\((?:the agent suggests `(\w+)`|there is nothing to drag)", child.before
            )
            assert answers, child.before
            offered += [command for command in answers if command]
        assert offered, "the seeded replies offer at least one command"
        for command in dict.fromkeys(offered):
            child.sendline(command)
            child.expect(r"Saved .*synced-2\.mp4" if command == "export" else r"Timeline \(")
        child.sendline("undo")
        child.expect("Undid the last edit")
        child.sendline("status")
        child.expect(r"Timeline \((\d) tracks?\)[^\n]*\n")
        assert "Hello there" not in child.match.group(0)
        child.sendline("export")
        # The file from before the chat, and the chat's own export, are both kept.
        child.expect(r"synced\.mp4 exists: saving as (synced-\d\.mp4)")
        saved = child.match.group(1)
        child.expect(r"Saved ")
        child.sendline("quit")
        child.expect(r"Bye\. Session (\S+) keeps your timeline: `([^`]+)`")
        session_id, again = child.match.group(1), child.match.group(2)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert (tmp_path / "synced.mp4").read_bytes() == b"an earlier video"
    assert (tmp_path / saved).stat().st_size > 10_000
    assert again == f"nemo-sync --local chat --session {session_id}"
    # The goodbye's command works: the session is there, with its timeline.
    child = _spawn(shlex.split(again)[1:], tmp_path, env)
    try:
        child.expect("Connected")
        child.sendline("status")
        child.expect(r"Timeline \(")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_the_readme_and_the_cli_doc_name_every_command() -> None:
    from nemo_sync.cli import _COMMANDS

    _parser()  # registers the commands
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    bullet = re.search(r"^- The `nemo-sync` command:(.*?)(?:\n\n|\n- )", readme, re.M | re.S)
    assert bullet is not None
    assert set(re.findall(r"`(\w+)`", bullet.group(1))) == set(_COMMANDS)
    table = (root / "docs" / "cli.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `(\w+)", table, re.M)) | {"logout"} == set(_COMMANDS)
    assert "| `login` / `logout` |" in table


def test_local_prints_no_browser_link_that_dies_with_the_command(
    media: SampleMedia, tmp_path: Path
) -> None:
    """The embedded emulator's claim page lives only while the command runs: no dead link."""
    env = {"NEMO_HOME": str(tmp_path / "h")}
    done = run("--local", "upload", str(media.music), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "workspace/claim" not in done.stdout + done.stderr
    fresh = {"NEMO_HOME": str(tmp_path / "h2")}  # a new session, so a new link to show
    verbose = run("--local", "-v", "upload", str(media.music), cwd=tmp_path, env=fresh)
    assert "only while this command runs" in verbose.stderr
