"""One anonymous identity per fleet (issue 22): cold hosts on one Redis share one token.

Hosts are separate processes, each with its own NEMO_HOME and machine client id (as on
separate machines), sharing one emulator and one real Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from nemo_sync import NemoClient, RedisJobStore
from nemo_sync._contract import ANONYMOUS_TOKEN_PATH
from nemo_sync.emulator import Emulator
from tests.fleet_support import ROOT
from tests.redis_server import RedisServer


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


def token_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == ANONYMOUS_TOKEN_PATH)


async def start_hosts(
    count: int, emu: Emulator, server: RedisServer, tmp_path: Path, go: Path | None = None
) -> list[asyncio.subprocess.Process]:
    hosts = []
    for n in range(count):
        config = {
            "base_url": emu.url,
            "home": str(tmp_path / f"home-{n}"),
            "redis_url": server.url,
            "go": str(go) if go else None,
            "start": str(tmp_path / "start"),
        }
        # Its own machine client id too (~/.config/nemovideo/client_id): another machine.
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / f"xdg-{n}")}
        hosts.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fleet_identity_host",
                json.dumps(config),
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for process in hosts:  # every host has imported and made its client
        assert process.stdout is not None
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 120)) == {"ready": True}
    (tmp_path / "start").touch()
    return hosts


async def reports_of(hosts: list[asyncio.subprocess.Process]) -> list[list[dict[str, Any]]]:
    outputs = await asyncio.gather(*(h.communicate() for h in hosts))
    reports = []
    for process, (out, err) in zip(hosts, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        reports.append([json.loads(line) for line in out.splitlines()])
    return reports


async def test_twenty_cold_hosts_make_one_anonymous_token_request(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    reports = await reports_of(await start_hosts(20, emu, redis_server, tmp_path))
    assert token_requests(emu) == 1
    users = {line.get("user") for lines in reports for line in lines}
    assert len(users) == 1, reports
    assert None not in users, reports


async def test_a_1001_on_three_hosts_makes_one_new_token_request(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    hosts = await start_hosts(3, emu, redis_server, tmp_path, go)
    for process in hosts:
        assert process.stdout is not None
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
        assert line.get("user"), line
    assert token_requests(emu) == 1
    emu.clock.advance(days=7)  # the fleet's token expires: each host's next call meets a 1001
    go.touch()
    reports = await reports_of(hosts)
    assert token_requests(emu) == 2
    assert all(lines and "error" not in lines[-1] for lines in reports), reports


async def test_the_token_stays_out_of_reprs_and_redis_down_falls_back_to_this_host(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisJobStore(f"unix://{tmp_path}/no-redis.sock")
    async with NemoClient(base_url=emu.url, home=tmp_path / "a", job_store=store) as nemo:
        await nemo.credits()  # an anonymous token of this host's own, as without a fleet
        token = nemo._auth.cached_token()
        assert token
        assert token not in repr(nemo._auth)
        assert token not in caplog.text
    await store.aclose()
    assert "this host uses its own anonymous identity" in caplog.text
    assert token_requests(emu) == 1


async def test_a_host_whose_rejected_token_was_already_replaced_keeps_the_new_one(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    stores = [RedisJobStore(redis_server.url) for _ in range(2)]
    a, b = (
        NemoClient(base_url=emu.url, home=tmp_path / name, job_store=store)
        for name, store in zip("ab", stores, strict=True)
    )
    try:
        await a.credits()
        await b.credits()
        old = a._auth.cached_token()
        assert old is not None
        assert b._auth.cached_token() == old
        emu.clock.advance(days=7)  # the client id may have its next token
        await a._auth.invalidate(old)  # a meets a 1001 ...
        await a.credits()  # ... and replaces the fleet's token
        new = a._auth.cached_token()
        assert new != old
        await b._auth.invalidate(old)  # b's 1001 on the old token comes late
        kept = redis.Redis.from_url(redis_server.url)
        try:
            assert kept.hget("nemo:identity", "token") == new.encode()  # compare-and-set
        finally:
            kept.close()
        await b.credits()
        assert b._auth.cached_token() == new
        assert token_requests(emu) == 2
    finally:
        for client in (a, b):
            await client.aclose()
        for store in stores:
            await store.aclose()


async def test_a_machine_that_had_a_token_before_joining_the_fleet_brings_it(
    emu: Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    """An app that ran with the file store, then joins a fleet: its token (and client id)
    become the fleet's. Asking again under the same client id would be refused (one token
    per client id per 7 days): the service answers 429."""
    async with NemoClient(base_url=emu.url, home=tmp_path / "app") as alone:
        await alone.credits()
        token = alone._auth.cached_token()
    assert token_requests(emu) == 1
    store = RedisJobStore(redis_server.url)
    try:
        async with NemoClient(base_url=emu.url, home=tmp_path / "app", job_store=store) as host:
            await host.credits()
            assert host._auth.cached_token() == token
        # Another machine of the fleet (its own home) uses the same identity.
        other = RedisJobStore(redis_server.url)
        async with NemoClient(base_url=emu.url, home=tmp_path / "b", job_store=other) as b:
            await b.credits()
            assert b._auth.cached_token() == token
        await other.aclose()
    finally:
        await store.aclose()
    assert token_requests(emu) == 1
