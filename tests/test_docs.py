"""Every ```python block in README.md and docs/ runs.

Blocks that start with ``# test_<name>.py`` are pytest files: they run with pytester, with
the nemo-sync plugin, as a user's test suite would. Every other block runs as a script
against an emulator (NEMO_API_URL points at it), in a folder holding the media files the
snippets name. Fragments that use ``nemo`` or ``session`` get them ready-made, and top-level
``await`` works as it does in Jupyter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from nemo_sync.emulator import Emulator
from nemo_sync.local import make_sample_media

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.nemo_emulator(render_seconds=0.1)


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for index, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            found.append((f"{page.relative_to(ROOT)}#{index}", match.group(1)))
    return found


SCRIPTS = [(name, code) for name, code in blocks() if not code.startswith("# test_")]
TEST_FILES = [(name, code) for name, code in blocks() if code.startswith("# test_")]

RUNNER = """
import ast, asyncio, os, sys
from pathlib import Path

source = Path(sys.argv[1]).read_text()
if "asyncio.run(" in source or not any(w in source for w in ("await", "async with", "async for")):
    exec(compile(source, "snippet", "exec"), {"__name__": "__main__"})
else:
    async def main():
        import nemo_sync
        async with nemo_sync.NemoClient() as nemo:
            session = await nemo.create_session()
            for name in ("song.mp3", "clip.mp4"):
                await session.upload(name)
            await session.send("sync the background music to my video")
            namespace = {"__name__": "__main__", "nemo": nemo, "session": session}
            code = compile(source, "snippet", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if result is not None:
                await result
    asyncio.run(main())
"""


def _mp3(wav: Path, dest: Path) -> None:
    """Encode the sample beat as a real MP3 (the snippets say song.mp3)."""
    with av.open(str(wav)) as source, av.open(str(dest), "w") as out:
        stream = out.add_stream("libmp3lame", rate=44100)
        stream.layout = "mono"
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs-media")
    samples = make_sample_media(folder / "samples", seconds=6.0)
    _mp3(samples.music, folder / "song.mp3")
    for name, clip in zip(("clip.mp4", "clip1.mp4", "clip2.mp4"), samples.clips, strict=True):
        shutil.copy(clip, folder / name)
    assert np is not None
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code"), SCRIPTS, ids=[n for n, _ in SCRIPTS])
async def test_script_blocks_run(
    name: str, code: str, emu: Emulator, media_dir: Path, tmp_path: Path
) -> None:
    import asyncio

    work = tmp_path / "work"
    shutil.copytree(media_dir, work)
    (work / "snippet.py").write_text(code, encoding="utf-8")
    (work / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {**os.environ, "NEMO_API_URL": emu.url, "NEMO_HOME": str(tmp_path / "home")}
    env.pop("NEMO_TOKEN", None)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "runner.py",
        "snippet.py",
        cwd=work,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(child.communicate(), timeout=240)
    assert child.returncode == 0, f"{name} failed:\n{err.decode()[-3000:]}"


@pytest.mark.slow
def test_pytest_blocks_pass_as_a_users_test_suite(pytester: pytest.Pytester) -> None:
    assert TEST_FILES, "docs/testing.md should show test files"
    for _name, code in TEST_FILES:
        filename = code.splitlines()[0].removeprefix("# ").strip()
        pytester.makepyfile(**{filename.removesuffix(".py"): code})
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= len(TEST_FILES)
    assert subprocess is not None
