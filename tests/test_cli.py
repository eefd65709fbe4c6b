"""The `nemo-sync` command, driven like a person would (pexpect) and by scripts."""

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


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=6.0)


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_sync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def test_chat_local_through_upload_edit_silent_turn_status_and_export(
    media, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "NEMO_EMULATOR_SILENT_RATIO": "1.0",
        "NEMO_HOME": str(tmp_path / "h"),
        "COLUMNS": "200",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", "--local", "chat"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    try:
        child.expect("Connected")
        child.sendline(f"upload {media.music}")
        child.expect("Uploaded beat.wav")
        child.sendline(f"upload {media.clips[0]} {media.clips[1]}")
        child.expect("Uploaded night-ball.mp4")
        # Every edit turn is silent here: the CLI must say what changed from the timeline.
        child.sendline("sync the background music to my video")
        child.expect("Updated the timeline: ")
        child.expect(r"Timeline \(2 tracks\)")
        child.sendline("status")
        child.expect(r"Timeline \(2 tracks\): 1\. Video: ")
        child.sendline("余额")
        child.expect("Credits: ")
        child.sendline("export")
        child.expect(r"Saved .*synced\.mp4")
        child.sendline("quit")
        child.expect("Bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "[tool]" not in (child.before or "")  # tool calls only with -v
    with av.open(str(tmp_path / "synced.mp4")) as container:
        # The canvas is the draft's (9:16 by default): there is no resolution option [V].
        assert container.streams.video[0].codec_context.height == 1920


def test_sync_local_writes_a_real_mp4_and_json_output(media, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    done = run(
        "--local",
        "--json",
        "sync",
        str(media.music),
        *map(str, media.clips),
        "-o",
        str(out),
        cwd=tmp_path,
        env={"NEMO_HOME": str(tmp_path / "h")},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["output"] == str(out.resolve())
    assert report["summary"].startswith("Timeline (2 tracks)")
    with av.open(str(out)) as container:
        video = container.streams.video[0].codec_context
        assert (video.name, video.width, video.height) == ("h264", 1080, 1920)
        assert container.streams.audio[0].codec_context.name == "aac"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--local", "sync", "missing.mp3"], 1, "missing.mp3: no such file"),
        (["--local", "state"], 1, "no session yet"),
        (["sync"], 2, "the following arguments are required"),
        (["--local", "jobs", "bogus"], 2, "invalid choice"),
        (["--local", "sync", "x.mp3", "--resolution", "720p"], 2, "unrecognized arguments"),
    ],
)
def test_bad_input_gets_one_clear_line_and_an_exit_code(
    tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    done = run(*args, cwd=tmp_path, env={"NEMO_HOME": str(tmp_path / "h")})
    assert done.returncode == code
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_login_credits_logout_never_show_the_token(tmp_path: Path) -> None:
    home = tmp_path / "h"
    done = run("--local", "login", cwd=tmp_path, env={"NEMO_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert "Connected. 100 credits available" in done.stdout
    saved = json.loads((home / "local" / "credentials.json").read_text())
    assert saved["token"] not in done.stdout + done.stderr
    done = run("--local", "logout", cwd=tmp_path, env={"NEMO_HOME": str(home)})
    assert "Removed" in done.stdout
    assert not (home / "local" / "credentials.json").exists()


async def test_emulator_command_serves_the_api_with_the_emulator_options(tmp_path: Path) -> None:
    import re
    import signal

    from nemo_sync import NemoClient

    child = pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", "emulator", "--port", "0", "--seed", "3", "--render-seconds", "0.1"],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect(r"emulator at (http://127\.0\.0\.1:\d+)")
        url = child.match.group(1)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        async with NemoClient(base_url=url, home=tmp_path / "h") as nemo:
            assert (await nemo.credits()).available == 100
        child.kill(signal.SIGINT)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


async def test_emulator_command_keeps_state_in_a_data_dir_and_reissues_tokens(
    tmp_path: Path,
) -> None:
    """A shared dev server: with --data-dir a restart keeps the sessions; with
    --reissue-anonymous-tokens a client that lost its credentials (a new home, the same
    machine client id) gets its account back instead of the service's 7-day 429."""
    import signal

    from nemo_sync import NemoClient, NemoError

    def start() -> tuple[pexpect.spawn, str]:
        child = pexpect.spawn(
            sys.executable,
            [
                *("-m", "nemo_sync", "emulator", "--port", "0", "--render-seconds", "0.1"),
                *("--data-dir", str(tmp_path / "data"), "--reissue-anonymous-tokens"),
            ],
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=60,
        )
        child.expect(r"emulator at (http://127\.0\.0\.1:\d+)")
        return child, child.match.group(1)

    def stop(child: pexpect.spawn) -> None:
        child.kill(signal.SIGINT)
        child.expect(pexpect.EOF)
        child.close(force=True)

    child, url = start()
    try:
        async with NemoClient(base_url=url, home=tmp_path / "h1") as nemo:
            session = await nemo.create_session()
        async with NemoClient(base_url=url, home=tmp_path / "h2") as again:
            await again.session(session.id).state()  # the same account: its session
        # Another client id is another account: not its session.
        async with NemoClient(base_url=url, home=tmp_path / "h3", client_id="other") as other:
            with pytest.raises(NemoError):
                await other.session(session.id).state()
    finally:
        stop(child)
    child, url = start()
    try:
        async with NemoClient(base_url=url, home=tmp_path / "h2") as later:
            await later.session(session.id).state()  # kept across the restart
    finally:
        stop(child)


def test_jobs_cancel_stops_a_render_and_wait_then_says_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[R]: ``POST /api/render/proxy/lambda/{render_id}/cancel``. In process, against an
    emulator on a thread, so it stays fast."""
    import asyncio

    from nemo_sync import NemoClient
    from nemo_sync.cli import main
    from nemo_sync.emulator import Emulator
    from tests.test_emulator_render import GatedBackend
    from tests.test_render_reference import exported

    home = tmp_path / "h"
    gated = GatedBackend()
    with Emulator(render_backend=gated, render_seconds=0.01).run_in_thread() as handle:

        async def start() -> str:
            async with NemoClient(base_url=handle.url, home=home) as nemo:
                return (await exported(nemo)).id

        job_id = asyncio.run(start())
        assert gated.started.wait(30)
        cli = ["--base-url", handle.url, "--home", str(home)]

        assert main([*cli, "--json", "jobs", "cancel", job_id]) == 0
        assert json.loads(capsys.readouterr().out) == {"job_id": job_id, "status": "cancelled"}
        assert gated.stopped.is_set()
        assert not gated.gate.is_set()
        assert main([*cli, "jobs", "cancel", job_id]) == 0  # again: nothing changes
        assert f"Cancelled render {job_id}" in capsys.readouterr().out

        assert main([*cli, "--json", "jobs", "list"]) == 0
        [record] = json.loads(capsys.readouterr().out)
        assert (record["id"], record["status"]) == (job_id, "cancelled")
        # Waiting for a cancelled job ends at once, with one line and exit 1.
        assert main([*cli, "jobs", "wait", job_id]) == 1
        err = capsys.readouterr().err
        assert f"render {job_id} was cancelled" in err
        assert "Traceback" not in err

        assert main([*cli, "jobs", "cancel", "render_404"]) == 1
        assert "render job not found: render_404" in capsys.readouterr().err
        assert main([*cli, "jobs", "cancel"]) == 2  # no id: a usage error
        assert "`jobs cancel` needs a job id" in capsys.readouterr().err
