"""A real ``redis-server`` for the fleet tests: the Debian package, on a unix socket in a
temporary folder, with AOF on (every write fsynced), so a test can stop and restart it and
find its data again, as a production Redis with persistence would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

HOW_TO_GET_IT = (
    "redis-server is not installed: `sudo apt-get install redis-server` (Debian/Ubuntu) "
    "runs the fleet tests; CI installs it"
)


class RedisServer:
    """One redis-server process; ``url`` for redis-py; :meth:`restart` keeps the data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Unix socket paths are limited to ~107 bytes: a short one under the folder.
        self.socket = folder / "r.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            if os.environ.get("NEMO_REQUIRE_REDIS") == "1":  # CI: the tests must run
                pytest.fail(HOW_TO_GET_IT)
            pytest.skip(HOW_TO_GET_IT)
        options = {
            "port": "0",  # no TCP: the socket only
            "unixsocket": str(self.socket),
            "unixsocketperm": "700",
            "dir": str(self.folder),
            "appendonly": "yes",
            "appendfsync": "always",
            "save": "",
            "daemonize": "no",
            "loglevel": "warning",
            "logfile": str(self.folder / "redis.log"),
        }
        argv = [executable] + [w for name, value in options.items() for w in (f"--{name}", value)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None:
                log = (self.folder / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {log[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not open its socket within 10 s")
            time.sleep(0.01)
        self._wait_until_it_answers(deadline)

    def _wait_until_it_answers(self, deadline: float) -> None:
        """The socket file appears a moment before the server accepts connections (longer on
        a loaded machine): wait for a PING."""
        import redis  # the tests' dependency, not the fixture module's import-time one

        client = redis.Redis.from_url(self.url)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("redis-server does not answer") from None
                    time.sleep(0.025)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.socket.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop (as a crash would: SIGKILL) and start again on the same folder and socket."""
        self.stop(signal.SIGKILL)
        self.start()
