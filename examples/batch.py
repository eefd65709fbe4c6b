"""Batch: many clips in one session, each with its own instruction and its own render.

At most ``--concurrency`` renders run at once; each result is downloaded as it finishes.

    python examples/batch.py --local
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import _support

import nemo_sync

STYLES = [
    "add a title 'Take {n}' for 2 seconds",
    "set the music volume to 60%",
    "make it 1:1 square",
]


async def batch(
    base_url: str | None, music: Path, clips: list[Path], out: Path, concurrency: int = 2
) -> list[Path]:
    async with nemo_sync.NemoClient(base_url=base_url) as nemo:
        session = await nemo.create_session()
        await session.upload(music)
        uploaded = [await session.upload(clip) for clip in clips]
        await session.send("sync the background music to my video")
        # Chat edits one shared timeline, so instructions go one at a time; renders overlap.
        limit = asyncio.Semaphore(concurrency)
        renders = []
        for n, clip in enumerate(uploaded, 1):
            await session.send(STYLES[(n - 1) % len(STYLES)].format(n=n))
            job = await session.export()
            renders.append(
                # The clip's stem: "batch-1-sunset.mp4", never "batch-1-sunset.mp4.mp4".
                asyncio.create_task(
                    _finish(job, limit, out / f"batch-{n}-{Path(clip.name).stem}.mp4")
                )
            )
        return list(await asyncio.gather(*renders))


async def _finish(job: nemo_sync.RenderJob, limit: asyncio.Semaphore, dest: Path) -> Path:
    async with limit:
        await job.wait()
        return await job.download(dest)


async def main(argv: list[str] | None = None) -> list[Path]:
    args = _support.parser(__doc__ or "").parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with _support.media(args.files) as (music, clips):
        async with _support.api(args.local) as base_url:
            paths = await batch(base_url, music, clips, args.out)
    for path in paths:
        print(f"saved {path}")
    return paths


if __name__ == "__main__":
    asyncio.run(main())
