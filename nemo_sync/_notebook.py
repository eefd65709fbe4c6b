"""Jupyter: progress that shows itself, and results that display as what they are.

In a notebook, a call made without a progress callback (an upload, ``job.wait()``, a
download) still shows its progress: tqdm's notebook bar when ``tqdm`` and ``ipywidgets`` are
installed (``nemo-sync[notebook]``), else a plain line at every tenth. Outside a notebook
nothing here does anything: scripts and services print nothing they did not ask for.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PosixPath, WindowsPath
from typing import Any, TypeVar, cast

logger = logging.getLogger("nemo_sync")

# Inline videos are embedded in the notebook (a data: URI) up to this size; a bigger one
# would bloat the .ipynb, so it is shown as a link to its file instead.
MAX_EMBEDDED_VIDEO = 25 * 1024 * 1024

# (done, total): bytes for uploads and downloads (total None while unknown), percent for
# renders. The SDK's byte callbacks have this shape.
ProgressFn = Callable[[int, "int | None"], object]


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (not a terminal IPython, not a script)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Bar:
    """One progress display: a tqdm notebook widget, else a text line at every tenth."""

    def __init__(self, label: str, total: float | None, unit: str) -> None:
        self._label = label
        self._total = total
        self._unit = unit
        self._tenth = -1
        self._widget: Any = None
        try:
            from tqdm.notebook import tqdm

            scale = unit == "B"
            self._widget = tqdm(
                total=total,
                desc=label,
                unit=unit,
                unit_scale=scale,
                unit_divisor=1024 if scale else 1000,
            )
        except ImportError:  # no tqdm, or no ipywidgets for its widget: plain lines
            self._widget = None

    def update(self, done: int, total: int | None) -> None:
        if total and total > 0:
            self._total = total
        if self._widget is not None:
            if total and total > 0 and self._widget.total != total:
                self._widget.total = total
            self._widget.n = done
            self._widget.refresh()
            return
        if not self._total:
            return
        tenth = min(int(done * 10 / self._total), 10)
        if tenth > self._tenth:
            self._tenth = tenth
            print(f"{self._label}: {tenth * 10}%", flush=True)

    def close(self, ok: bool) -> None:
        if self._widget is not None:
            if ok and self._total:
                self._widget.n = self._total
                self._widget.refresh()
            self._widget.close()


_Callback = TypeVar("_Callback", bound=Callable[..., object])


@contextmanager
def notebook_progress(
    given: _Callback | None, label: str, *, total: float | None, unit: str = "B"
) -> Iterator[_Callback | None]:
    """``given`` when there is one; in a notebook without one, a display's callback; else
    ``None``. The display is closed when the block ends (finished, or not)."""
    if given is not None or not in_notebook() or os.environ.get("NEMO_PROGRESS") == "0":
        yield given
        return
    bar = _Bar(label, total, unit)
    ok = False
    try:
        # (done, total) with total optional: it fits every progress callback of the SDK.
        yield cast(_Callback, bar.update)
        ok = True
    finally:
        bar.close(ok)


def still_working_line(elapsed: float) -> None:
    """The notebook's default for a long chat turn: a line every two minutes."""
    print(f"Still working... ({elapsed:.0f} s)", flush=True)


def video_html(src: str, *, caption: str = "") -> str:
    """A ``<video>`` element for ``src`` (escaped), with a caption under it."""
    note = f"<div>{html.escape(caption)}</div>" if caption else ""
    return (
        f'<video src="{html.escape(src, quote=True)}" controls playsinline '
        f'style="max-width: 480px; max-height: 480px"></video>{note}'
    )


_PathBase: Any = WindowsPath if os.name == "nt" else PosixPath


class VideoFile(_PathBase):  # type: ignore[misc]
    """A downloaded video: a :class:`pathlib.Path` in every way, which a notebook shows as a
    player (embedded up to 25 MB; a bigger file as its path)."""

    def _repr_html_(self) -> str:
        path = Path(self)
        try:
            size = path.stat().st_size
        except OSError:
            return f"<code>{html.escape(str(path))}</code> (missing)"
        if size > MAX_EMBEDDED_VIDEO:
            return (
                f"<code>{html.escape(str(path))}</code> ({size / 1e6:.0f} MB: too large to "
                "embed; open the file)"
            )
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return video_html(f"data:video/mp4;base64,{data}", caption=f"{path.name}, {size:,} bytes")
