"""The CLI chains like the SDK: upload -> ask -> export on the last session, and every
command that prints the agent's words translates its GUI phrases (issue 23)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pexpect
import pytest

from nemo_sync.local import make_sample_media

# The emulator's GUI phrases (emulator/_replies.py): a reply that has one must be followed by
# its translation.
GUI_PHRASES = ("click the Export button", "click [Export]", "drag and drop", "Open the timeline")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=6.0)


def run(*args: str, home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_sync", "--local", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NEMO_HOME": str(home), "NEMO_EMULATOR_RENDER_SECONDS": "0", **env},
        timeout=300,
        check=False,
    )


def test_upload_then_ask_then_export_makes_the_video(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = [str(media.music), *(str(c) for c in media.clips)]
    uploaded = run("upload", *files, home=home, cwd=tmp_path)
    assert uploaded.returncode == 0, uploaded.stderr
    asked = run(
        "ask", "sync the music to my clips", home=home, cwd=tmp_path,
        NEMO_EMULATOR_SILENT_RATIO="0",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert "Timeline (" in asked.stdout  # what the session's timeline is now
    exported = run("export", "--wait", "-o", "out.mp4", home=home, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with av.open(str(tmp_path / "out.mp4")) as video:
        assert video.streams.video[0].codec_context.width > 0
        assert video.duration
        assert video.duration > 0


def test_ask_json_says_what_changed_in_the_same_session(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run("--json", "upload", str(media.clips[0]), home=home, cwd=tmp_path)
    session_id = json.loads(first.stdout)["session_id"]
    # A silent turn (no text, only tool calls): the changes still say what happened [V].
    asked = run(
        "--json", "ask", "make it 16:9", home=home, cwd=tmp_path,
        NEMO_EMULATOR_SILENT_RATIO="1.0",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    report = json.loads(asked.stdout)
    assert report["session_id"] == session_id
    assert report["silent"] is True
    assert report["changes"]
    assert "16:9" in json.dumps(report["changes"]) or "1920" in json.dumps(report)


@pytest.mark.parametrize("command", ["ask", "sync"])
def test_no_command_prints_an_untranslated_gui_phrase(media, tmp_path: Path, command: str) -> None:
    home = tmp_path / "home"
    env = {"NEMO_EMULATOR_SILENT_RATIO": "0", "NEMO_EMULATOR_GUI_PHRASE_RATIO": "1.0"}
    if command == "ask":
        run("upload", str(media.music), str(media.clips[0]), home=home, cwd=tmp_path)
        done = run("ask", "sync the music to my clips", home=home, cwd=tmp_path, **env)
    else:
        done = run(
            "sync", str(media.music), str(media.clips[0]), "-o", "s.mp4",
            home=home, cwd=tmp_path, **env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert any(p.lower() in said.lower() for p in GUI_PHRASES), said  # the agent used one
    assert "(the agent suggests" in said or "nothing to drag or click" in said, said


def test_chat_continues_the_last_session_and_new_starts_another(media, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run("--json", "upload", str(media.clips[0]), home=home, cwd=tmp_path)
    session_id = json.loads(first.stdout)["session_id"]
    env = {**os.environ, "NEMO_HOME": str(home), "COLUMNS": "200"}
    for args, continued in ((["chat"], True), (["chat", "--new"], False)):
        child = pexpect.spawn(
            sys.executable,
            ["-m", "nemo_sync", "--local", *args],
            cwd=str(tmp_path),
            env=env,
            encoding="utf-8",
            timeout=60,
        )
        try:
            child.expect("Connected")
            before = child.before
            child.sendline("quit")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert (f"Continuing session {session_id}" in before) is continued, before


def test_upload_moves_on_to_a_new_session_when_the_last_one_is_gone(media, tmp_path: Path) -> None:
    """The remembered session may vanish (expired, a damaged --local database recovered
    without it): upload starts a new one instead of failing on every run."""
    home = tmp_path / "home"
    first = run("--json", "upload", str(media.clips[0]), home=home, cwd=tmp_path)
    gone = json.loads(first.stdout)["session_id"]
    state_file = home / "local" / "cli-state.json"  # --local keeps its own, under local/
    state_file.write_text(state_file.read_text().replace(gone, "s-that-is-gone"))
    lost = run("state", home=home, cwd=tmp_path)
    assert lost.returncode == 1
    assert "nemo-sync upload FILES" in lost.stderr  # says how to go on
    again = run("--json", "upload", str(media.clips[0]), home=home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no longer exists: starting a new one" in again.stderr
    assert json.loads(again.stdout)["session_id"] not in (gone, "s-that-is-gone")
