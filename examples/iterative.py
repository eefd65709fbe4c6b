"""Iterative: a rough cut, a look, then refinements; the session keeps the timeline.

python examples/iterative.py --local
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import _support

import nemo_sync

REFINEMENTS = [
    "sync the background music to my video",
    "set the music volume to 50%",
    "add the title 'Urban Dreams' for 3 seconds",
    "make it 9:16",
]


async def iterate(base_url: str | None, music: Path, clips: list[Path], out: Path) -> Path:
    async with nemo_sync.NemoClient(base_url=base_url) as nemo:
        session = await nemo.create_session()
        for path in [music, *clips]:
            await session.upload(path)
        for instruction in REFINEMENTS:
            result = await session.send(instruction)
            print(f"> {instruction}")
            print(f"  {result.text}")
            for change in result.changes:
                print(f"  - {change.sentence}")
        state = await session.state()
        print(state.draft.summary())
        job = await session.export()
        await job.wait()  # polls soon, then backs off to the service's 30 s
        return await job.download(out / "iterative.mp4")


async def main(argv: list[str] | None = None) -> Path:
    args = _support.parser(__doc__ or "").parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with _support.media(args.files) as (music, clips):
        async with _support.api(args.local) as base_url:
            path = await iterate(base_url, music, clips, args.out)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    asyncio.run(main())
