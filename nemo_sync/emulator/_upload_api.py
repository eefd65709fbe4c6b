"""The upload endpoint's body: multipart ``files`` streamed to disk, or URLs fetched to disk.

Nothing is held whole in memory: bytes go to the data folder one chunk at a time, hashed and
counted on the way, and the size limit stops a file as soon as it is passed. The body's shape
is checked as the service's FastAPI model does [V]: no ``files`` part (v1 sent ``file``) or a
URL body without ``source_type: "url"`` is a 422 with a ``detail``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import attrs
from aiohttp import BodyPartReader, MultipartReader, web

from nemo_sync._contract import (
    CODE_UNSUPPORTED_FILE,
    SUPPORTED_FORMATS,
    UPLOAD_FILE_FIELD,
    URL_SOURCE_TYPE,
)
from nemo_sync.emulator._api_errors import ApiError, DiskFull, bad_request
from nemo_sync.emulator._fastapi import (
    DetailError,
    Field,
    literal,
    missing,
    read_json_body,
    refuse,
    validate,
    wrong_type,
)
from nemo_sync.emulator._local import media_problem
from nemo_sync.emulator._media import (
    CHUNK,
    WRITER,
    Stored,
    TooLarge,
    extension,
    kind_of,
    probe_file,
    store_stream,
    stored_name,
)
from nemo_sync.emulator._state import MediaRecord

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
URL_FIELDS = (Field("urls", "list"), Field("source_type", "str"))


def no_files() -> DetailError:
    """FastAPI's answer to a form without the required ``files`` field."""
    return refuse([missing(["body", UPLOAD_FILE_FIELD], None)])


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


def _dest(media_dir: Path, name: str, writer: str | None) -> Path:
    return media_dir / stored_name(name, writer)


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


def discard(received: list[Received]) -> None:
    """Delete files that will not join a session."""
    for item in received:
        item.stored.path.unlink(missing_ok=True)


async def _read_parts(
    reader: MultipartReader,
    media_dir: Path,
    limit: int,
    received: list[Received],
    writer: str | None,
) -> None:
    """Store each ``files`` part (appending to ``received``); other parts are read past."""
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            await part.release()  # a nested multipart: not something the API takes
            continue
        if part.name != UPLOAD_FILE_FIELD:
            await part.release()  # a model ignores unknown form fields, v1's ``file`` too
            continue
        name = _safe_name(part.filename or "")
        kind = kind_of(name)
        if kind is None:
            await reader.release()  # read the rest so the client gets the reply cleanly
            raise unsupported(name)
        try:
            stored = await store_stream(
                _part_chunks(part), _dest(media_dir, name, writer), limit=limit
            )
        except TooLarge:
            await reader.release()
            raise too_large(limit) from None
        except DiskFull:
            # Read past the rest (nothing is stored) so the client gets the 507, not a reset
            # connection halfway through its upload.
            await reader.release()
            raise
        received.append(Received(stored, name, kind))


async def read_multipart(request: web.Request, media_dir: Path, limit: int) -> list[Received]:
    """The files in the ``files`` parts (one or more).

    Raises:
        ApiError: 4001 for a format not supported, 4002 past ``limit``; 422 (a FastAPI
            ``detail``) when there is no ``files`` part.
        DiskFull: when the disk has no room (nothing of the upload is left on it).
    """
    reader = await request.multipart()
    received: list[Received] = []
    try:
        await _read_parts(reader, media_dir, limit, received, request.get(WRITER))
    except BaseException:
        discard(received)
        raise
    if not received:
        raise no_files()
    return received


async def _fetch(
    http: aiohttp.ClientSession, url: str, media_dir: Path, limit: int, writer: str | None
) -> Received:
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
                reply.content.iter_chunked(CHUNK), _dest(media_dir, name, writer), limit=limit
            )
    except TooLarge:
        raise too_large(limit) from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise bad_request(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    return Received(stored, name, kind, source_url=url)


def urls_of(body: Any) -> list[str]:
    """The ``urls`` of a JSON upload, checked as the service's model would.

    Raises:
        DetailError: 422 for a missing or mistyped ``urls`` or ``source_type``, a
            ``source_type`` other than ``"url"``, an empty list or a URL that is not a string.
    """
    validate(body, URL_FIELDS)
    problems = []
    if body["source_type"] != URL_SOURCE_TYPE:
        problems.append(literal(["body", "source_type"], (URL_SOURCE_TYPE,), body["source_type"]))
    urls = body["urls"]
    if not urls:
        problems.append(
            {
                "type": "too_short",
                "loc": ["body", "urls"],
                "msg": "List should have at least 1 item after validation, not 0",
                "input": urls,
                "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0},
            }
        )
    problems += [
        wrong_type(["body", "urls", i], "str", u)
        for i, u in enumerate(urls)
        if not isinstance(u, str)
    ]
    if problems:
        raise refuse(problems)
    return list(urls)


async def read_json(
    request: web.Request, http: aiohttp.ClientSession, media_dir: Path, limit: int
) -> list[Received]:
    """Fetch the files a JSON upload names (one at a time, each streamed to disk)."""
    urls = urls_of(await read_json_body(request))
    received: list[Received] = []
    try:
        for url in urls:
            received.append(await _fetch(http, url, media_dir, limit, request.get(WRITER)))
    except BaseException:
        discard(received)
        raise
    return received


async def to_record(item: Received) -> MediaRecord:
    """The media record of a received file (its duration probed in a thread).

    Raises:
        ApiError: 4001 naming the file, when the renderer could not use it.
    """
    probed = await asyncio.to_thread(probe_file, item.stored.path, item.kind)
    # Refused here, naming the file, rather than accepted and failing a render later with
    # FFmpeg's words: a picture too big to decode, a video with no frame that decodes.
    claimed = None if probed.estimated else probed.duration_ms
    problem = await asyncio.to_thread(media_problem, item.stored.path, item.kind, claimed)
    if problem is not None:
        raise ApiError(CODE_UNSUPPORTED_FILE, f"{item.name}: {problem}")
    return MediaRecord(
        id=f"med_{secrets.token_hex(6)}",
        name=item.name,
        size=item.stored.size,
        kind=item.kind,
        duration_ms=probed.duration_ms,
        duration_estimated=probed.estimated,
        sha256=item.stored.sha256,
        path=item.stored.path,
        source_url=item.source_url,
        width=probed.width,
        height=probed.height,
        fps=probed.fps,
    )
