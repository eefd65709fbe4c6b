"""How the CLI talks: human lines or JSON, errors as one clear line, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import attrs


class Output:
    """Prints results as text or JSON (``--json``); chatter goes to stderr."""

    def __init__(
        self, *, as_json: bool, verbose: bool, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def result(self, human: str, data: Any = None) -> None:
        """The command's result: ``human`` as text, or ``data`` as one JSON document."""
        if self.as_json:
            self.out.write(json.dumps(_jsonable(data), ensure_ascii=False, indent=2) + "\n")
        else:
            self.out.write(human + "\n")
        self.out.flush()

    def say(self, text: str, *, end: str = "\n") -> None:
        """Progress and status for a person (stderr in JSON mode, so stdout stays parseable)."""
        stream = self.err if self.as_json else self.out
        stream.write(text + end)
        stream.flush()

    def info(self, text: str) -> None:
        """Details shown only with -v."""
        if self.verbose:
            self.err.write(text + "\n")
            self.err.flush()

    def error(self, text: str) -> None:
        """One clear line on stderr."""
        self.err.write(f"error: {text}\n")
        self.err.flush()

    def hint(self, text: str) -> None:
        """A suggestion after an error (stderr)."""
        self.err.write(f"hint: {text}\n")
        self.err.flush()

    def progress(self, label: str, *, total: float | None, unit: str = "B") -> Progress:
        """A progress bar on a terminal (tqdm, when installed), plain lines otherwise."""
        return Progress(self, label, total=total, unit=unit)


class Progress:
    """A progress display: a tqdm bar on a TTY, else a line at every 10%."""

    def __init__(self, output: Output, label: str, *, total: float | None, unit: str) -> None:
        self._output = output
        self._label = label
        self._total = total
        self._unit = unit
        self._bar: Any = None
        self._last_decile = -1
        self._done = 0.0
        stream = output.err
        if stream.isatty() and not output.as_json:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                scale = unit == "B"
                self._bar = tqdm(
                    total=total,
                    desc=label,
                    unit=unit,
                    unit_scale=scale,
                    unit_divisor=1024 if scale else 1000,
                    file=stream,
                    leave=True,
                )

    def update_to(self, done: float, total: float | None = None) -> None:
        """Set the absolute progress."""
        if total is not None:
            self._total = total
        if self._bar is not None:
            if total is not None:
                self._bar.total = total
            self._bar.update(done - self._bar.n)
            return
        self._done = done
        if not self._total:
            return
        decile = int(10 * done / self._total)
        if decile != self._last_decile:
            self._last_decile = decile
            self._output.say(f"{self._label}: {min(100, decile * 10)}%")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def callback(self) -> Callable[[int, int | None], None]:
        """An ``on_progress(done, total)`` for the library's upload and download calls."""
        return self.update_to


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return _jsonable(attrs.asdict(value, recurse=False))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_wire"):
        return value.to_wire()
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
