"""Anonymous credentials across processes, and tokens kept out of logs."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest

from nemo_sync import NemoClient
from tests.scripted import ScriptedServer, credits_reply, envelope

_CHILD = """
import asyncio, sys
from nemo_sync import NemoClient

async def main():
    async with NemoClient(base_url=sys.argv[1], home=sys.argv[2]) as nemo:
        await nemo.credits()

asyncio.run(main())
"""


async def test_two_processes_starting_together_share_one_anonymous_token(
    api: ScriptedServer, tmp_path: Path
) -> None:
    from aiohttp import web

    async def slow_token(request: web.Request) -> web.StreamResponse:
        # Widen the race window: both processes are inside their first call at once.
        await asyncio.sleep(0.3)
        api.issued_tokens.append("tok-shared")
        return envelope({"token": f"tok-{len(api.issued_tokens)}"})

    api.clear("POST", "/api/auth/anonymous-token")
    api.on("POST", "/api/auth/anonymous-token", slow_token)
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    home = tmp_path / "shared-home"
    children = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, api.url, str(home))
        for _ in range(2)
    ]
    codes = await asyncio.gather(*(child.wait() for child in children))
    assert codes == [0, 0]
    assert api.count("POST", "/api/auth/anonymous-token") == 1
    used = {s.headers["Authorization"] for s in api.seen if s.path.startswith("/api/credits")}
    assert used == {"Bearer tok-1"}
    assert json.loads((home / "credentials.json").read_text())["token"] == "tok-1"


async def test_a_damaged_credentials_file_is_replaced(api: ScriptedServer, tmp_path: Path) -> None:
    home = tmp_path / "nemo-home"
    home.mkdir()
    (home / "credentials.json").write_text("{not json")
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    assert json.loads((home / "credentials.json").read_text())["token"] == "tok-1"


async def test_debug_logs_show_requests_but_never_a_token(
    api: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    api.reply(
        "GET",
        "/api/credits/balance/simple",
        lambda: envelope(None, code=1001, message="expired", status=401),
        credits_reply,
    )
    caplog.set_level(logging.DEBUG, logger="nemo_sync")
    async with NemoClient(base_url=api.url) as nemo:
        await nemo.credits()
    text = caplog.text
    assert "GET /api/credits/balance/simple -> 401" in text
    assert "GET /api/credits/balance/simple -> 200" in text
    assert "retrying GET" in text
    for token in api.issued_tokens:
        assert token not in text


async def test_nemo_log_env_turns_on_debug_output(api: ScriptedServer, tmp_path: Path) -> None:
    api.reply("GET", "/api/credits/balance/simple", credits_reply)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        api.url,
        str(tmp_path / "h"),
        env={**__import__("os").environ, "NEMO_LOG": "debug"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await child.communicate()
    assert child.returncode == 0
    assert b"GET /api/credits/balance/simple -> 200" in err
    assert b"tok-1" not in err
