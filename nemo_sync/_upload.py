"""Uploads: where the bytes come from, the checks made before sending, and the calls.

Every source is checked locally first (exists, a regular file, not empty, an accepted format,
at most 500 MB); nothing is sent when a check fails. The body is streamed (see
``_upload_body``): memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union
from urllib.parse import unquote, urlsplit

import aiohttp
import attrs

from nemo_sync._contract import MAX_UPLOAD_BYTES, MEDIA_LIST_KEYS, upload_path, url_upload_body
from nemo_sync._formats import SNIFF_BYTES, check_format, extension_of
from nemo_sync._models import Media
from nemo_sync._notebook import notebook_progress
from nemo_sync._upload_body import (
    CHUNK_SIZE,
    STALL_TIMEOUT,
    BytesSource,
    FileSource,
    MultipartBody,
    PathSource,
    Prepared,
    Progress,
    ProgressCallback,
    Source,
    StreamSource,
)
from nemo_sync.errors import (
    APIConnectionError,
    APIResponseError,
    FileTooLargeError,
    InvalidUploadError,
    UnsupportedFileError,
    UploadBatchError,
)

if TYPE_CHECKING:
    from nemo_sync._api import Api

__all__ = [
    "UploadFile",
    "UploadSource",
    "upload",
    "upload_many",
    "upload_urls",
]

UploadSource = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, AsyncIterable[bytes]
]
"""What :meth:`Session.upload` takes: a path, bytes, a binary file object, or an async
iterable of bytes (with ``size=``)."""

# A 500 MB upload takes minutes on an ordinary uplink: no total deadline. Connecting and
# waiting for the reply (once the body is sent) have their own limits, and sending has the
# stall guard (no progress for STALL_TIMEOUT seconds).
UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=30, sock_read=300)


@attrs.frozen
class UploadFile:
    """One item of :meth:`Session.upload_many` that needs more than a path.

    Example:
        ``UploadFile(png_bytes, filename="cover.png")``

    Attributes:
        source: A path, bytes, a binary file object, or an async iterable of bytes.
        filename: The name to upload it as (needed for bytes and streams).
        content_type: Its media type (guessed from the format when not given).
        size: Its size in bytes (needed for streams and unseekable file objects).
    """

    source: UploadSource
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None


# -- checks ---------------------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def _check_length(name: str, size: int, declared: int | None) -> None:
    if declared is not None and declared != size:
        raise InvalidUploadError(
            f"{name} is {size} bytes, but size={declared} was given. Leave size out for "
            "files and bytes (it is measured).",
            filename=name,
        )
    if size == 0:
        raise InvalidUploadError(f"{name} is empty (0 bytes): nothing to upload.", filename=name)


def _checked(name: str, size: int, head: bytes | None, source: Source) -> Prepared:
    """The format check (extension, and content when ``head`` is given), then the size cap."""
    fmt = check_format(name, head)
    if size > MAX_UPLOAD_BYTES:
        raise FileTooLargeError(
            f"{name} is {_mb(size)}; the service takes at most {_mb(MAX_UPLOAD_BYTES)}. "
            "Compress it (a lower bitrate or resolution) or trim it, then upload again.",
            size=size,
            limit=MAX_UPLOAD_BYTES,
        )
    return Prepared(name=name, size=size, content_type=fmt.mime, source=source)


def _check_content_type(name: str, content_type: str) -> str:
    if "/" not in content_type or any(c in content_type for c in "\r\n\x00"):
        raise InvalidUploadError(
            f"content_type {content_type!r} for {name} is not a media type like 'video/mp4'.",
            filename=name,
        )
    return content_type


def _check_filename(filename: str) -> str:
    if not filename.strip() or any(c in filename for c in "\r\n\x00"):
        raise InvalidUploadError(
            f"filename {filename!r} is not usable: give a plain name like 'clip.mp4'.",
            filename=filename,
        )
    return filename


def _inspect_path(path: Path, filename: str | None, declared: int | None) -> Prepared:
    """Check a file on disk (blocking: run in a thread)."""
    path = path.expanduser()
    shown = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        hint = "" if path.is_absolute() else f" (Relative paths start at {Path.cwd()}.)"
        raise InvalidUploadError(
            f"{shown}: no such file. Check the path.{hint}", filename=shown
        ) from None
    except OSError as exc:
        raise InvalidUploadError(
            f"{shown}: cannot read it ({exc.strerror or exc}).", filename=shown
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        raise InvalidUploadError(
            f"{shown} is a folder, not a file: upload the files in it (upload_many).",
            filename=shown,
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidUploadError(
            f"{shown} is not a regular file (a pipe, socket or device). Upload a file, or "
            "pass an open binary file object with size=.",
            filename=shown,
        )
    name = _check_filename(filename) if filename is not None else path.name
    _check_length(shown, info.st_size, declared)
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise InvalidUploadError(
            f"{shown}: cannot read it ({exc.strerror or exc}).", filename=shown
        ) from exc
    return _checked(name, info.st_size, head, PathSource(path, info.st_size))


def _file_name(fileobj: Any, filename: str | None) -> str:
    if filename is not None:
        return _check_filename(filename)
    name = getattr(fileobj, "name", None)
    if isinstance(name, str) and name:
        return os.path.basename(name)
    raise InvalidUploadError(
        "This file object has no name: pass filename= (e.g. filename='clip.mp4') so its "
        "format can be checked."
    )


def _inspect_file(fileobj: Any, filename: str | None, declared: int | None) -> Prepared:
    """Check an open file object (blocking: run in a thread)."""
    if isinstance(fileobj, io.TextIOBase) or "b" not in getattr(fileobj, "mode", "b"):
        raise InvalidUploadError(
            "The file object is open in text mode: open it in binary mode ('rb')."
        )
    name = _file_name(fileobj, filename)
    try:
        seekable = bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if not seekable:
        if declared is None:
            raise InvalidUploadError(
                f"{name}: this file object cannot seek, so its size is unknown: pass size=.",
                filename=name,
            )
        _check_length(name, declared, None)
        # No sniffing: reading ahead would consume it.
        return _checked(name, declared, None, StreamSource(_iter_file(fileobj), declared))
    try:
        start = fileobj.tell()
        fileobj.seek(0, io.SEEK_END)
        size = max(fileobj.tell() - start, 0)
        fileobj.seek(start)
        head = fileobj.read(SNIFF_BYTES)
        fileobj.seek(start)
    except (OSError, ValueError) as exc:  # ValueError: a closed file
        raise InvalidUploadError(f"{name}: cannot read the file object ({exc}).") from exc
    if isinstance(head, str):
        raise InvalidUploadError(
            f"{name}: the file object gives text: open it in binary mode ('rb').", filename=name
        )
    _check_length(name, size, declared)
    return _checked(name, size, head, FileSource(fileobj, start, size))


async def _iter_file(fileobj: Any) -> AsyncGenerator[bytes, None]:
    """An unseekable file object's chunks (reads in a thread)."""
    loop = asyncio.get_running_loop()
    while chunk := await loop.run_in_executor(None, fileobj.read, CHUNK_SIZE):
        yield chunk


async def prepare(item: UploadFile) -> Prepared:
    """Check an upload locally and say how to send it. Nothing is sent.

    Raises:
        InvalidUploadError: when it cannot be sent as given.
        UnsupportedFileError: when its format is not accepted.
        FileTooLargeError: when it is over 500 MB.
        TypeError: when ``source`` is none of the accepted kinds.
    """
    source, filename, content_type, size = item.source, item.filename, item.content_type, item.size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidUploadError(f"size must be a number of bytes; got {size!r}")
    prepared: Prepared
    if isinstance(source, (bytes, bytearray, memoryview)):
        if filename is None:
            raise InvalidUploadError(
                "Uploading bytes needs filename= (e.g. filename='clip.mp4') so the format "
                "can be checked."
            )
        name = _check_filename(filename)
        view = memoryview(source).cast("B")
        _check_length(name, view.nbytes, size)
        prepared = _checked(name, view.nbytes, bytes(view[:SNIFF_BYTES]), BytesSource(view))
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        raise InvalidUploadError(
            f"{source} is a URL: upload_urls([url]) has the service fetch it.", filename=source
        )
    elif isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        prepared = await asyncio.to_thread(_inspect_path, path, filename, size)
    elif hasattr(source, "read"):
        prepared = await asyncio.to_thread(_inspect_file, source, filename, size)
    elif isinstance(source, AsyncIterable):
        if filename is None or size is None:
            raise InvalidUploadError(
                "Uploading a stream needs filename= and size= (the service wants the length "
                "up front, and the name tells the format)."
            )
        name = _check_filename(filename)
        _check_length(name, size, None)
        # No sniffing: reading ahead would consume the stream.
        prepared = _checked(name, size, None, StreamSource(source, size))
    else:
        raise TypeError(
            "upload() takes a path, bytes, a binary file object or an async iterable of "
            f"bytes; got {type(source).__name__}"
        )
    if content_type is not None:
        prepared = attrs.evolve(
            prepared, content_type=_check_content_type(prepared.name, content_type)
        )
    return prepared


# -- replies --------------------------------------------------------------------------------


def media_from_reply(data: Any, endpoint: str) -> list[Media]:
    """The media an upload reply describes.

    The reference's reply is ``{"files": [...], "session_state_applied": true}`` with no ids
    [R]; other shapes are read too: a media object, a list of them, or an object holding them
    under ``files``, ``media`` or ``items`` (one or a list), an id under any of its names.

    Raises:
        APIResponseError: when the reply holds no media.
    """
    if isinstance(data, Mapping):
        for key in MEDIA_LIST_KEYS:
            if isinstance(data.get(key), (Mapping, list)):
                data = data[key]
                break
    items = data if isinstance(data, list) else [data]
    if not items:
        raise APIResponseError("the upload reply lists no media", endpoint=endpoint)
    return [Media.from_data(item, endpoint) for item in items]


# -- calls ----------------------------------------------------------------------------------


async def send(
    api: Api,
    session_id: str,
    prepared: Prepared,
    on_progress: ProgressCallback | None = None,
    *,
    stall_timeout: float = STALL_TIMEOUT,
) -> Media:
    """Upload a checked source (see :func:`prepare`) and return its media."""
    path = upload_path(session_id)
    endpoint = f"POST {path}"
    progress = Progress(on_progress, prepared.size)
    last: list[MultipartBody] = []

    def fresh_body() -> MultipartBody:
        # One body per attempt: a retry reads the source again from its start.
        body = MultipartBody(prepared, progress, endpoint=endpoint, stall_timeout=stall_timeout)
        last[:] = [body]
        return body

    try:
        data = await api.request(
            "POST",
            path,
            body=fresh_body,
            timeout=UPLOAD_TIMEOUT,
            replayable=prepared.source.replayable,
        )
    except APIConnectionError as exc:
        # A failure of ours (the source, the callback, the stall guard) reaches aiohttp as a
        # broken connection: give the caller the real reason.
        failure = last[0].failure if last else None
        if failure is None:
            raise
        raise failure from exc
    return _the_one_sent(media_from_reply(data, endpoint), prepared)


def _the_one_sent(media: list[Media], prepared: Prepared) -> Media:
    """The item of a reply that describes the file sent: the one with its name, else the
    first (a reply may list more, as one request may carry several files [R]). The
    reference's reply has no size [R]: the bytes sent are it."""
    found = next((m for m in media if m.name == prepared.name), media[0])
    return found if found.size else attrs.evolve(found, size=prepared.size)


async def upload(
    api: Api, session_id: str, item: UploadFile, on_progress: ProgressCallback | None = None
) -> Media:
    """Check one upload locally, then send it (``Session.upload`` documents the options)."""
    prepared = await prepare(item)
    # In a notebook, with no callback of the caller's, a bar shows the bytes going out.
    with notebook_progress(on_progress, f"upload {prepared.name}", total=prepared.size) as shown:
        return await send(api, session_id, prepared, shown)


def _check_url(url: Any) -> str:
    if not isinstance(url, str):
        raise InvalidUploadError(f"upload_urls() takes URL strings; got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidUploadError(
            f"{url!r} is not an http(s) URL. Local files go through upload().", filename=url
        )
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if extension_of(name):
        # A URL naming its file must name an accepted one; one without an extension is left
        # for the service to judge by what it fetches.
        try:
            check_format(name, None)
        except UnsupportedFileError as exc:
            raise UnsupportedFileError(f"{url}: {exc.message}", supported=exc.supported) from None
    return url


async def upload_urls(api: Api, session_id: str, urls: Sequence[str]) -> list[Media]:
    """Check URLs locally, then have the service fetch them (``Session.upload_urls``)."""
    if isinstance(urls, (str, bytes)):
        raise InvalidUploadError("upload_urls() takes a list of URLs, not one string: [url]")
    checked = [_check_url(url) for url in urls]
    if not checked:
        raise InvalidUploadError("upload_urls() needs at least one URL")
    path = upload_path(session_id)
    data = await api.request("POST", path, json=url_upload_body(checked), timeout=UPLOAD_TIMEOUT)
    return media_from_reply(data, f"POST {path}")


def _batch_message(
    total: int, errors: dict[int, BaseException], names: Sequence[str], not_sent: int
) -> str:
    first = min(errors)
    done = total - len(errors) - not_sent
    parts = [f"{len(errors)} of {total} uploads failed (first: {names[first]}: {errors[first]})"]
    if not_sent:
        parts.append(f"{not_sent} not sent")
    parts.append(f"{done} completed (see .results)")
    return "; ".join(parts) + "."


async def upload_many(
    api: Api,
    session_id: str,
    sources: Iterable[UploadSource | UploadFile],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
) -> list[Media]:
    """Check every source, then send them ``concurrency`` at a time (``Session.upload_many``).

    The options have no defaults here: ``Session.upload_many`` describes and defaults them.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more; got {concurrency!r}")
    if isinstance(sources, (str, bytes, os.PathLike)):
        raise TypeError("upload_many() takes a list of sources; for one file use upload()")
    items = [s if isinstance(s, UploadFile) else UploadFile(s) for s in sources]
    # Every source is checked before anything is sent.
    prepared = [await prepare(i) for i in items]
    total = sum(p.size for p in prepared)
    sent = [0] * len(prepared)
    done_bytes = 0

    # In a notebook, with no callback of the caller's, one bar shows the whole batch.
    label = f"upload {prepared[0].name}" if len(prepared) == 1 else f"upload {len(prepared)} files"
    with notebook_progress(on_progress, label, total=total) as report_to:

        def file_progress(index: int) -> ProgressCallback | None:
            if report_to is None:
                return None

            def report(now: int, _size: int) -> object:
                nonlocal done_bytes
                done_bytes += now - sent[index]
                sent[index] = now
                return report_to(done_bytes, total)

            return report

        results: list[Media | None] = [None] * len(prepared)
        errors: dict[int, BaseException] = {}
        queue = iter(range(len(prepared)))

        async def worker() -> None:
            for index in queue:
                if errors:
                    return  # after a failure, start nothing new
                try:
                    results[index] = await send(
                        api, session_id, prepared[index], file_progress(index)
                    )
                except Exception as exc:  # every failure is reported in the batch error
                    errors[index] = exc

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(prepared)))))
    if errors:
        not_sent = sum(1 for i, m in enumerate(results) if m is None and i not in errors)
        names = [p.name for p in prepared]
        raise UploadBatchError(
            _batch_message(len(prepared), errors, names, not_sent),
            results=results,
            errors=errors,
        ) from errors[min(errors)]
    return [m for m in results if m is not None]
