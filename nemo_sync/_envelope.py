"""Reading a reply: the ``{code, message, data}`` envelope and the error it may carry."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from nemo_sync._contract import (
    CODE_FILE_TOO_LARGE,
    CODE_NO_CREDITS,
    CODE_SESSION_NOT_FOUND,
    CODE_UNSUPPORTED_FILE,
    MAX_UPLOAD_BYTES,
    STATUS_BODY_REJECTED,
    STATUS_EXPORT_BLOCKED,
    STATUS_MISSING_CLIENT_ID,
    STATUS_RATE_LIMITED,
    STATUS_TOKEN_REJECTED,
    SUPPORTED_FORMATS,
    TOKEN_REJECTED_CODES,
)
from nemo_sync._retry import parse_retry_after
from nemo_sync.errors import (
    APIError,
    APIResponseError,
    AuthenticationError,
    ExportBlockedError,
    FileTooLargeError,
    InsufficientCreditsError,
    MissingClientIdError,
    RateLimitError,
    RequestRefusedError,
    ServerError,
    SessionNotFoundError,
    StorageFullError,
    UnsupportedFileError,
)

STATUS_STORAGE_FULL = 507  # Insufficient Storage (RFC 4918): the server's disk is full

_BIND_URL = re.compile(r"https?://\S*[?&]bind=\S+")
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


def _snippet(body: bytes, limit: int = 160) -> str:
    """A short, readable excerpt of a non-JSON body (an HTML error page, say)."""
    text = body.decode("utf-8", errors="replace")
    if "<" in text and ">" in text:
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAGS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def _find_bind_url(message: str, data: Any) -> str | None:
    if isinstance(data, Mapping):
        for key in ("bind_url", "bindUrl", "register_url", "registration_url"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    found = _BIND_URL.search(message)
    return found.group(0) if found else None


def _no_credits_message(bind_url: str | None) -> str:
    if bind_url:
        return (
            "Not enough credits. Register to get more and keep your projects (the anonymous "
            f"account's work moves with you): {bind_url}"
        )
    return "Not enough credits. Top up at nemovideo.com (your account's billing page)."


def with_link(error: InsufficientCreditsError, bind_url: str | None) -> None:
    """Give a 2001 the registration link the client knows (from the account's user id)."""
    if bind_url:
        error.bind_url = bind_url
        error.message = _no_credits_message(bind_url)
        error.args = (error.message,)


def map_error(
    *,
    status: int,
    code: int | None,
    message: str,
    data: Any,
    headers: Mapping[str, str],
    endpoint: str,
    request_id: str | None,
) -> APIError:
    """The typed error for a failed reply. The code wins over the status when both are given."""
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "endpoint": endpoint,
    }
    if code in TOKEN_REJECTED_CODES or (code is None and status == STATUS_TOKEN_REJECTED):
        return AuthenticationError(
            "The token is bad or expired. Pass a fresh token, or unset NEMO_TOKEN to let the "
            f"SDK use an anonymous one. Server said: {message or 'unauthorized'}",
            **common,
        )
    if code == CODE_SESSION_NOT_FOUND:
        return SessionNotFoundError(
            "The session was not found (expired or never created). "
            "Start a new one with create_session().",
            **common,
        )
    if code == CODE_NO_CREDITS:
        bind_url = _find_bind_url(message, data)
        return InsufficientCreditsError(_no_credits_message(bind_url), bind_url=bind_url, **common)
    if code == CODE_UNSUPPORTED_FILE:
        # The service's own words say which file and why (a picture too large to render, a
        # video that does not decode): they come first when it gave any.
        said = f"The service refused the file: {message}. " if message.strip() else ""
        return UnsupportedFileError(
            f"{said}The service accepts these formats: " + ", ".join(SUPPORTED_FORMATS) + ".",
            supported=SUPPORTED_FORMATS,
            **common,
        )
    if code == CODE_FILE_TOO_LARGE:
        return FileTooLargeError(
            "The file is too large for the service (500 MB at most). "
            "Compress it or trim it, then upload again.",
            limit=MAX_UPLOAD_BYTES,
            **common,
        )
    if status == STATUS_EXPORT_BLOCKED:
        return ExportBlockedError(
            "Register or upgrade your plan to unlock export (this is the plan, not credits).",
            **common,
        )
    if status == STATUS_RATE_LIMITED:
        retry_after = parse_retry_after(headers)
        wait = f" Retry after {retry_after:.0f} s." if retry_after is not None else ""
        return RateLimitError(
            f"Rate limited by the service.{wait} Anonymous tokens are limited to one per client "
            "id per 7 days: keep NEMO_HOME between runs so the saved token is reused.",
            retry_after=retry_after,
            **common,
        )
    if (
        status == STATUS_MISSING_CLIENT_ID
        and "client" in message.lower()
        and "id" in message.lower()
    ):
        return MissingClientIdError(f"The service wants an X-Client-Id header: {message}", **common)
    if status == STATUS_STORAGE_FULL:
        # Not "try again in a moment": a full disk stays full until someone frees space.
        said = message or "its disk is full; free space there, or ask whoever runs it to"
        return StorageFullError(
            f"The service is out of storage: {said}. Retrying will not help until space is freed.",
            **common,
        )
    if status >= 500:
        return ServerError(
            f"The service failed ({message or 'no details'}). Try again in a moment.", **common
        )
    if status == STATUS_BODY_REJECTED:
        return APIError(
            f"The service rejected the request body (HTTP 422): {message or 'no details'}",
            **common,
        )
    return APIError(message or f"The service answered HTTP {status}.", **common)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value


# One decoder for every reply: json.loads(..., parse_float=...) would build a new one per call.
_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)

MAX_JSON_DEPTH = 128
"""How deeply a reply may nest. The API's deepest documented shape is a handful of levels;
a deeper reply would only carry recursion into every consumer (copying, converting, diffing)."""


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and lists deeper than ``limit`` (``value`` is level 1).

    Iterative, one level at a time, so a 100,000-deep value costs no recursion; a container
    met twice (shared, or a cycle built in Python) is walked once. Replies and drafts share it.
    """
    if not isinstance(value, (Mapping, list, tuple)):
        return False
    level: list[Any] = [value]
    seen: set[int] = set()
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        push = below.append
        for item in level:
            if id(item) in seen:
                continue
            seen.add(id(item))
            for child in item.values() if isinstance(item, Mapping) else item:
                # The type test first: most values are JSON scalars, and it is the cheap one.
                if type(child) not in _SCALARS and isinstance(child, (Mapping, list, tuple)):
                    push(child)
        level = below
    return False


_SCALARS = frozenset({str, int, float, bool, type(None)})


def loads_strict(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON: no ``NaN``/``Infinity``, no number that overflows, at most ``max_depth`` deep.

    Raises:
        ValueError: for anything that is not strict JSON (including invalid UTF-8), or JSON
            nested deeper than ``max_depth`` (Python's own recursion limit included).
    """
    if isinstance(body, bytes):
        # json.loads' own bytes handling: UTF-8 (the API's), or UTF-16/32 by their BOMs. A
        # body that starts with "{" and no NUL after it is UTF-8: the per-call case, no sniff.
        if body[:1] == b"{" and body[1:2] != b"\x00":
            text = body.decode()
        else:
            text = body.decode(json.detect_encoding(body))
    else:
        text = body
    try:
        value = _STRICT.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    # Nesting deeper than the cap takes more than twice as many characters, and more brackets
    # than the cap: a short or flat body skips the walk (the check stays off the per-call path).
    if (
        len(text) > 2 * max_depth
        and text.count("{") + text.count("[") > max_depth
        and nests_deeper_than(value, max_depth)
    ):
        raise ValueError(f"JSON nested more than {max_depth} levels deep")
    return value


def parse_reply(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    endpoint: str,
) -> Any:
    """The ``data`` of a successful reply; raises the typed error of a failed one.

    Raises:
        APIError: (a subclass) when the status or the envelope's code says the call failed.
        APIResponseError: when a successful status comes with a reply that is not the envelope.
    """
    try:
        payload: Any = loads_strict(body)
    except ValueError as exc:
        payload = None
        if status < 400 and body.strip():
            looks_like_json = body.lstrip()[:1] in (b"{", b"[")
            raise APIResponseError(
                f"the reply is not strict JSON ({exc})"
                if looks_like_json
                else f"expected a JSON reply, got {_snippet(body)!r}",
                endpoint=endpoint,
                body=_snippet(body),
            ) from None
    if status < 400 and type(payload) is dict and "data" in payload:
        # The per-call case, decided in four look-ups: a success envelope with code 0 (and no
        # ``success: false`` beside it).
        code = payload.get("code", 0)
        if code == 0 and type(code) is int and payload.get("success", True) is True:
            return payload["data"]
    request_id = headers.get("X-Request-Id") or headers.get("x-request-id")
    if status >= 400 and not isinstance(payload, Mapping):
        # A proxy's HTML page or an empty body: the status is all there is.
        message = _snippet(body) if body.strip() else ""
        raise map_error(
            status=status,
            code=None,
            message=message,
            data=None,
            headers=headers,
            endpoint=endpoint,
            request_id=request_id,
        )
    if not isinstance(payload, Mapping):
        raise APIResponseError(
            f"expected a JSON object with code/message/data, got {type(payload).__name__}",
            endpoint=endpoint,
        )
    if status >= 400 and "detail" in payload and "code" not in payload:
        # A FastAPI error body (422 validation, or HTTPException): its detail is the message.
        raise map_error(
            status=status,
            code=None,
            message=detail_text(payload["detail"]),
            data=None,
            headers=headers,
            endpoint=endpoint,
            request_id=request_id,
        )
    code = _int_code(payload.get("code", 0))
    message = payload.get("message") or payload.get("msg") or ""
    message = message if isinstance(message, str) else str(message)
    data = payload.get("data")
    if _refused(payload):
        # [R]: {"success": false, "error": "..." | {...}}, with HTTP 200 too. A documented
        # code inside the error (or beside it) still picks its typed error.
        error = payload.get("error")
        if isinstance(error, Mapping):
            code = code or _int_code(error.get("code"))
        text = _error_text(error) or message or "the service answered success: false"
        if status < 400 and not code:
            raise RequestRefusedError(
                f"The service refused the request: {text}",
                status=status,
                request_id=request_id,
                endpoint=endpoint,
            )
        raise map_error(
            status=status,
            code=code or None,
            message=text,
            data=data,
            headers=headers,
            endpoint=endpoint,
            request_id=request_id,
        )
    if status >= 400 or (code is not None and code != 0):
        raise map_error(
            status=status,
            code=code if code != 0 else None,
            message=message,
            data=data,
            headers=headers,
            endpoint=endpoint,
            request_id=request_id,
        )
    if "code" not in payload and "data" not in payload:
        # A bare object [V], or {"success": true, ...} with no data: the object is the reply
        # (less the success flag), extra keys kept.
        return {k: v for k, v in payload.items() if k != "success"}
    return data


def _int_code(raw: Any) -> int | None:
    """An envelope code as an int (``"0"`` and ``1002`` alike), else None."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lstrip("-").isdigit() and len(raw) < 12:
        return int(raw)
    return None


def _refused(payload: Mapping[str, Any]) -> bool:
    """Whether the reply says ``success: false`` (a bool, or the string some servers send)."""
    flag = payload.get("success", True)
    return flag is False or (isinstance(flag, str) and flag.strip().lower() == "false")


def _error_text(error: Any, limit: int = 500) -> str:
    """The service's words in an ``error`` value: a string, or an object's message."""
    if isinstance(error, Mapping):
        error = (
            error.get("message") or error.get("msg") or error.get("detail") or error.get("error")
        )
        if not isinstance(error, str):
            return detail_text(error, limit) if error else ""
    if not isinstance(error, str):
        return "" if error is None else str(error)[:limit]
    text = _SPACES.sub(" ", error).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def _detail_item(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
    msg = item.get("msg") or item.get("message") or item.get("type") or ""
    return f"{where}: {msg}" if where else str(msg)


def detail_text(detail: Any, limit: int = 500) -> str:
    """A FastAPI ``detail`` (a string, or a list of ``{loc, msg, type}``) as one short line."""
    if isinstance(detail, str):
        text = detail
    elif isinstance(detail, list):
        text = "; ".join(_detail_item(item) for item in detail[:20])
    elif isinstance(detail, Mapping):
        text = _detail_item(detail)
    else:
        text = str(detail)
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


def require_object(data: Any, endpoint: str) -> Mapping[str, Any]:
    """``data`` as an object, or an APIResponseError naming the endpoint."""
    if not isinstance(data, Mapping):
        raise APIResponseError(
            f"expected 'data' to be an object, got {type(data).__name__}", endpoint=endpoint
        )
    return data


def pick(
    data: Mapping[str, Any],
    *names: str,
    endpoint: str,
    kind: type | tuple[type, ...] = str,
) -> Any:
    """The first of ``names`` present in ``data`` (aliases), checked against ``kind``.

    Raises:
        APIResponseError: when none is present or the value has the wrong type.
    """
    for name in names:
        if name in data and data[name] is not None:
            value = data[name]
            if isinstance(value, bool) and kind in (int, float, (int, float)):
                break
            if not isinstance(value, kind):
                raise APIResponseError(
                    f"'data.{name}' should be {_kind_name(kind)}, got {type(value).__name__}",
                    endpoint=endpoint,
                )
            return value
    raise APIResponseError(
        f"the reply has no {' / '.join('data.' + n for n in names)}", endpoint=endpoint
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__
