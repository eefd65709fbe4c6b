"""The test double for the render engine, shared by the emulator, render and backend tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class BytesRenderBackend:
    """TEST DOUBLE: reports progress and writes known bytes that are not a video.

    For tests only; real renders come from ``nemo_sync.local.LocalRenderBackend``. Each render
    is recorded in ``calls``; ``seconds`` spreads a render over that long (a slow engine);
    ``fail`` makes the next renders raise with that message.
    """

    name = "bytes-test-double"

    def __init__(
        self, payload: bytes = b"not-a-video:" + bytes(range(256)) * 64, *, seconds: float = 0.0
    ) -> None:
        self.payload = payload
        self.seconds = seconds
        self.fail: str | None = None
        self.calls: list[dict[str, Any]] = []

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
        self.calls.append({"draft": draft, "media": dict(media), "size": (width, height)})
        for done in (0.25, 0.5, 1.0):
            time.sleep(self.seconds / 3)
            on_progress(done)
        if self.fail:
            raise RuntimeError(self.fail)
        out.write_bytes(self.payload)
