"""The API's error replies, as the emulator sends them (code, HTTP status, message)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_sync._contract import (
    CODE_BAD_TOKEN,
    CODE_FILE_TOO_LARGE,
    CODE_NO_CREDITS,
    CODE_SESSION_NOT_FOUND,
    CODE_UNSUPPORTED_FILE,
    MAX_UPLOAD_BYTES,
    SUPPORTED_FORMATS,
)

# The HTTP status each API code comes with. 2001 rides on HTTP 200: the contract says an error
# may be a non-zero code with a 200, and clients must handle that shape too. 4000 and 4004
# are the emulator's own (a malformed request, an unknown id).
STATUS_OF_CODE = {
    CODE_BAD_TOKEN: 401,
    CODE_SESSION_NOT_FOUND: 404,
    CODE_NO_CREDITS: 200,
    4000: 400,
    CODE_UNSUPPORTED_FILE: 400,
    CODE_FILE_TOO_LARGE: 413,
    4004: 404,
}

DEFAULT_MESSAGES = {
    CODE_BAD_TOKEN: "invalid or expired token",
    CODE_SESSION_NOT_FOUND: "session not found",
    CODE_NO_CREDITS: "insufficient credits",
    4000: "bad request",
    CODE_UNSUPPORTED_FILE: "unsupported file format; supported formats: "
    + ", ".join(SUPPORTED_FORMATS),
    CODE_FILE_TOO_LARGE: f"file too large (max {MAX_UPLOAD_BYTES // (1024 * 1024)} MB)",
    4004: "not found",
}

DEFAULT_STATUS_MESSAGES = {
    400: "bad request",
    401: "unauthorized",
    402: "payment required: register or upgrade your plan to unlock export",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    413: "payload too large",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    507: "insufficient storage",
}

# What a write answers when the disk has no room for it: full, over the user's quota, or past
# the largest file the disk (or a file-size limit) allows. None of them passes by itself.
DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code is not None
)
STATUS_DISK_FULL = 507  # HTTP 507 Insufficient Storage (RFC 4918)

_FREE_SOME = "free some space on it, then try again"
# What happened, and what to do about it.
_DISK_FULL_WORDS = {
    errno.ENOSPC: ("the emulator's disk is full", _FREE_SOME),
    errno.EFBIG: (
        "the emulator's disk takes no file this large (a file-size limit of the disk or the "
        "process)",
        "send a smaller file, or give the emulator a folder on another disk",
    ),
}
if hasattr(errno, "EDQUOT"):
    _DISK_FULL_WORDS[errno.EDQUOT] = ("the emulator's disk quota is used up", _FREE_SOME)


class ApiError(Exception):
    """An error reply: raised inside a handler, turned into the JSON envelope by the server.

    Args:
        code: The envelope's ``code``.
        message: The envelope's ``message`` (a default for the code when empty).
        status: The HTTP status (the code's usual status when not given).
        data: The envelope's ``data``.
        headers: Extra reply headers (``Retry-After``).
    """

    def __init__(
        self,
        code: int,
        message: str = "",
        *,
        status: int | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.status = status if status is not None else STATUS_OF_CODE.get(code, 200)
        self.message = (
            message or DEFAULT_MESSAGES.get(code) or DEFAULT_STATUS_MESSAGES.get(self.status, "")
        )
        self.data = data
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} code={code}: {self.message}")

    def envelope(self) -> dict[str, Any]:
        """The JSON body."""
        return {"code": self.code, "message": self.message, "data": self.data}


def bad_request(message: str) -> ApiError:
    """HTTP 400 for a body or parameter the API cannot use."""
    return ApiError(4000, message, status=400)


def format_retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds when whole, else as given."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it: an encoder wraps the OS's error) is a write the
    disk refused for room."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        # SQLite says it in words only (SQLITE_FULL, "database or disk is full").
        if "database or disk is full" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _free_bytes(folder: Path) -> int | None:
    """The bytes free on ``folder``'s disk (on its nearest existing parent), if known."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


class DiskFull(OSError):
    """A write the emulator's disk refused for room: the reply is HTTP 507, naming the folder.

    An ``OSError`` (with the write's errno), so code that handles file errors handles it too;
    its text is the whole message, for the reply and for the CLI's one line.

    Args:
        folder: Where the write went.
        code: The write's errno (``ENOSPC``, ``EDQUOT`` or ``EFBIG``).
    """

    def __init__(self, folder: Path, code: int = errno.ENOSPC) -> None:
        self.folder = folder
        # Measured after the partial file is gone: what there is to work with now.
        free = _free_bytes(folder)
        room = f", {free / 1048576:.1f} MB free" if free is not None else ""
        what, advice = _DISK_FULL_WORDS.get(code, _DISK_FULL_WORDS[errno.ENOSPC])
        self.message = f"{what}: {folder}{room}; {advice}"
        super().__init__(code, self.message)

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of(cls, exc: BaseException, folder: Path) -> DiskFull:
        """The disk-full error for ``exc`` (see :func:`is_disk_full`) on ``folder``."""
        if isinstance(exc, DiskFull):
            return exc
        code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.ENOSPC
        return cls(folder, code)

    def reply(self) -> ApiError:
        """HTTP 507 with this message (code 507): the client is told it will not pass."""
        return ApiError(STATUS_DISK_FULL, self.message, status=STATUS_DISK_FULL)


def folder_of(path: Path) -> Path:
    """The folder a file is written in, for a disk-full message (absolute, as the user has it)."""
    return Path(os.path.abspath(path.parent))
