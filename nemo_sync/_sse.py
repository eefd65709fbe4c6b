"""A WHATWG event-stream decoder: bytes in, events out, for any chunking of the bytes.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

We decode SSE ourselves because a stream that ends is a normal end here: the chat turn is
over. Libraries built for EventSource reconnect (re-POST) at the end of a stream, which
would send a chat message twice. This decoder never reconnects; ``retry`` is parsed and kept
for the record only.

Beyond the spec, the decoder reports heartbeats, which this API uses to say "still working":
comment lines (``: ping``) and blocks whose only data is empty (``data:``) both come out as
:class:`SSEHeartbeat`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator

import attrs

_LINE_END = re.compile(rb"\r\n|\r|\n")


@attrs.frozen
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@attrs.frozen
class SSEHeartbeat:
    """A comment line or an empty ``data:`` block: the server is alive, nothing more."""

    comment: str = ""


class SSEDecoder:
    """Incremental decoder. Feed it chunks; it returns what became complete.

    Lines are split on ``\\r\\n``, ``\\r`` or ``\\n`` (a ``\\r\\n`` split across chunks counts
    once); a BOM is stripped at the start of the stream only; UTF-8 split across chunks is
    joined before decoding; a line of any length is found in linear time.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scan_from = 0  # where the last search for a line end stopped
        self._skip_lf = False  # the previous chunk ended in \r: a leading \n belongs to it
        self._started = False
        self._data: list[str] = []
        self._has_data = False
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def last_event_id(self) -> str | None:
        """The last event id seen (kept across events, as the spec says)."""
        return self._last_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent | SSEHeartbeat]:
        """Add bytes; return the events and heartbeats they completed."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer
        buffer += chunk
        out: list[ServerSentEvent | SSEHeartbeat] = []
        start = 0
        search_from = self._scan_from
        while True:
            match = _LINE_END.search(buffer, search_from)
            if match is None:
                break
            end = match.end()
            if match.group() == b"\r" and end == len(buffer):
                # A \r at the very end may be half of \r\n: take the line, skip a leading \n.
                self._skip_lf = True
            self._line(bytes(buffer[start : match.start()]), out)
            start = search_from = end
        if start:
            del buffer[:start]
        self._scan_from = len(buffer)
        return out

    def end(self) -> list[ServerSentEvent | SSEHeartbeat]:
        """The stream ended: an unterminated last line or event is discarded (the spec)."""
        self._buffer.clear()
        self._scan_from = 0
        self._data, self._has_data, self._event = [], False, ""
        return []

    def _line(self, raw: bytes, out: list[ServerSentEvent | SSEHeartbeat]) -> None:
        if not self._started:
            self._started = True
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
        line = self._decoder.decode(raw, final=True)
        if not line:
            self._dispatch(out)
            return
        if line[0] == ":":
            out.append(SSEHeartbeat(line[1:].lstrip(" ")))
            return
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value.isdigit() and value.isascii():
            self._retry = int(value)
        # Any other field is ignored, as the spec says.

    def _dispatch(self, out: list[ServerSentEvent | SSEHeartbeat]) -> None:
        data, had_data, event = self._data, self._has_data, self._event
        self._data, self._has_data, self._event = [], False, ""
        if not had_data:
            return
        joined = "\n".join(data)
        if not joined:
            out.append(SSEHeartbeat())  # `data:` with nothing in it: this API's keep-alive
            return
        out.append(ServerSentEvent(joined, event or "message", self._last_id, self._retry))


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent | SSEHeartbeat]:
    """Decode an async stream of byte chunks (``response.content.iter_any()``)."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for item in decoder.feed(chunk):
            yield item
    for item in decoder.end():
        yield item
