"""A WHATWG event-stream decoder: bytes in, events out, the same for any chunking of the bytes.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

We decode SSE ourselves because here the end of a stream is the normal end of a chat turn.
EventSource clients reconnect when a stream ends, which re-sends the request: for a chat
message that means editing the timeline twice and paying twice. This decoder never
reconnects and has no way to: ``retry`` is parsed and reported, never obeyed, and the last
event id is kept only so callers can see it.

This API says "still working" with comment lines (``: ping``), empty ``data:`` blocks and
blocks of type ``heartbeat`` (``event: heartbeat``, whatever their data, even none), so all
three come out as :class:`SSEHeartbeat`. Those are the departures from the spec, which
ignores comments, would dispatch the empty block as a message with empty data, and a
heartbeat block with data as an event of that type. (Any other block that names its
``event`` type is dispatched, even with empty data.) A ``{"type": "heartbeat"}`` event is
JSON, so it is ``nemo_sync._events``' to recognise, not the decoder's.

How it stays fast: a chunk is searched for its *last* line end only (``rfind``, in C); the
bytes before it are whole lines, decoded in one go and split in one go. The bytes after it
wait in a list until a later chunk ends their line, which is then joined once and decoded on
its own: a 10 MB line costs one join and one decode, never a rescan per chunk. Lines are
decoded only once complete, so UTF-8 cut across chunks needs no incremental decoder; a
``\r`` that ends a chunk makes a ``\n`` that starts the next one part of the same line end.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator

import attrs

from nemo_sync.errors import ResponseTooLargeError

_BOM = "\ufeff"
MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line, and the largest event's data, a stream may send (16 MB by default)."""


@attrs.frozen
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        data: The ``data`` lines, joined with ``\\n``.
        event: The ``event`` field, or ``"message"`` when the block had none.
        id: The last event id of the stream when this event was dispatched (the spec keeps
            it across events), or None when the stream never set one.
        retry: The reconnection time in ms the stream last asked for, or None. Reported
            only: nemo-sync never reconnects.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


HEARTBEAT_TYPE = "heartbeat"
"""The ``event`` type of a block that only says the server is alive."""


@attrs.frozen
class SSEHeartbeat:
    """A comment line, a block with empty data and no ``event`` type, or a block of type
    ``heartbeat`` (whatever its data): the server is alive.

    Attributes:
        comment: The comment's text (one leading space removed); empty for ``data:``.
    """

    comment: str = ""


SSEItem = ServerSentEvent | SSEHeartbeat


class SSEDecoder:
    """Decodes one event stream, incrementally: feed it chunks, it returns what they completed.

    Lines end with ``\\r\\n``, ``\\r`` or ``\\n`` (a ``\\r\\n`` split across chunks counts
    once). A UTF-8 BOM is stripped at the start of the stream only. Multi-line ``data`` is
    joined with ``\\n``; one space after the colon is removed, and only one. ``id`` is ignored
    when it contains NUL, ``retry`` unless it is all ASCII digits, unknown fields always.
    Invalid UTF-8 becomes U+FFFD. When the stream ends, an unterminated last event is
    discarded.

    Example::

        decoder = SSEDecoder()
        for chunk in chunks:
            for item in decoder.feed(chunk):
                ...
        decoder.end()
    """

    def __init__(self, *, max_line: int = MAX_LINE_BYTES, endpoint: str | None = None) -> None:
        self._max = max_line
        self._endpoint = endpoint
        self._pending: list[bytes] = []  # bytes of a line whose end has not arrived yet
        self._pending_size = 0
        self._data_size = 0  # characters of data in the event being built
        self._skip_lf = False  # the last chunk ended in \r: a \n starting the next is its pair
        self._started = False
        self._closed = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event id the stream set (kept across events, as the spec says)."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The reconnection time in ms the stream last asked for (reported, never obeyed)."""
        return self._retry

    def feed(self, chunk: bytes) -> list[SSEItem]:
        """Add the next bytes of the stream.

        Args:
            chunk: Any number of bytes, cut anywhere (even inside a character or a ``\\r\\n``).

        Returns:
            The events and heartbeats completed by these bytes, in stream order.

        Raises:
            RuntimeError: when called after :meth:`end`.
        """
        if self._closed:
            raise RuntimeError("this SSE stream has ended; decode a new stream with a new decoder")
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        out: list[SSEItem] = []
        if self._pending:
            # A line started in an earlier chunk: finish it on its own, so that a long line
            # is joined once and never goes through split().
            lf, cr = chunk.find(b"\n"), chunk.find(b"\r")
            if lf < 0 and cr < 0:
                self._hold(chunk)
                return out
            end = lf if cr < 0 else cr if lf < 0 else min(lf, cr)
            self._hold(chunk[:end])
            line = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            after = end + 1
            if cr == end:
                if after == len(chunk):
                    self._skip_lf = True
                elif chunk[after] == 10:  # "\r\n"
                    after += 1
            if self._started and line.startswith(b"data:"):
                # A long data line, decoded straight from the buffer: no copy of the text.
                skip = 6 if line[5:6] == b" " else 5
                value = codecs.utf_8_decode(memoryview(line)[skip:], "replace", True)[0]
                self._grow_data(len(value))
                self._data.append(value)
            else:
                self._lines([self._decode(line)], out)
            chunk = chunk[after:]
            if not chunk:
                return out
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last < 0:
            self._hold(chunk)
            return out
        if last + 1 < len(chunk):
            self._hold(chunk[last + 1 :])
            chunk = chunk[: last + 1]
        elif chunk[last] == 13:  # "\r" last: maybe half of a "\r\n"
            self._skip_lf = True
        text = self._decode(chunk)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # the text ends with a line end: the last piece is empty
        self._lines(lines, out)
        return out

    def end(self) -> list[SSEItem]:
        """The stream ended. An unterminated last line or event is discarded, as the spec says.

        Returns:
            Always an empty list (kept so callers can treat the end like a last chunk).
        """
        self._closed = True
        self._pending.clear()
        self._pending_size = self._data_size = 0
        self._data = []
        self._event = ""
        return []

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the event stream sent {what} over {self._max} bytes; the stream was closed "
            "to keep memory bounded",
            endpoint=self._endpoint,
            limit=self._max,
        )

    def _hold(self, part: bytes) -> None:
        self._pending_size += len(part)
        if self._pending_size > self._max:
            self._pending.clear()
            raise self._too_large("a line")
        self._pending.append(part)

    def _grow_data(self, size: int) -> None:
        self._data_size += size
        if self._data_size > self._max:
            self._data = []
            raise self._too_large("an event")

    def _decode(self, raw: bytes) -> str:
        # Only whole lines get here, so no character is ever cut in two.
        text = raw.decode("utf-8", "replace")
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                return text[1:]
        return text

    def _lines(self, lines: list[str], out: list[SSEItem]) -> None:
        # The hot loop, with the common cases first and the dispatch inlined.
        data = self._data
        size, cap = self._data_size, self._max
        for line in lines:
            if line.startswith("data:"):
                value = line[6:] if line.startswith(" ", 5) else line[5:]
                size += len(value)
                if size > cap:
                    self._data_size = size
                    self._grow_data(0)
                data.append(value)
            elif not line:
                size = 0
                if self._event == HEARTBEAT_TYPE:
                    # A keep-alive whatever its data says, and even with none (the spec would
                    # dispatch nothing then): it must reach the chat turn as one.
                    out.append(SSEHeartbeat())
                    if data:
                        data = self._data = []
                elif data:
                    value = data[0] if len(data) == 1 else "\n".join(data)
                    if value or self._event:
                        event = self._event or "message"
                        out.append(ServerSentEvent(value, event, self._last_id, self._retry))
                    else:
                        out.append(SSEHeartbeat())  # a bare empty `data:`: a keep-alive
                    data = self._data = []
                self._event = ""
            elif line[0] == ":":
                out.append(SSEHeartbeat(line[2:] if line.startswith(" ", 1) else line[1:]))
            else:
                self._data_size = size
                self._field(line, data)
                size = self._data_size
        self._data_size = size

    def _field(self, line: str, data: list[str]) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":  # "data" without a colon: an empty data line
            self._grow_data(len(value))
            data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Any other field is ignored, as the spec says.


async def aiter_sse(
    chunks: AsyncIterable[bytes], *, max_line: int = MAX_LINE_BYTES, endpoint: str | None = None
) -> AsyncIterator[SSEItem]:
    """Decode an async stream of byte chunks, e.g. ``response.content.iter_any()``.

    Args:
        chunks: The body, in chunks of any size.
        max_line: The longest line, and the largest event, accepted (bytes).
        endpoint: Named in the error when a cap is passed.

    Yields:
        Events and heartbeats, in stream order. An unterminated last event is discarded.

    Raises:
        ResponseTooLargeError: a line or an event over ``max_line``.
    """
    decoder = SSEDecoder(max_line=max_line, endpoint=endpoint)
    async for chunk in chunks:
        for item in decoder.feed(chunk):
            yield item
    decoder.end()
