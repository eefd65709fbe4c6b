"""Serving stored files the way a CDN does: no auth, byte ranges, and a drop fault."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte range asked for, or ``None`` for the whole file.

    Raises:
        ValueError: when the range cannot be satisfied (-> 416).
    """
    found = _RANGE.match(header.strip())
    if not found:
        return None  # several ranges or another unit: RFC 9110 lets us send the whole file
    first_s, last_s = found.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # "-500": the last 500 bytes
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise ValueError
        return max(size - suffix, 0), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if first >= size or last < first:
        raise ValueError
    return first, min(last, size - 1)


async def serve_file(
    request: web.Request, path: Path, *, content_type: str, drop: bool = False
) -> web.StreamResponse:
    """Stream ``path`` (a range of it when asked) in fixed-size chunks.

    Args:
        request: The request (``Range`` is honoured; ``HEAD`` gets the headers only).
        path: The file.
        content_type: Its media type.
        drop: Send half the bytes, then close the connection (a fault).
    """
    stat = path.stat()
    size = stat.st_size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"',
        "Cache-Control": "public, max-age=86400",
    }
    try:
        wanted = _parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        return web.Response(
            status=416,
            text="requested range not satisfiable",
            headers={**headers, "Content-Range": f"bytes */{size}"},
        )
    if wanted is None:
        first, last, status = 0, size - 1, 200
    else:
        first, last = wanted
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(last - first + 1, 0)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.content_length = length
    await response.prepare(request)
    if request.method == "HEAD" or length == 0:
        await response.write_eof()
        return response
    stop_at = length // 2 if drop else length
    sent = 0
    # Plain reads: one chunk from the page cache is cheaper than a thread hop.
    try:
        with path.open("rb") as f:
            f.seek(first)
            while sent < stop_at:
                chunk = f.read(min(CHUNK, stop_at - sent))
                if not chunk:
                    break
                await response.write(chunk)
                sent += len(chunk)
    except ConnectionError:
        return response  # the client went away mid-download
    if drop:
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
