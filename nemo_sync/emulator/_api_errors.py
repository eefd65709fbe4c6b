"""The API's error replies, as the emulator sends them (code, HTTP status, message)."""

from __future__ import annotations

from collections.abc import Mapping
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
}


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
