"""One Ctrl-C stops a command at once, says what goes on, and leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from nemo_sync.local import make_sample_media

# A real stop takes a few tenths of a second; the old one waited for the whole render.
STOP_SECONDS = 2.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=8.0)


def _env(tmp_path: Path) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {
        **os.environ,
        "NEMO_HOME": str(tmp_path / "h"),
        "TMPDIR": str(temp),  # where the demo and the emulator would leave folders
        "COLUMNS": "200",
    }


def _interrupt_during_render(child: pexpect.spawn) -> tuple[str, float]:
    """Wait until the render is under way, press Ctrl-C once; (job id, seconds to exit)."""
    child.expect(r"Rendering \(job (render_\d+)\)")
    job_id = str(child.match.group(1))
    time.sleep(1.0)  # well into the encode
    pressed = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    return job_id, time.monotonic() - pressed


def test_ctrl_c_during_a_local_sync_stops_at_once_and_the_render_resumes_later(
    media, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", "--local", "sync", str(media.music), *map(str, media.clips)],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    job_id, took = _interrupt_during_render(child)
    said = child.before or ""
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert child.exitstatus == 130, said
    assert f"resume with `nemo-sync --local jobs wait {job_id}`" in said
    assert "Traceback" not in said
    assert not (tmp_path / "synced.mp4").exists()
    renders = tmp_path / "h" / "local" / "emulator" / "renders"
    assert list(tmp_path.glob("*.part*")) == []
    assert [p.name for p in renders.glob("*") if ".part" in p.name] == []
    assert list((tmp_path / "tmp").iterdir()) == []
    # The persistent backend renders the job again for the next process that polls it.
    done = subprocess.run(
        [sys.executable, "-m", "nemo_sync", "--local", "jobs", "download", job_id],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    saved = re.search(r"Saved (.+\.mp4)", done.stdout)
    assert saved is not None, done.stdout
    assert Path(saved.group(1)).stat().st_size > 0


def test_ctrl_c_during_the_demo_leaves_no_temporary_folders(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", "demo"],
        cwd=str(tmp_path),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=180,
    )
    _job_id, took = _interrupt_during_render(child)
    said = child.before or ""
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert child.exitstatus == 130, said
    assert "interrupted" in said
    assert not (tmp_path / "synced.mp4").exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # no nemo-demo-*, no nemo-emulator-*


def test_ctrl_c_at_the_chat_prompt_stops_at_once(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "nemo_sync", "--local", "chat"],
        cwd=str(tmp_path),
        env=_env(tmp_path),
        encoding="utf-8",
        timeout=60,
    )
    child.expect("Connected")
    child.expect("> ")
    pressed = time.monotonic()
    child.sendintr()  # the prompt waits for a line in a thread: it must not be waited for
    child.expect(pexpect.EOF, timeout=10)
    child.close()
    took = time.monotonic() - pressed
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert child.exitstatus == 130
    assert "error: interrupted" in (child.before or "")
    assert "Traceback" not in (child.before or "")
