"""The upload endpoint's body: multipart files streamed to disk, or URLs fetched to disk.

Nothing is held whole in memory: bytes go to the data folder one chunk at a time, hashed and
counted on the way, and the size limit stops a file as soon as it is passed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import attrs
from aiohttp import BodyPartReader, MultipartReader, web

from nemo_sync._contract import SUPPORTED_FORMATS
from nemo_sync.emulator._errors import ApiError, bad_request
from nemo_sync.emulator._media import (
    CHUNK,
    Stored,
    TooLarge,
    extension,
    kind_of,
    probe_duration_ms,
    store_stream,
)
from nemo_sync.emulator._state import MediaRecord

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
_FIELD_LIMIT = 1024


@attrs.frozen
class Received:
    """A file that arrived, before it joins a session."""

    stored: Stored
    name: str
    kind: str
    source_url: str | None = None


def unsupported(name: str) -> ApiError:
    """4001, listing the formats."""
    ext = extension(name) or "(none)"
    return ApiError(
        4001,
        f"unsupported file format '{ext}' ({name}); supported formats: "
        + ", ".join(SUPPORTED_FORMATS),
    )


def too_large(limit: int) -> ApiError:
    """4002, with the limit."""
    return ApiError(4002, f"file too large: the limit is {limit} bytes ({limit / 1048576:g} MB)")


def _safe_name(name: str) -> str:
    """The file name without any folder part a client may have sent."""
    return PurePosixPath(name.replace("\\", "/")).name or "upload"


def _dest(media_dir: Path, name: str) -> Path:
    return media_dir / f"{secrets.token_hex(8)}.{extension(name)}"


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def _small_field(part: BodyPartReader) -> str:
    """A form field's text, refusing anything longer than an id should be."""
    data = b""
    async for chunk in _part_chunks(part):
        data += chunk
        if len(data) > _FIELD_LIMIT:
            raise bad_request(f"form field {part.name!r} is too long")
    return data.decode("utf-8", errors="replace").strip()


def discard(received: list[Received]) -> None:
    """Delete files that will not join a session."""
    for item in received:
        item.stored.path.unlink(missing_ok=True)


async def _read_parts(
    reader: MultipartReader, media_dir: Path, limit: int, received: list[Received]
) -> str | None:
    """Store each file part (appending to ``received``); returns the session_id field."""
    session_id: str | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            await part.release()  # a nested multipart: not something the API takes
            continue
        if part.filename is None:
            if part.name in ("session_id", "sessionId"):
                session_id = await _small_field(part) or None
            else:
                await part.release()
            continue
        name = _safe_name(part.filename)
        kind = kind_of(name)
        if kind is None:
            await reader.release()  # read the rest so the client gets the reply cleanly
            raise unsupported(name)
        try:
            stored = await store_stream(_part_chunks(part), _dest(media_dir, name), limit=limit)
        except TooLarge:
            await reader.release()
            raise too_large(limit) from None
        received.append(Received(stored, name, kind))
    return session_id


async def read_multipart(
    request: web.Request, media_dir: Path, limit: int
) -> tuple[list[Received], str | None]:
    """The files (``file`` parts; any part with a file name) and the ``session_id`` field.

    Raises:
        ApiError: 4001 for a format not supported, 4002 past ``limit``, 4000 for no file.
    """
    reader = await request.multipart()
    received: list[Received] = []
    try:
        session_id = await _read_parts(reader, media_dir, limit, received)
    except BaseException:
        discard(received)
        raise
    if not received:
        raise bad_request("no file in the upload: send it in a multipart field named 'file'")
    return received, session_id


async def _fetch(http: aiohttp.ClientSession, url: str, media_dir: Path, limit: int) -> Received:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(f"not an http(s) URL: {url!r}")
    name = _safe_name(unquote(parts.path))
    kind = kind_of(name)
    if kind is None:
        raise unsupported(name)
    try:
        async with http.get(url, timeout=FETCH_TIMEOUT) as reply:
            if reply.status >= 400:
                raise bad_request(f"could not fetch {url}: HTTP {reply.status}")
            if reply.content_length is not None and reply.content_length > limit:
                raise too_large(limit)
            stored = await store_stream(
                reply.content.iter_chunked(CHUNK), _dest(media_dir, name), limit=limit
            )
    except TooLarge:
        raise too_large(limit) from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise bad_request(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    return Received(stored, name, kind, source_url=url)


def urls_of(body: Any) -> list[str]:
    """The ``urls`` (or ``url``) of a JSON upload.

    Raises:
        ApiError: 4000 when there are none or they are not strings.
    """
    if not isinstance(body, dict):
        raise bad_request("the JSON body must be an object with 'urls'")
    urls = body.get("urls", [body["url"]] if "url" in body else None)
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise bad_request("'urls' must be a non-empty list of URLs")
    return urls


async def read_json(
    request: web.Request, http: aiohttp.ClientSession, media_dir: Path, limit: int
) -> tuple[list[Received], str | None]:
    """Fetch the files a JSON upload names (one at a time, each streamed to disk)."""
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        raise bad_request("the body is not JSON") from None
    urls = urls_of(body)
    session_id = body.get("session_id") or body.get("sessionId")
    received: list[Received] = []
    try:
        for url in urls:
            received.append(await _fetch(http, url, media_dir, limit))
    except BaseException:
        discard(received)
        raise
    return received, str(session_id) if session_id else None


async def to_record(item: Received) -> MediaRecord:
    """The media record of a received file (its duration probed in a thread)."""
    duration, estimated = await asyncio.to_thread(probe_duration_ms, item.stored.path, item.kind)
    return MediaRecord(
        id=f"med_{secrets.token_hex(6)}",
        name=item.name,
        size=item.stored.size,
        kind=item.kind,
        duration_ms=duration,
        duration_estimated=estimated,
        sha256=item.stored.sha256,
        path=item.stored.path,
        source_url=item.source_url,
    )
