"""The request log: every request the emulator received, with secrets redacted."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import overload

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

REDACTED = "Bearer ***"


def redact_headers(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """A case-insensitive copy of ``headers`` with the bearer token replaced."""
    copy: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        copy.add(name, REDACTED if name.lower() == "authorization" else value)
    return CIMultiDictProxy(copy)


@attrs.define(eq=False)
class RecordedRequest:
    """One request as the emulator saw it.

    Attributes:
        method: The HTTP method.
        path: The URL path (no query).
        query: The query parameters.
        headers: The request headers, case-insensitive, ``Authorization`` shown as
            ``Bearer ***``.
        body_size: Bytes of body received (the declared Content-Length when there was one).
        host: The ``Host`` header: tells API requests from "CDN" downloads.
        request_id: The ``X-Request-Id`` the emulator answered with.
        status: The HTTP status of the reply (``None`` while it is being handled, or when the
            connection was dropped before a status was sent).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: CIMultiDictProxy[str]
    body_size: int
    host: str
    request_id: str
    status: int | None = None

    @property
    def has_token(self) -> bool:
        """Whether an ``Authorization`` header arrived (its value is never kept)."""
        return "Authorization" in self.headers

    def __repr__(self) -> str:
        return (
            f"RecordedRequest({self.method} {self.path} -> {self.status}, "
            f"body_size={self.body_size}, host={self.host!r})"
        )


class RequestLog:
    """The requests received, oldest first; holds the last ``maxlen`` (all when ``None``).

    Indexing, slicing, ``len`` and iteration work as on a list (``emu.requests[-1]``).
    """

    def __init__(self, maxlen: int | None = 10_000) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=maxlen)

    def append(self, item: RecordedRequest) -> None:
        """Record a request (the oldest one is dropped when the log is full)."""
        self._items.append(item)

    def clear(self) -> None:
        """Forget every request."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self._items)

    @overload
    def __getitem__(self, index: int) -> RecordedRequest: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordedRequest]: ...
    def __getitem__(self, index: int | slice) -> RecordedRequest | list[RecordedRequest]:
        if isinstance(index, slice):
            return list(self._items)[index]
        return self._items[index]

    def matching(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """The requests with this method and/or path (a trailing ``*`` matches a prefix)."""
        found = []
        for item in self._items:
            if method is not None and item.method != method.upper():
                continue
            if path is not None:
                if path.endswith("*"):
                    if not item.path.startswith(path[:-1]):
                        continue
                elif item.path != path:
                    continue
            found.append(item)
        return found

    def __repr__(self) -> str:
        return f"RequestLog({len(self._items)} requests)"
