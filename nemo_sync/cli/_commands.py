"""The workflow commands (sync, chat, upload, export, jobs, emulator, demo)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from nemo_sync.cli._context import Context

Command = Callable[[Context], Awaitable[int]]


def register(add: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    """Add the workflow commands to the parser."""
    return
