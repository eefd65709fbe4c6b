"""Helpers of the fleet tests (issue 22)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from nemo_sync import NemoClient, RedisJobStore, Session
from nemo_sync.emulator import Emulator
from tests.render_doubles import BytesRenderBackend

ROOT = Path(__file__).resolve().parent.parent
# A clip the render double accepts, and the user token the fleet tests' hosts share.
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)
TOKEN = "fleet-token"


@asynccontextmanager
async def fleet_emulator(render_seconds: float) -> AsyncIterator[Emulator]:
    """The emulator the fleet's hosts share: renders of ``render_seconds`` (known bytes, no
    video), and TOKEN accepted."""
    async with Emulator(
        render_backend=BytesRenderBackend(b"video"), render_seconds=render_seconds
    ) as emulator:
        emulator.add_token(TOKEN)
        yield emulator


async def new_draft(nemo: NemoClient) -> tuple[Session, dict[str, Any]]:
    """A new session with one clip, and a one-second draft of it (naming the clip by
    ``Media.key``: the reference's upload replies carry no id)."""
    session = await nemo.create_session()
    media = await session.upload(CLIP, filename="clip.mp4")
    return session, {"t": [{"tt": 0, "sg": [{"mid": media.key, "st": 0, "d": 1000}]}], "d": 1000}


def counting_commands(store: RedisJobStore) -> list[tuple[Any, ...]]:
    """The Redis commands ``store`` sends from now on (each as its arguments), as a list
    that grows: a test's count of round trips."""
    sent: list[tuple[Any, ...]] = []
    original = store.redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return await original(*args, **options)

    store.redis.execute_command = counted  # type: ignore[method-assign]
    return sent


class HostProcesses:
    """Host processes of a fleet test: each runs ``python -m <module> <config JSON>`` and
    prints one JSON object a line (``{"poll": t, "job": id}``, ``{"result": ...}``...)."""

    def __init__(
        self, module: str, base: dict[str, Any], tmp_path: Path, *, keep_stderr: bool = True
    ) -> None:
        self.module = module
        # Kept for finished() to show; a host that writes much there and is never finished()
        # would fill the pipe and stall, so such tests drop it.
        self.keep_stderr = keep_stderr
        self.base = base
        self.tmp_path = tmp_path
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._reading: list[asyncio.Task[None]] = []

    async def start(self, name: str, **fields: Any) -> asyncio.subprocess.Process:
        config = {**self.base, "home": str(self.tmp_path / name), **fields}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            json.dumps(config),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if self.keep_stderr else subprocess.DEVNULL,
        )
        self.procs[name] = process
        self.lines[name] = []
        self._reading.append(asyncio.create_task(self._read(name, process)))
        return process

    async def _read(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            self.lines[name].append(json.loads(line))

    def said(self, name: str, word: str) -> list[Any]:
        return [line[word] for line in self.lines[name] if word in line]

    async def until(self, name: str, word: str, within: float = 60.0) -> Any:
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while not self.said(name, word):
            assert self.procs[name].returncode is None, self.lines
            assert loop.time() < end, f"{name} never said {word}: {self.lines}"
            await asyncio.sleep(0.02)
        return self.said(name, word)[0]

    def kill(self, name: str) -> float:
        self.procs[name].send_signal(signal.SIGKILL)
        return time.time()

    async def finished(self, *names: str) -> None:
        for name in names:
            process = self.procs[name]
            assert process.stderr is not None
            err = await asyncio.wait_for(process.stderr.read(), 60)
            assert await process.wait() == 0, err.decode()
        await asyncio.gather(*self._reading)

    async def close(self) -> None:
        for process in self.procs.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        for task in self._reading:
            task.cancel()

    def polls(self, job_id: str | None = None) -> list[tuple[float, str]]:
        """Every poll (of ``job_id``, when given) by time, with who sent it."""
        return sorted(
            (line["poll"], name)
            for name, lines in self.lines.items()
            for line in lines
            if "poll" in line and (job_id is None or line.get("job") == job_id)
        )

    def poll_runs(self) -> tuple[list[tuple[float, str]], list[str]]:
        """Every poll by time, and the hosts in the order their runs of polls came."""
        polls = self.polls()
        runs = [name for i, (_, name) in enumerate(polls) if i == 0 or polls[i - 1][1] != name]
        return polls, runs
