"""Shared by the examples: where the API is, and media to try them with.

Each example runs against the real service when NEMO_TOKEN (or an anonymous token) and
files are given, and against the embedded emulator with ``--local`` (sample media made on
the spot). Tests run them with ``--local``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from nemo_sync.emulator import Emulator


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("files", nargs="*", type=Path, help="music first, then clips")
    p.add_argument("--local", action="store_true", help="use the embedded emulator")
    p.add_argument("--out", type=Path, default=Path("example-output"), help="folder for the MP4s")
    return p


@contextlib.asynccontextmanager
async def api(local: bool) -> AsyncIterator[str | None]:
    """The base URL to use: an emulator's with --local, else None (the SDK's default)."""
    if not local:
        yield None
        return
    async with Emulator() as emu:
        yield emu.url


@contextlib.contextmanager
def media(files: list[Path]) -> Iterator[tuple[Path, list[Path]]]:
    """(music, clips): the files given, else generated samples, removed afterwards.

    Sample media needs nemo-sync[local].
    """
    if files:
        yield files[0], files[1:]
        return
    from nemo_sync.local import make_sample_media

    with tempfile.TemporaryDirectory(prefix="nemo-example-") as folder:
        samples = make_sample_media(Path(folder), seconds=6.0)
        yield samples.music, list(samples.clips)
