"""Fleet: many hosts sharing render jobs through a real Redis (docs/fleet.md).

Hosts are separate processes (this script with ``--host``) sharing one emulator (in this
process, whose request log counts what reached the API) and one real ``redis-server`` (the
Debian package, on a loopback TCP port, AOF on with ``appendfsync everysec``). Each figure is
set against a baseline measured in the same run:

- API polls per job: every host waits for every job, against one host waiting alone
  (target <= 1.05x);
- hand-over after ``kill -9`` of the host polling: the time until another host polls
  (p50/p99, target <= lease TTL + 5 s);
- renders per idempotency key when every host exports every key at once (target 1, that
  is 0 duplicates), against hosts that share no store;
- anonymous-token requests when the fleet starts cold (target 1), against hosts that
  share no store;
- Redis commands per API poll while the fleet waits;
- per-call cost of ``export()`` and ``wait()`` with the Redis store against the file
  store, and against one bare API request.

    python benchmarks/bench_fleet.py            # 8 hosts, 20 jobs, 10 s leases (minutes)
    python benchmarks/bench_fleet.py --quick    # 3 hosts, 4 jobs, 2 s leases (seconds)

Without ``redis-server`` it says so and exits 0 (1 when ``NEMO_REQUIRE_REDIS=1``, as in CI).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table

from nemo_sync import JobStore, NemoClient, NemoError, RedisJobStore, RenderJob, RenderResult
from nemo_sync._contract import ANONYMOUS_TOKEN_PATH, RENDER_PATH
from nemo_sync.emulator import Emulator

HERE = Path(__file__).resolve()
# A minimal ISO-BMFF header: what the upload checks accept. The render engine is not what
# is measured here (InstantRender below), the emulator's render_seconds is.
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)
TOKEN = "bench-fleet-token"
POLL = 0.25


@dataclass(frozen=True)
class Sizes:
    hosts: int
    jobs: int
    keys: int
    lease_ttl: float
    render_seconds: float
    kills: int
    calls: int


QUICK = Sizes(hosts=3, jobs=4, keys=4, lease_ttl=2.0, render_seconds=2.0, kills=1, calls=20)
FULL = Sizes(hosts=8, jobs=20, keys=20, lease_ttl=10.0, render_seconds=6.0, kills=3, calls=200)


class InstantRender:
    """Writes a few bytes at once: the emulator's ``render_seconds`` sets how long a render
    takes, and no CPU goes to encoding video while hosts are being timed."""

    name = "bench-instant"

    def render(
        self,
        draft: dict[str, Any],
        media: Mapping[str, Path],
        out: Path,
        *,
        width: int,
        height: int,
        on_progress: Callable[[float], None],
    ) -> None:
        on_progress(1.0)
        out.write_bytes(b"bench-fleet")


# -- one host (this script with --host) ---------------------------------------------------


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def until_exists(path: str) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.01)


async def host_main(config: dict[str, Any]) -> None:
    store: RedisJobStore | None = None
    if config.get("redis_url"):
        store = RedisJobStore(
            config["redis_url"], prefix=config["prefix"], lease_ttl=config["lease_ttl"]
        )
    async with NemoClient(
        base_url=config["base_url"], token=config.get("token"), home=config["home"], job_store=store
    ) as nemo:
        say(ready=True)
        await until_exists(config["go"])
        if config["mode"] == "wait":
            original = RenderJob.status

            async def status(self: RenderJob) -> RenderResult:
                say(poll=time.time(), job=self.id)  # the emulator cannot tell hosts apart
                return await original(self)

            RenderJob.status = status  # type: ignore[method-assign]
            ids = json.loads(Path(config["go"]).read_text())
            await asyncio.gather(
                *(nemo.render_job(i).wait(poll_interval=POLL, timeout=600) for i in ids)
            )
        elif config["mode"] == "export":
            session = nemo.session(config["session_id"])
            jobs = await asyncio.gather(
                *(session.export(config["draft"], idempotency_key=key) for key in config["keys"]),
                return_exceptions=True,
            )
            # Hosts sharing no store can collide on render_<ms> ids: the service refuses the
            # duplicate, and a second collision of the retry fails the export. Counted.
            for job in jobs:
                if isinstance(job, BaseException) and not isinstance(job, NemoError):
                    raise job
            say(
                ids={
                    k: j.id
                    for k, j in zip(config["keys"], jobs, strict=True)
                    if isinstance(j, RenderJob)
                },
                refused=sum(1 for j in jobs if isinstance(j, NemoError)),
            )
        else:  # "cold": one call, which needs an anonymous token
            await nemo.credits()
        say(done=time.time())
    if store is not None:
        await store.aclose()


# -- the processes --------------------------------------------------------------------------


class Hosts:
    """Host processes, each printing one JSON object a line (read in the background)."""

    def __init__(self, base: dict[str, Any], folder: Path) -> None:
        self.base = base
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.go = folder / f"go-{uuid.uuid4().hex}"
        self.procs: list[asyncio.subprocess.Process] = []
        self.lines: list[list[dict[str, Any]]] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, count: int, env: Callable[[int], dict[str, str]] | None = None) -> None:
        for _ in range(count):
            n = len(self.procs)
            config = {**self.base, "home": str(self.folder / f"home-{n}"), "go": str(self.go)}
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE),
                "--host",
                json.dumps(config),
                stdout=subprocess.PIPE,
                env={**os.environ, **(env(n) if env else {})},
            )
            self.procs.append(process)
            self.lines.append([])
            self._readers.append(asyncio.create_task(self._read(n, process)))
        await self.until(lambda lines: any("ready" in line for line in lines))

    async def _read(self, n: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            self.lines[n].append(json.loads(line))

    async def until(
        self, check: Callable[[list[dict[str, Any]]], bool], within: float = 120
    ) -> None:
        """Until ``check`` holds for every living host's lines."""
        end = time.monotonic() + within
        while not all(
            check(lines)
            for p, lines in zip(self.procs, self.lines, strict=True)
            if p.returncode is None
        ):
            if time.monotonic() > end:
                raise RuntimeError(f"hosts stalled: {[lines[-3:] for lines in self.lines]}")
            await asyncio.sleep(0.02)

    def begin(self, payload: object = None) -> None:
        tmp = self.go.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self.go)  # every host starts at once, and reads a whole file

    async def finish(self) -> None:
        for process in self.procs:
            if await asyncio.wait_for(process.wait(), 600) != 0:
                raise RuntimeError(f"a host failed: {self.lines}")
        await asyncio.gather(*self._readers)

    async def close(self) -> None:
        for process in self.procs:
            if process.returncode is None:
                process.kill()
                await process.wait()


# -- Redis ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A real redis-server on loopback, AOF on (every second), as a production one runs."""
    executable = shutil.which("redis-server")
    assert executable is not None
    port = free_port()
    process = subprocess.Popen(
        [
            *(executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            *("--daemonize", "no", "--loglevel", "warning"),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url)
        for _ in range(400):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.025)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_commands(url: str) -> dict[str, int]:
    """Commands Redis has run so far, by name (``INFO commandstats``)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    finally:
        client.close()


# -- the measurements -----------------------------------------------------------------------


def emulator(render_seconds: float) -> Emulator:
    emu = Emulator(render_backend=InstantRender(), render_seconds=render_seconds)
    emu.add_token(TOKEN)
    return emu


async def new_draft(emu: Emulator, home: Path) -> tuple[str, dict[str, Any]]:
    async with NemoClient(base_url=emu.url, token=TOKEN, home=home) as nemo:
        session = await nemo.create_session()
        media = await session.upload(CLIP, filename="clip.mp4")
    draft = {"t": [{"tt": 0, "sg": [{"mid": media.key, "st": 0, "d": 1000}]}], "d": 1000}
    return session.id, draft


def polls(emu: Emulator, ids: set[str]) -> int:
    return sum(1 for r in emu.requests if r.method == "GET" and r.path.rsplit("/", 1)[-1] in ids)


async def export_jobs(emu: Emulator, count: int, home: Path, store: JobStore | None) -> list[str]:
    session_id, draft = await new_draft(emu, home)
    async with NemoClient(base_url=emu.url, token=TOKEN, home=home, job_store=store) as nemo:
        session = nemo.session(session_id)
        return [(await session.export(draft)).id for _ in range(count)]


async def polls_per_job(
    sizes: Sizes, redis_url: str, folder: Path
) -> tuple[list[list[str]], int, dict[str, int]]:
    """Rows, the fleet's API polls, Redis commands during the fleet's wait (by name).

    The baseline is one host with the same (Redis) store, so the ratio shows what more hosts
    add; one host with the file store is shown too (its polls come a little further apart:
    each is followed by a write of jobs.json under its file lock)."""
    rows = []
    baseline = 0.0
    api_polls = 0
    commands: dict[str, int] = {}
    for label, count, store in (
        ("1 host, Redis store (baseline)", 1, "redis"),
        ("1 host, file store", 1, "file"),
        (f"{sizes.hosts} hosts, Redis store, each waiting for every job", sizes.hosts, "redis"),
    ):
        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        async with emulator(sizes.render_seconds) as emu:
            run = folder / f"polls-{store}-{count}"
            base: dict[str, Any] = {"mode": "wait", "base_url": emu.url, "token": TOKEN}
            base |= {"prefix": prefix, "lease_ttl": sizes.lease_ttl}
            base |= {"redis_url": redis_url if store == "redis" else None}
            hosts = Hosts(base, run)
            try:
                await hosts.start(count)
                exporter = RedisJobStore(redis_url, prefix=prefix) if store == "redis" else None
                ids = await export_jobs(emu, sizes.jobs, run / "exporter", exporter)
                if exporter is not None:
                    await exporter.aclose()
                before = redis_commands(redis_url)
                hosts.begin(ids)
                await hosts.finish()
                after = redis_commands(redis_url)
            finally:
                await hosts.close()
            made = polls(emu, set(ids))
        per_job = made / sizes.jobs
        baseline = baseline or per_job
        if count > 1:
            api_polls = made
            commands = {n: c - before.get(n, 0) for n, c in after.items() if n != "info"}
            commands = {n: c for n, c in commands.items() if c}
        pollers = {
            job: {n for n, lines in enumerate(hosts.lines) for x in lines if x.get("job") == job}
            for job in ids
        }
        shared = sum(1 for who in pollers.values() if len(who) > 1)
        rows.append(
            [
                label,
                str(sizes.jobs),
                f"{per_job:.1f}",
                f"{per_job / baseline:.2f}x" + (" (target <= 1.05x)" if count > 1 else ""),
                str(shared),
            ]
        )
    return rows, api_polls, commands


def polled_every(ids: list[str]) -> Callable[[list[dict[str, Any]]], bool]:
    """A check of a host's lines: it has polled each of ``ids``."""
    return lambda lines: {x.get("job") for x in lines} >= set(ids)


def own_machine(folder: Path) -> Callable[[int], dict[str, str]]:
    """Host n's environment: its own machine client id file, as on another machine."""
    return lambda n: {"XDG_CONFIG_HOME": str(folder / f"xdg-{n}")}


async def handover(sizes: Sizes, redis_url: str, folder: Path) -> list[float]:
    """Seconds from SIGKILL of the polling host to the first poll of each of its jobs by
    another host. Host 0 takes every lease first; hosts 1 and 2 follow; host 0 is killed at a
    random point of its lease period, so the samples cover the renewal cycle."""
    samples: list[float] = []
    for trial in range(sizes.kills):
        prefix = f"bench-kill-{trial}-{uuid.uuid4().hex[:8]}:"
        # Long enough that every job is still rendering when the others take over.
        async with emulator(sizes.lease_ttl * 2 + 10) as emu:
            run = folder / f"kill-{trial}"
            base: dict[str, Any] = {
                "mode": "wait",
                "base_url": emu.url,
                "token": TOKEN,
                "prefix": prefix,
            }
            base |= {"lease_ttl": sizes.lease_ttl, "redis_url": redis_url}
            owner = Hosts(base, run / "owner")
            others = Hosts(base, run / "others")
            try:
                await owner.start(1)
                exporter = RedisJobStore(redis_url, prefix=prefix)
                ids = await export_jobs(emu, sizes.jobs, run / "exporter", exporter)
                await exporter.aclose()
                owner.begin(ids)
                await owner.until(polled_every(ids))
                await others.start(2)
                others.begin(ids)
                await asyncio.sleep(1.0)  # both subscribed, following
                await asyncio.sleep(random.uniform(0, sizes.lease_ttl))
                owner.procs[0].send_signal(signal.SIGKILL)
                killed = time.time()
                await others.finish()
            finally:
                await owner.close()
                await others.close()
            for job in ids:
                taken = min(
                    x["poll"]
                    for lines in others.lines
                    for x in lines
                    if x.get("job") == job and x["poll"] > killed
                )
                samples.append(taken - killed)
    return samples


async def exports_per_key(sizes: Sizes, redis_url: str, folder: Path) -> list[list[str]]:
    rows = []
    for label, store in (("no shared store (a home per host)", "file"), ("Redis store", "redis")):
        prefix = f"bench-keys-{uuid.uuid4().hex[:8]}:"
        async with emulator(sizes.render_seconds) as emu:
            run = folder / f"keys-{store}"
            session_id, draft = await new_draft(emu, run / "author")
            keys = [f"order-{uuid.uuid4().hex[:6]}-{k}" for k in range(sizes.keys)]
            base: dict[str, Any] = {
                "mode": "export",
                "base_url": emu.url,
                "token": TOKEN,
                "prefix": prefix,
            }
            base |= {"session_id": session_id, "draft": draft, "keys": keys}
            base |= {
                "lease_ttl": sizes.lease_ttl,
                "redis_url": redis_url if store == "redis" else None,
            }
            hosts = Hosts(base, run)
            try:
                await hosts.start(sizes.hosts)
                hosts.begin()
                await hosts.finish()
            finally:
                await hosts.close()
            sent = sum(1 for r in emu.requests if r.method == "POST" and r.path == RENDER_PATH)
            renders = len(emu.renders)
            refused = sum(x["refused"] for lines in hosts.lines for x in lines if "ids" in x)
        rows.append(
            [
                label,
                f"{sizes.hosts} x {sizes.keys}",
                f"{sent / sizes.keys:.2f}",
                f"{renders / sizes.keys:.2f}",
                str(renders - sizes.keys) + (" (target 0)" if store == "redis" else ""),
                str(refused),
            ]
        )
    return rows


async def token_requests(sizes: Sizes, redis_url: str, folder: Path) -> list[list[str]]:
    rows = []
    for label, store in (("no shared store (a home per host)", "file"), ("Redis store", "redis")):
        prefix = f"bench-cold-{uuid.uuid4().hex[:8]}:"
        async with Emulator(render_backend=InstantRender()) as emu:
            run = folder / f"cold-{store}"
            base: dict[str, Any] = {"mode": "cold", "base_url": emu.url, "prefix": prefix}
            base |= {
                "lease_ttl": sizes.lease_ttl,
                "redis_url": redis_url if store == "redis" else None,
            }
            hosts = Hosts(base, run)
            try:
                # Each host its own machine: its own client id file under XDG_CONFIG_HOME.
                await hosts.start(sizes.hosts, env=own_machine(run))
                hosts.begin()
                await hosts.finish()
            finally:
                await hosts.close()
            asked = sum(
                1 for r in emu.requests if r.method == "POST" and r.path == ANONYMOUS_TOKEN_PATH
            )
        rows.append(
            [label, str(sizes.hosts), str(asked) + (" (target 1)" if store == "redis" else "")]
        )
    return rows


async def timed_calls(count: int, call: Callable[[], Any]) -> float:
    """Median seconds of ``count`` sequential calls (after one warm-up)."""
    await call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def costs_with(
    store: RedisJobStore | None, emu: Emulator, home: Path, calls: int
) -> dict[str, float]:
    """Median seconds of ``export()`` and of ``wait()`` on a finished render with ``store``
    (None: the file store), and of one bare status GET."""
    session_id, draft = await new_draft(emu, home / "author")
    async with NemoClient(base_url=emu.url, token=TOKEN, home=home, job_store=store) as nemo:
        session = nemo.session(session_id)
        finished = await session.export(draft)
        await finished.wait(poll_interval=0.05)

        async def export() -> RenderJob:
            return await session.export(draft)

        async def wait() -> RenderResult:
            return await nemo.render_job(finished.id).wait(poll_interval=0.05)

        return {
            "status": await timed_calls(calls, finished.status),
            "export": await timed_calls(calls, export),
            "wait": await timed_calls(calls, wait),
        }


async def per_call_cost(sizes: Sizes, redis_url: str, folder: Path) -> list[list[str]]:
    found: dict[str, float] = {}
    async with emulator(0.0) as emu:
        file_costs = await costs_with(None, emu, folder / "cost-file", sizes.calls)
        store = RedisJobStore(redis_url, prefix=f"bench-cost-{uuid.uuid4().hex[:8]}:")
        try:
            redis_costs = await costs_with(store, emu, folder / "cost-redis", sizes.calls)
        finally:
            await store.aclose()
    found["status"] = file_costs["status"]
    for name in ("export", "wait"):
        found[f"{name}-file"] = file_costs[name]
        found[f"{name}-redis"] = redis_costs[name]
    bare = found["status"]

    def row(label: str, key: str, against: str) -> list[str]:
        ms = found[key] * 1000
        return [
            label,
            f"{ms:.2f} ms",
            f"{found[key] / bare:.2f}x",
            f"{found[key] / found[against]:.2f}x",
        ]

    return [
        ["`job.status()`: one GET, no store (baseline)", f"{bare * 1000:.2f} ms", "1.00x", ""],
        row("`export()`, file store", "export-file", "export-file"),
        row("`export()`, Redis store", "export-redis", "export-file"),
        row("`wait()` on a finished render, file store", "wait-file", "wait-file"),
        row("`wait()` on a finished render, Redis store", "wait-redis", "wait-file"),
    ]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        folder = Path(tmp)
        poll_rows, api_polls, commands = await polls_per_job(sizes, url, folder)
        kills = await handover(sizes, url, folder)
        key_rows = await exports_per_key(sizes, url, folder)
        token_rows = await token_requests(sizes, url, folder)
        cost_rows = await per_call_cost(sizes, url, folder)
    ttl = sizes.lease_ttl
    where = f"{machine()}, redis-server on loopback TCP"
    return "\n".join(
        [
            table(
                f"Fleet: API polls per job ({where}; renders of {sizes.render_seconds:g} s, "
                f"polls every {POLL:g} s)",
                ["hosts", "jobs", "API polls per job", "vs one host", "jobs polled by 2+ hosts"],
                poll_rows,
            ),
            table(
                "Fleet: Redis commands while the fleet waits",
                ["API polls", "Redis commands", "per API poll", "the most run"],
                [
                    [
                        str(api_polls),
                        str(sum(commands.values())),
                        f"{sum(commands.values()) / max(api_polls, 1):.1f}",
                        ", ".join(
                            f"{name} {count}"
                            for name, count in sorted(commands.items(), key=lambda c: -c[1])[:5]
                        ),
                    ]
                ],
            ),
            table(
                f"Fleet: hand-over after kill -9 of the polling host (lease TTL {ttl:g} s; "
                f"{sizes.kills} kill(s) x {sizes.jobs} jobs)",
                ["samples", "p50", "p99", "max", "target"],
                [
                    [
                        str(len(kills)),
                        f"{percentile(kills, 0.5):.2f} s",
                        f"{percentile(kills, 0.99):.2f} s",
                        f"{max(kills):.2f} s",
                        f"<= TTL + 5 s = {ttl + 5:g} s",
                    ]
                ],
            ),
            table(
                "Fleet: idempotency keys, every host exporting every key at once",
                [
                    "hosts share",
                    "hosts x keys",
                    "render requests per key",
                    "renders per key",
                    "duplicate renders",
                    "exports refused (id collisions)",
                ],
                key_rows,
            ),
            table(
                "Fleet: a cold start (no token anywhere)",
                ["hosts share", "hosts", "anonymous-token requests"],
                token_rows,
            ),
            table(
                f"Fleet: per-call cost of the store (median of {sizes.calls})",
                ["call", "median", "vs one GET", "vs file store"],
                cost_rows,
            ),
        ]
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--host":
        asyncio.run(host_main(json.loads(sys.argv[2])))
    elif shutil.which("redis-server") is None:
        print("bench_fleet: skipped, redis-server is not installed (apt-get install redis-server)")
        sys.exit(1 if os.environ.get("NEMO_REQUIRE_REDIS") == "1" else 0)
    else:
        print(asyncio.run(main()))
