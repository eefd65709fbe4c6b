"""The upload body: a multipart/form-data stream read from its source one chunk at a time.

Its length is known up front (so ``Content-Length`` is exact and no chunked encoding is
needed), reads happen off the event loop with one chunk read ahead, progress is reported as
chunks go out, and a connection that takes no data for too long is given up (the stall guard:
uploads have no total deadline). Each attempt gets a fresh body, which reads its source again
from the start; a source that cannot be read twice says so instead of sending nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import IO, Any, Protocol

import attrs
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from nemo_sync._contract import UPLOAD_FILE_FIELD
from nemo_sync.errors import APITimeoutError, InvalidUploadError, NemoError

CHUNK_SIZE = 1 << 20
"""Bytes read and written at a time (measured in benchmarks/bench_upload.py)."""

STALL_TIMEOUT = 300.0
"""Seconds the connection may take no data before an upload is given up."""

ProgressCallback = Callable[[int, int], object]
"""``on_progress(sent_bytes, total_bytes)``; may return an awaitable, which is awaited."""


class Source(Protocol):
    """Where an upload's bytes come from."""

    @property
    def replayable(self) -> bool:
        """Whether it can be read again from the start (for a retry)."""

    def chunks(self) -> AsyncGenerator[bytes | memoryview, None]:
        """Its bytes from the start, exactly as many as were checked, or an error."""


MAX_NAME_BYTES = 255
"""The longest file name sent, in UTF-8 bytes: what most file systems hold (NAME_MAX), so the
service can keep a file under the name it shows."""

# Every run of control characters (C0, DEL, C1): none is valid in a header line, and none
# belongs in a name a person reads (a terminal acts on ESC, BEL, CSI).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]+")
# Lone surrogates: the bytes of a file name on disk that are not UTF-8 (os.fsdecode keeps them
# this way), which cannot be encoded to send.
_SURROGATE = re.compile("[\ud800-\udfff]")


def sendable_name(name: str) -> str:
    """The file name as it is sent, and so as the service shows it.

    Each run of control characters becomes ``_`` (``"a\\nb\\x1bc.mp4"`` -> ``"a_b_c.mp4"``),
    each undecodable byte ``U+FFFD``, and a name over :data:`MAX_NAME_BYTES` is cut short
    before its extension, between characters, so the service still knows its format.
    """
    name = _CONTROLS.sub("_", _SURROGATE.sub("\ufffd", name))
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    # The extension is an accepted format's (checked before this): a few ASCII letters.
    suffix = dot + ext if stem and len(ext) <= 8 else ""
    head = (stem if suffix else name).encode()[: MAX_NAME_BYTES - len(suffix)]
    return head.decode(errors="ignore") + suffix  # "ignore": drops a character cut in two


@attrs.frozen
class Prepared:
    """A checked upload: what to call it, how big it is, and where its bytes are.

    Attributes:
        name: The file name sent with it: the caller's, made safe to send
            (:func:`sendable_name`).
        size: Its size in bytes (the file part's, not the whole multipart body's).
        content_type: Its media type.
        source: Its bytes.
    """

    name: str = attrs.field(converter=sendable_name)
    size: int
    content_type: str
    source: Source


def _discard(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned read's outcome (so asyncio does not log it as unhandled)."""
    if not future.cancelled():
        future.exception()


async def _read_file(
    file: IO[bytes], size: int, name: str, *, close: bool
) -> AsyncGenerator[bytes, None]:
    """``size`` bytes of ``file`` from where it is, read in a thread one chunk ahead.

    The next chunk is read while the current one is sent, so disk and network overlap; at
    most two chunks are in memory.
    """
    loop = asyncio.get_running_loop()
    remaining = size
    pending: asyncio.Future[bytes] | None = loop.run_in_executor(
        None, file.read, min(CHUNK_SIZE, remaining)
    )
    try:
        while pending is not None:
            # Shielded: a cancelled read still runs in its thread, and the file must stay open
            # until it is done (the finally below closes it then).
            chunk = await asyncio.shield(pending)
            pending = None
            if not chunk:
                raise InvalidUploadError(
                    f"{name} got shorter while it was being uploaded "
                    f"({size - remaining} of {size} bytes read). Upload it again once it is "
                    "complete.",
                    filename=name,
                )
            if not isinstance(chunk, bytes):
                raise InvalidUploadError(
                    f"{name}: the file object gives {type(chunk).__name__}, not bytes: open it "
                    "in binary mode ('rb').",
                    filename=name,
                )
            chunk = chunk[:remaining]
            remaining -= len(chunk)
            if remaining:
                pending = loop.run_in_executor(None, file.read, min(CHUNK_SIZE, remaining))
            yield chunk
    finally:
        if pending is not None:
            # Abandoned mid-way: let the read in flight finish before the file is closed.
            pending.add_done_callback(_discard)
            if close:
                pending.add_done_callback(lambda _: file.close())
        elif close:
            file.close()


def _close_opened(future: asyncio.Future[IO[bytes]]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


@attrs.frozen
class PathSource:
    """A file on disk, opened anew for each attempt."""

    path: Path
    size: int
    replayable = True

    def _open(self) -> IO[bytes]:
        file = self.path.open("rb")
        try:
            now = os.fstat(file.fileno()).st_size
        except BaseException:
            file.close()
            raise
        if now != self.size:
            file.close()
            raise InvalidUploadError(
                f"{self.path} changed since it was checked ({self.size} bytes, now {now}). "
                "Upload it again once it is complete.",
                filename=str(self.path),
            )
        return file

    async def chunks(self) -> AsyncGenerator[bytes | memoryview, None]:
        """The file's bytes; fails if it changes size while being read."""
        opening = asyncio.get_running_loop().run_in_executor(None, self._open)
        try:
            # Shielded: cancelling the open's future would not stop its thread, only lose the
            # file it opens. It stays pending, so the callback below closes that file.
            file = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise
        async with aclosing(_read_file(file, self.size, str(self.path), close=True)) as data:
            async for chunk in data:
                yield chunk


@attrs.frozen
class FileSource:
    """A seekable file object: each attempt seeks back to where it was when checked."""

    file: IO[bytes]
    start: int
    size: int
    replayable = True

    async def chunks(self) -> AsyncGenerator[bytes | memoryview, None]:
        """The object's bytes from its starting position."""
        name = str(getattr(self.file, "name", "the file object"))
        await asyncio.get_running_loop().run_in_executor(None, self.file.seek, self.start)
        async with aclosing(_read_file(self.file, self.size, name, close=False)) as data:
            async for chunk in data:
                yield chunk


@attrs.frozen
class BytesSource:
    """Bytes in memory, sent in slices (no copies)."""

    data: memoryview
    replayable = True

    async def chunks(self) -> AsyncGenerator[bytes | memoryview, None]:
        """The bytes, one chunk at a time."""
        for start in range(0, self.data.nbytes, CHUNK_SIZE):
            yield self.data[start : start + CHUNK_SIZE]


@attrs.define
class StreamSource:
    """An async iterable (or an unseekable file): it can be read once only."""

    stream: AsyncIterable[bytes]
    size: int
    used: bool = False
    replayable = False

    async def chunks(self) -> AsyncGenerator[bytes | memoryview, None]:
        """The stream's chunks, as they come."""
        if self.used:
            # Never reached through upload() (it does not retry these): a guard against
            # ever sending a consumed stream as an empty or partial body.
            raise InvalidUploadError("this stream was already read: a stream is sent once")
        self.used = True
        async for chunk in self.stream:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise InvalidUploadError(
                    f"the upload stream gave {type(chunk).__name__}; it must give bytes"
                )
            yield chunk


class Progress:
    """Calls ``on_progress(sent, total)``, awaiting it when it returns an awaitable."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total

    async def report(self, sent: int) -> None:
        """Report ``sent`` bytes out of the total."""
        if self.callback is None:
            return
        result = self.callback(sent, self.total)
        if inspect.isawaitable(result):
            await result


class _StallGuard:
    """Aborts the connection when its send buffer has not shrunk for ``timeout`` seconds.

    Armed around each write (which waits while the buffer is full), so a slow link that
    still takes data is never given up, and an idle one is given up after ``timeout``.
    """

    def __init__(
        self, writer: AbstractStreamWriter, timeout: float, on_stall: Callable[[], None]
    ) -> None:
        self._transport: asyncio.Transport | None = getattr(writer, "transport", None)
        self._timeout = timeout
        self._on_stall = on_stall
        self._left = self._buffered()
        self._handle = asyncio.get_running_loop().call_later(timeout, self._check)

    def _buffered(self) -> int:
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def _check(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        left = self._buffered()
        if left < self._left:  # data went out: not stalled, look again later
            self._left = left
            self._handle = asyncio.get_running_loop().call_later(self._timeout, self._check)
            return
        self._on_stall()
        # Abort, not close: closing would wait to flush what the peer does not read. The
        # pending write and the wait for the reply then fail at once.
        transport.abort()

    def cancel(self) -> None:
        self._handle.cancel()


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{ord(c):02X}" for c in match.group())


def _quote_filename(name: str) -> str:
    """The file name between the quotes of the part's ``Content-Disposition`` header.

    As browsers and curl send it (the WHATWG HTML rules), with two choices made for the
    service's parser, python-multipart (>= 0.0.7), which undoes quoted-pairs and ignores
    ``filename*`` (RFC 7578, section 4.2, forbids it in form data):

    - ``"`` is ``%22`` and any control character that got this far is ``%XX`` (WHATWG names
      CR and LF; every control is invalid in a header line), so the line is always valid;
    - a backslash is sent as the quoted-pair ``\\\\``: python-multipart and aiohttp (the
      emulator) both read that back as one backslash, whereas aiohttp drops a lone one;
    - anything else, non-ASCII included, is sent as it is, in UTF-8; no ``filename*``.
    """
    return _CONTROLS.sub(_percent, name.replace("\\", "\\\\").replace('"', "%22"))


class MultipartBody(Payload):
    """One attempt's ``multipart/form-data`` body with the file in field ``files`` [V].

    ``failure`` holds the error when the body itself failed (the source, the progress
    callback, the stall guard): aiohttp reports those as a broken connection.
    """

    _autoclose = True  # the source is opened and closed inside write()

    def __init__(
        self,
        prepared: Prepared,
        progress: Progress,
        *,
        endpoint: str,
        stall_timeout: float,
    ) -> None:
        boundary = f"nemo-sync-{secrets.token_hex(16)}"
        self._head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{UPLOAD_FILE_FIELD}"; '
            f'filename="{_quote_filename(prepared.name)}"\r\n'
            f"Content-Type: {prepared.content_type}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        super().__init__(None, content_type=f"multipart/form-data; boundary={boundary}")
        self._size = len(self._head) + prepared.size + len(self._tail)
        self._prepared = prepared
        self._progress = progress
        self._endpoint = endpoint
        self._stall_timeout = stall_timeout
        self._started = False
        self._sent = 0
        self.failure: BaseException | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not available: the body is streamed, never held whole."""
        raise TypeError("an upload body is streamed; it cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send the body (aiohttp calls :meth:`write_with_length`)."""
        await self.write_with_length(writer, None)

    def _fail(self, exc: BaseException) -> BaseException:
        if self.failure is None:
            self.failure = exc
        return exc

    def _stalled(self) -> None:
        prepared = self._prepared
        self._fail(
            APITimeoutError(
                f"The upload of {prepared.name} stalled: the connection took no data for "
                f"{self._stall_timeout:g} s ({self._sent} of {prepared.size} bytes sent). "
                "Check the network and try again.",
                endpoint=self._endpoint,
            )
        )

    async def _send(self, writer: AbstractStreamWriter, data: bytes | memoryview) -> None:
        """Write ``data``, giving up when the connection takes none of it for too long."""
        guard = _StallGuard(writer, self._stall_timeout, self._stalled)
        try:
            await writer.write(data)
        finally:
            guard.cancel()

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Send the multipart framing and the source's bytes, reporting progress."""
        prepared = self._prepared
        if self._started:
            # aiohttp re-sends a body only on redirects, which API calls never follow.
            raise self._fail(RuntimeError("internal: an upload body was sent twice"))
        self._started = True
        await self._report(0)
        await self._send(writer, self._head)
        async with aclosing(prepared.source.chunks()) as chunks:
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._fail(self._source_error(exc)) from exc
                size = memoryview(chunk).nbytes
                if self._sent + size > prepared.size:
                    raise self._fail(self._length_error(self._sent + size))
                await self._send(writer, chunk)
                self._sent += size
                await self._report(self._sent)
        if self._sent != prepared.size:
            raise self._fail(self._length_error(self._sent))
        await self._send(writer, self._tail)

    async def _report(self, sent: int) -> None:
        try:
            await self._progress.report(sent)
        except Exception as exc:
            raise self._fail(exc) from None

    def _source_error(self, exc: Exception) -> BaseException:
        if isinstance(exc, NemoError):
            return exc
        name = self._prepared.name
        return InvalidUploadError(
            f"Reading {name} failed after {self._sent} bytes: {type(exc).__name__}: {exc}",
            filename=name,
        )

    def _length_error(self, got: int) -> InvalidUploadError:
        prepared = self._prepared
        told = "more" if got > prepared.size else "fewer"
        return InvalidUploadError(
            f"{prepared.name}: the stream gave {told} bytes than size={prepared.size} "
            f"({got} so far). Pass its exact size.",
            filename=prepared.name,
        )
