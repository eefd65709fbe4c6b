"""How the CLI talks: human lines or JSON, errors as one clear line, progress bars.

Everything written goes through ``terminal_safe`` (or, for JSON, ``_json_safe``): names,
replies and error messages come from the server, and raw control bytes in them could clear
the screen, retitle the window or rewrite what was printed before.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import attrs

# C0 controls except tab and newline, DEL, and the C1 controls (U+0080-U+009F: a terminal may
# read U+009B as CSI, the same as ESC [), shown as \x1b and so on.
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
_TERMINAL_ESCAPES = {c: f"\\x{c:02x}" for c in _CONTROLS if c not in (0x09, 0x0A)}
# json.dumps escapes C0 itself but leaves DEL and C1 raw when ensure_ascii is off. They can only
# occur inside JSON strings, where the \u form means the same character.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _CONTROLS if c >= 0x7F}


def terminal_safe(text: str) -> str:
    """``text`` with terminal control characters escaped; newlines and tabs kept.

    A CR-LF line end becomes a newline; any other CR is escaped (it moves the cursor back over
    what was printed).
    """
    return text.replace("\r\n", "\n").translate(_TERMINAL_ESCAPES)


def _json_safe(document: str) -> str:
    return document.translate(_JSON_ESCAPES)


class Output:
    """Prints results as text or JSON (``--json``); chatter goes to stderr."""

    def __init__(
        self, *, as_json: bool, verbose: bool, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        # Links that stop working when this process ends (an embedded emulator's), left out
        # of JSON results: a script would keep them.
        self.dead_links: str | None = None
        # What goes on if the user interrupts now (a render the service keeps running): the
        # CLI's Ctrl-C line says it. Set by whoever is waiting, cleared when done.
        self.on_interrupt: str | None = None

    def result(self, human: str, data: Any = None) -> None:
        """The command's result: ``human`` as text, or ``data`` as one JSON document."""
        if self.as_json:
            value = _jsonable(data)
            if self.dead_links is not None:
                value = _without_links(value, self.dead_links)
            document = json.dumps(value, ensure_ascii=False, indent=2)
            self.out.write(_json_safe(document) + "\n")
        else:
            self.out.write(terminal_safe(human) + "\n")
        self.out.flush()

    def say(self, text: str, *, end: str = "\n") -> None:
        """Progress and status for a person (stderr in JSON mode, so stdout stays parseable)."""
        stream = self.err if self.as_json else self.out
        stream.write(terminal_safe(text) + end)
        stream.flush()

    def info(self, text: str) -> None:
        """Details shown only with -v."""
        if self.verbose:
            self.err.write(terminal_safe(text) + "\n")
            self.err.flush()

    def error(self, text: str) -> None:
        """One clear line on stderr."""
        self.err.write(f"error: {terminal_safe(text)}\n")
        self.err.flush()

    def hint(self, text: str) -> None:
        """A suggestion after an error (stderr)."""
        self.err.write(f"hint: {terminal_safe(text)}\n")
        self.err.flush()

    def traceback(self) -> None:
        """The traceback of the exception being handled (stderr; the CLI shows it with -v)."""
        self.err.write(terminal_safe(traceback.format_exc()))
        self.err.flush()

    def progress(self, label: str, *, total: float | None, unit: str = "B") -> Progress:
        """A progress bar on a terminal (tqdm, when installed), plain lines otherwise."""
        return Progress(self, label, total=total, unit=unit)


class Progress:
    """A progress display: a tqdm bar on a TTY, else a line at every 10%."""

    def __init__(self, output: Output, label: str, *, total: float | None, unit: str) -> None:
        self._output = output
        self._label = terminal_safe(label)  # tqdm writes it as given
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
                    desc=self._label,
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


def _without_links(value: Any, prefix: str) -> Any:
    """``value`` (plain JSON data) without the strings that start with ``prefix``: dropped
    from objects and arrays, so a reader sees no link rather than a dead one."""
    if isinstance(value, dict):
        return {
            k: _without_links(v, prefix)
            for k, v in value.items()
            if not (isinstance(v, str) and v.startswith(prefix))
        }
    if isinstance(value, list):
        return [
            _without_links(v, prefix)
            for v in value
            if not (isinstance(v, str) and v.startswith(prefix))
        ]
    return value
