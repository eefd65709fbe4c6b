"""A task queue: an arq worker renders videos, and a retried task attaches to its render.

The task exports with an idempotency key, waits and downloads. When a worker dies mid-task
(SIGKILL, OOM, a lost pod), arq runs the task again on another worker once the job's
in-progress key runs out (``job_timeout`` + 10 s); the retry exports with the same key and
gets the render the first try started, instead of making (and waiting for) another.
The render jobs are shared through the same Redis arq uses (arq's keys are ``arq:...``,
the job store's ``nemo:...``); docs/fleet.md explains the store.

Run workers (any number, on any hosts sharing the Redis), from this folder:

    NEMO_REDIS_URL=redis://localhost:6379/0 NEMO_TOKEN=... arq fleet_arq.WorkerSettings

and enqueue from your app, naming the job after your order (arq then also refuses a second
enqueue of the same order while the first is queued, running, or its result is kept):

    pool = await arq.create_pool(fleet_arq.redis_settings())
    await pool.enqueue_job("render_video", session.id, draft, "renders", _job_id=f"order-{n}")

Or all of it in one process (upload, enqueue, a burst worker), on the embedded emulator:

    NEMO_REDIS_URL=redis://localhost:6379/0 python examples/fleet_arq.py --local
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import _support
from arq import ArqRedis, Worker, create_pool
from arq.connections import RedisSettings

import nemo_sync

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# A render may take this long; the task's own limit adds time for the download. A killed
# worker's task is retried JOB_TIMEOUT + 10 s after it started (arq's in-progress key): keep
# it no longer than a render needs.
RENDER_TIMEOUT = 900.0
JOB_TIMEOUT = RENDER_TIMEOUT + 120
# How soon another worker takes over polling a render from one that died (docs/fleet.md).
LEASE_TTL = 30.0


def redis_settings(url: str | None = None) -> RedisSettings:
    """arq's settings for ``url`` (else NEMO_REDIS_URL): redis://, rediss:// or unix://."""
    return RedisSettings.from_dsn(url or os.environ.get("NEMO_REDIS_URL") or DEFAULT_REDIS_URL)


async def startup(ctx: dict[str, Any]) -> None:
    """One job store and one client per worker, shared by all its tasks.

    The store uses arq's own connection pool (``ctx["redis"]``): one Redis, one pool; a store
    given a client never closes it (arq does). ``ctx["base_url"]``, when set (``main`` sets
    it), is the API's URL; otherwise the SDK reads NEMO_API_URL, as it reads NEMO_TOKEN.
    """
    store = nemo_sync.RedisJobStore(ctx["redis"], prefix="nemo:", lease_ttl=LEASE_TTL)
    ctx["job_store"] = store
    ctx["nemo"] = nemo_sync.NemoClient(base_url=ctx.get("base_url"), job_store=store)


async def shutdown(ctx: dict[str, Any]) -> None:
    nemo: nemo_sync.NemoClient | None = ctx.get("nemo")
    store: nemo_sync.RedisJobStore | None = ctx.get("job_store")
    if nemo is not None:
        await nemo.aclose()
    if store is not None:
        await store.aclose()


async def render_video(
    ctx: dict[str, Any],
    session_id: str,
    draft: dict[str, Any] | None,
    out_dir: str,
    order_id: str | None = None,
) -> str:
    """Render ``draft`` (``None``: the session's timeline now) and download it to ``out_dir``.

    Returns the MP4's path (a str: arq pickles results).
    """
    # The key must be the same on every try of this task and differ between tasks. A retry of
    # an arq job keeps its job id (after a worker's death or shutdown, an arq.Retry), so the
    # job id is such a key; a caller-given order id is better still: it also covers a task
    # enqueued twice for one order. A random key (or none) makes a new render on every retry.
    key = f"render-video:{order_id or ctx['job_id']}"
    nemo: nemo_sync.NemoClient = ctx["nemo"]
    session = nemo.session(session_id)
    # First try: reserves the key and submits. A retry: the same job, no new request; if the
    # first try died mid-submission, the SDK asks the service whether the render arrived.
    job = await session.export(draft, idempotency_key=key)
    print(f"try {ctx['job_try']}: render {job.id}")
    # With several waiters (a dead worker's lease running out, other hosts) one polls and the
    # others follow it; a retry usually finds the render finished or nearly so.
    await job.wait(timeout=RENDER_TIMEOUT)
    path = await job.download(Path(out_dir) / f"{order_id or ctx['job_id']}.mp4")
    return str(path)


class WorkerSettings:
    """``arq fleet_arq.WorkerSettings``. arq reads this class's own ``__dict__`` only: a
    subclass loses these attributes, so to change some, pass a dict of them instead."""

    functions = (render_video,)
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    job_timeout = JOB_TIMEOUT
    # A task that raises (RenderFailedError, job_timeout's TimeoutError...) is not retried by
    # arq: only one whose worker died or shut down mid-task, or that raised arq.Retry, is.
    max_tries = 3


async def enqueue_and_run(
    base_url: str | None, redis_url: str, music: Path, clips: list[Path], out: Path
) -> Path:
    """Upload, make a draft, enqueue one render task, and run a burst worker until it is done."""
    # The app is a host of the fleet too: with the same store it shares the workers' identity
    # (without NEMO_TOKEN, one anonymous account: the session it makes is theirs to export).
    store = nemo_sync.RedisJobStore(redis_url)
    try:
        async with nemo_sync.NemoClient(base_url=base_url, job_store=store) as nemo:
            session = await nemo.create_session()
            for path in [music, *clips]:
                await session.upload(path)
            await session.send("sync the background music to my video")
            state = await session.state()
            # Pinned now: a retry renders this draft even if the session changed since.
            draft = dict(state.draft_wire) if state.draft_wire else None
    finally:
        await store.aclose()

    pool: ArqRedis = await create_pool(redis_settings(redis_url))
    try:
        order_id = f"order-{uuid.uuid4().hex[:12]}"
        job = await pool.enqueue_job(
            "render_video", session.id, draft, str(out), order_id, _job_id=order_id
        )
        assert job is not None  # a new id: never already enqueued
        worker = Worker(
            functions=[render_video],
            redis_settings=redis_settings(redis_url),  # its own pool, closed by close()
            on_startup=startup,
            on_shutdown=shutdown,
            ctx={"base_url": base_url},
            job_timeout=JOB_TIMEOUT,
            max_tries=3,
            burst=True,  # exit once the queue is empty
            handle_signals=False,
            poll_delay=0.2,
        )
        try:
            await worker.async_run()
        finally:
            await worker.close()
        return Path(await job.result(timeout=10))
    finally:
        await pool.aclose()


async def main(argv: list[str] | None = None) -> Path:
    p = _support.parser(__doc__ or "")
    p.add_argument(
        "--redis",
        default=os.environ.get("NEMO_REDIS_URL"),
        help="Redis URL for arq and the job store (NEMO_REDIS_URL)",
    )
    args = p.parse_args(argv)
    if not args.redis:
        p.error("a Redis is needed: --redis URL or NEMO_REDIS_URL")
    args.out.mkdir(parents=True, exist_ok=True)
    with _support.media(args.files) as (music, clips):
        async with _support.api(args.local) as base_url:
            path = await enqueue_and_run(base_url, args.redis, music, clips, args.out)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    asyncio.run(main())
