"""Error messages in the user's words: stored files called by the names they were uploaded as.

FFmpeg's errors quote the path it opened, which is the emulator's copy
(``<data>/media/<random>.mp4``): meaningless to the user, and a leak of the server's folders.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from nemo_sync.emulator._state import MediaRecord


def name_files(message: str, media: Iterable[MediaRecord], *, data_dir: Path | None = None) -> str:
    """``message`` with each stored media file's path, or bare stored name, replaced by the
    file's own name, and any other path in ``data_dir`` by ``the emulator's files``."""
    for record in media:
        message = message.replace(str(record.path), record.name)
        message = message.replace(record.path.name, record.name)
    if data_dir is not None:
        message = message.replace(str(data_dir), "the emulator's files")
    return message
