"""Emulator: running on a background thread (sync callers), and standalone from the shell."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from nemo_sync.emulator import Emulator, Fault
from nemo_sync.emulator._server_options import main


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_run_in_thread_serves_sync_callers() -> None:
    with Emulator().run_in_thread() as handle:
        status, body = get(handle.url + "/api/credits/balance/simple")
        assert (status, body["code"]) == (401, 1001)
        fault = handle.call(handle.emulator.faults.add, "GET /api/credits/*", status=503)
        assert isinstance(fault, Fault)
        assert get(handle.url + "/api/credits/balance/simple")[0] == 503
        handle.call(handle.emulator.wait_for_renders)  # coroutine functions are awaited
        assert handle.call(len, handle.emulator.requests) == 2
        url = handle.url
    handle.stop()  # a second stop is a no-op
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=1)


def test_run_in_thread_reports_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            Emulator(port=port).run_in_thread()


def test_main_reports_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "256.256.256.256", "--port", "0"]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_python_dash_m_serves_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "nemo_sync.emulator", "--port", "0", "--chat-latency", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.startswith("NemoVideo API emulator at http://127.0.0.1:")
            url = first.rsplit(" ", 1)[1].strip()
            status, body = get(url + "/")
            assert status == 200
            assert "emulator" in str(body["data"])
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
