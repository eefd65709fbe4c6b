"""Quick edit: upload music and clips, ask for the beat sync, download the MP4.

python examples/quick_edit.py --local
python examples/quick_edit.py song.mp3 clip1.mp4 clip2.mp4
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import _support

import nemo_sync


async def quick_edit(base_url: str | None, music: Path, clips: list[Path], out: Path) -> Path:
    async with nemo_sync.NemoClient(base_url=base_url) as nemo:
        session = await nemo.create_session()
        for path in [music, *clips]:
            media = await session.upload(path)
            print(f"uploaded {media.name} ({media.kind})")
        reply = await session.send(
            "sync the background music to my video and adjust the beat drops to match the cuts"
        )
        print(reply.text)
        print((await session.state()).draft.summary())
        job = await session.export()
        await job.wait()  # polls soon, then backs off to the service's 30 s
        return await job.download(out / "quick_edit.mp4")


async def main(argv: list[str] | None = None) -> Path:
    args = _support.parser(__doc__ or "").parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with _support.media(args.files) as (music, clips):
        async with _support.api(args.local) as base_url:
            path = await quick_edit(base_url, music, clips, args.out)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    asyncio.run(main())
