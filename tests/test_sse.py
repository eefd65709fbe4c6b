"""The SSE decoder: case by case, byte by byte, against a spec-literal oracle, over a socket."""

from __future__ import annotations

import codecs
import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

import nemo_sync
from nemo_sync._sse import ServerSentEvent, SSEDecoder, SSEHeartbeat, SSEItem, aiter_sse

BOM = codecs.BOM_UTF8


def decode(*chunks: bytes) -> list[SSEItem]:
    decoder = SSEDecoder()
    out = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.end()


def byte_by_byte(data: bytes) -> list[SSEItem]:
    return decode(*(data[i : i + 1] for i in range(len(data))))


def both(data: bytes) -> list[SSEItem]:
    """Decoded whole and one byte at a time; the two must agree."""
    whole = decode(data)
    assert byte_by_byte(data) == whole
    return whole


def reference(stream: bytes) -> list[SSEItem]:
    """The WHATWG algorithm read literally (whole stream at once, line by line), plus this
    API's heartbeats: comments, empty data with no event type, and any block whose event type
    is ``heartbeat``, with or without data."""
    text = stream.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # what follows the last line end: an unterminated line, discarded
    out: list[SSEItem] = []
    buffer, event, last_id, retry = "", "", None, None
    for line in lines:
        if line == "":
            if event == "heartbeat":
                out.append(SSEHeartbeat())
            elif buffer:
                buffer = buffer.removesuffix("\n")
                if buffer or event:
                    out.append(ServerSentEvent(buffer, event or "message", last_id, retry))
                else:
                    out.append(SSEHeartbeat())
            buffer, event = "", ""
            continue
        if line.startswith(":"):
            out.append(SSEHeartbeat(line[1:].removeprefix(" ")))
            continue
        name, _, value = line.partition(":")
        if ":" in line:
            value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            buffer += value + "\n"
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and re.fullmatch(r"[0-9]+", value):
            retry = int(value)
    return out


# ---- line ends --------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_end(newline: bytes) -> None:
    data = b"data: a" + newline + b"data: b" + newline + newline + b"data: c" + newline * 2
    assert both(data) == [ServerSentEvent("a\nb"), ServerSentEvent("c")]


def test_line_ends_mixed_in_one_stream() -> None:
    assert both(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r") == [
        ServerSentEvent("a\nb\nc"),
        ServerSentEvent("d"),
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: x\r", b"\n\r", b"\n"],
        [b"data: x\r", b"", b"\n", b"\r", b"", b"\n"],  # empty chunks change nothing
        [b"data: x", b"\r", b"\n", b"\r", b"\n"],
    ],
)
def test_crlf_cut_across_chunks_is_one_line_end(chunks: list[bytes]) -> None:
    # Were the \n counted as a second line end, the event would come after "data: x\r" alone.
    assert decode(*chunks) == [ServerSentEvent("x")]
    assert decode(b"data: x\r", b"\n") == []  # one line end only: the event is unterminated


def test_only_the_first_lf_after_a_chunk_ending_in_cr_is_skipped() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r", b"\r") == [ServerSentEvent("a\nb")]


# ---- BOM, spaces, fields ----------------------------------------------------------------


def test_bom_is_stripped_at_the_start_of_the_stream_only() -> None:
    assert both(BOM + b"data: a\n\n") == [ServerSentEvent("a")]
    # Later, a BOM is part of the line: "\ufeffdata" is an unknown field, ignored.
    assert both(b"data: a\n\n" + BOM + b"data: b\n\n") == [ServerSentEvent("a")]
    # Only one is stripped.
    assert both(BOM + BOM + b"data: a\n\n") == []
    assert decode(BOM[:1], BOM[1:2], BOM[2:] + b"data: a\n", b"\n") == [ServerSentEvent("a")]


def test_one_leading_space_is_removed_and_only_one() -> None:
    assert both(b"data:x\n\ndata: x\n\ndata:  x\n\nevent:  e\ndata:\tx\n\n") == [
        ServerSentEvent("x"),
        ServerSentEvent("x"),
        ServerSentEvent(" x"),
        ServerSentEvent("\tx", " e"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert both(b'data: {\ndata:   "a": 1\ndata: }\n\n') == [ServerSentEvent('{\n  "a": 1\n}')]
    assert both(b"data:\ndata:\n\n") == [ServerSentEvent("\n")]  # two empty lines: one LF


def test_event_type_applies_to_its_block_only() -> None:
    data = b"event: update\ndata: 1\n\ndata: 2\n\nevent: lost\n\ndata: 3\n\n"
    assert both(data) == [
        ServerSentEvent("1", "update"),
        ServerSentEvent("2"),
        ServerSentEvent("3"),  # a block without data dispatches nothing and resets the type
    ]


def test_id_persists_across_events_and_ignores_nul() -> None:
    data = b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n"
    assert both(data) == [
        ServerSentEvent("a", id="7"),
        ServerSentEvent("b", id="7"),
        ServerSentEvent("c", id="7"),  # NUL: ignored
        ServerSentEvent("d", id=""),  # an empty id resets it
    ]


def test_retry_takes_ascii_digits_only_and_is_only_reported() -> None:
    decoder = SSEDecoder()
    out = decoder.feed(b"retry: 1500\ndata: a\n\nretry: 1x\nretry: -1\nretry: \xd9\xa1\n")
    out += decoder.feed(b"retry:\nretry: 1 \ndata: b\n\n")
    assert out == [ServerSentEvent("a", retry=1500), ServerSentEvent("b", retry=1500)]
    assert decoder.retry == 1500


def test_unknown_fields_case_and_lines_without_colon() -> None:
    assert both(b"foo: bar\nData: x\nDATA\nid\n\n") == []
    assert both(b"data\n\n") == [SSEHeartbeat()]  # "data" alone is an empty data line
    assert both(b"event\ndata\n\n") == [SSEHeartbeat()]  # an empty event type is no type


# ---- heartbeats -------------------------------------------------------------------------


def test_comments_and_bare_empty_data_are_heartbeats() -> None:
    assert both(b": ping\n:\n:  two spaces\n\ndata:\n\ndata\n\n") == [
        SSEHeartbeat("ping"),
        SSEHeartbeat(""),
        SSEHeartbeat(" two spaces"),
        SSEHeartbeat(),
        SSEHeartbeat(),
    ]


def test_an_empty_event_that_names_its_type_is_dispatched() -> None:
    assert both(b"event: done\ndata:\n\n") == [ServerSentEvent("", "done")]


# [R][V]: the reference's keep-alive is an `event: heartbeat` frame; it is a heartbeat whatever
# its data says, and even with no data line (which the spec would not dispatch at all).
@pytest.mark.parametrize(
    "block",
    [
        b"event: heartbeat\n\n",
        b"event: heartbeat\ndata:\n\n",
        b"event: heartbeat\ndata: {}\n\n",
        b'event: heartbeat\ndata: {"type": "text", "content": "not words"}\n\n',
        b"event:heartbeat\r\ndata: a\r\ndata: b\r\n\r\n",
        b"data: x\nevent: heartbeat\n\n",  # the type may come after the data
    ],
)
def test_a_block_named_heartbeat_is_a_heartbeat_whatever_its_data(block: bytes) -> None:
    assert both(block + b"data: next\n\n") == [SSEHeartbeat(), ServerSentEvent("next")]


def test_only_the_name_heartbeat_makes_a_heartbeat_and_only_for_its_block() -> None:
    data = b"event: Heartbeat\ndata: a\n\nevent: heartbeats\ndata: b\n\nevent: heartbeat\n\n"
    assert both(data + b"data: c\n\n") == [
        ServerSentEvent("a", "Heartbeat"),  # event types are case-sensitive
        ServerSentEvent("b", "heartbeats"),
        SSEHeartbeat(),
        ServerSentEvent("c"),
    ]


def test_a_comment_inside_an_event_does_not_end_it() -> None:
    assert both(b"data: a\n: ping\ndata: b\n\n") == [SSEHeartbeat("ping"), ServerSentEvent("a\nb")]


# ---- bytes and text ---------------------------------------------------------------------


def test_utf8_cut_across_chunks() -> None:
    assert both("data: 同步音乐 🎵\n\n".encode()) == [ServerSentEvent("同步音乐 🎵")]


def test_invalid_utf8_is_replaced_and_never_eats_a_line_end() -> None:
    assert both(b"data: a\xff\ndata: \xe4\xbd\n\n") == [ServerSentEvent("a\ufffd\n\ufffd")]


# ---- the end of the stream --------------------------------------------------------------


def test_an_unterminated_last_event_is_discarded() -> None:
    assert both(b"data: done\n\ndata: half") == [ServerSentEvent("done")]
    assert both(b"data: done\n\ndata: no blank line\n") == [ServerSentEvent("done")]
    assert both(b"data: done\n\n: unterminated comment") == [ServerSentEvent("done")]


def test_a_decoder_decodes_one_stream() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\ndata: half")
    assert decoder.end() == []
    assert decoder.last_event_id == "1"
    with pytest.raises(RuntimeError, match="ended"):
        decoder.feed(b"\n\n")


# ---- long lines -------------------------------------------------------------------------


@pytest.mark.timeout(20)  # a decoder that rescans its buffer per chunk takes minutes here
def test_a_10_mb_line_in_1_kb_chunks() -> None:
    payload = ("節" + "x" * 1023).encode() * 10 * 1024  # multi-byte characters cut by chunks
    data = b"data: " + payload + b"\r\n\r\ndata: next\n\n"
    decoder = SSEDecoder()
    out: list[SSEItem] = []
    for i in range(0, len(data), 1024):
        out += decoder.feed(data[i : i + 1024])
    assert out == [ServerSentEvent(payload.decode()), ServerSentEvent("next")]


# ---- properties -------------------------------------------------------------------------

fragments = st.sampled_from(
    [
        b"data",
        b"data:",
        b"data: ",
        b"event: ",
        b"event: heartbeat",
        b"id: ",
        b"retry: ",
        b":",
        b" ",
        b"x",
        b"7",
        b"\0",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        BOM,
        "同".encode(),
        "🎵".encode(),
        b"\xe4\xbd",  # a cut character
        b"\xff",
    ]
)
streams = st.lists(fragments, max_size=40).map(b"".join)


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(cuts)
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


@settings(max_examples=400, deadline=None)
@given(streams, st.lists(st.integers(0, 400), max_size=12))
def test_any_stream_any_chunking_matches_the_spec(stream: bytes, cuts: list[int]) -> None:
    expected = reference(stream)
    assert decode(stream) == expected
    assert decode(*cut(stream, [c % (len(stream) + 1) for c in cuts])) == expected


@settings(max_examples=100, deadline=None)
@given(streams)
def test_byte_by_byte_matches_the_spec(stream: bytes) -> None:
    assert byte_by_byte(stream) == reference(stream)


# ---- over a socket ----------------------------------------------------------------------


async def test_aiter_sse_over_iter_any_from_a_real_server() -> None:
    big = "節拍" * 500_000  # ~3 MB of 3-byte characters in one line
    body = (
        BOM
        + b": ping\r\n"
        + b"data: first\r\n\r\n"
        + f"event: draft\ndata: {big}\n\n".encode()
        + b"data:\n\n"
        + b"data: last\r\r"
        + b"data: unterminated"
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sizes = [1, 2, 3, 5, 7, 11, 13, 4096, 65537]
        at = 0
        for n in range(len(body)):  # writes of awkward sizes, cutting lines and characters
            if at >= len(body):
                break
            step = sizes[n % len(sizes)]
            await response.write(body[at : at + step])
            at += step
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/sse", handler)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/sse")) as resp:
            items = [item async for item in aiter_sse(resp.content.iter_any())]
    assert items == [
        SSEHeartbeat("ping"),
        ServerSentEvent("first"),
        ServerSentEvent(big, "draft"),
        SSEHeartbeat(),
        ServerSentEvent("last"),
    ]


# -- caps: the network decides how long a line is, so memory is capped here ------------------


def test_a_line_without_an_end_past_the_cap_raises_before_buffering_more() -> None:
    decoder = SSEDecoder(max_line=1000, endpoint="POST /run_sse")
    decoder.feed(b"data: " + b"x" * 500)
    with pytest.raises(nemo_sync.ResponseTooLargeError, match="a line over 1000 bytes") as caught:
        decoder.feed(b"x" * 600)
    assert caught.value.limit == 1000
    assert caught.value.endpoint == "POST /run_sse"


def test_one_whole_line_past_the_cap_raises() -> None:
    decoder = SSEDecoder(max_line=1000)
    with pytest.raises(nemo_sync.ResponseTooLargeError):
        decoder.feed(b"data: " + b"x" * 2000 + b"\n")


def test_data_lines_never_dispatched_past_the_cap_raise() -> None:
    decoder = SSEDecoder(max_line=1000)
    with pytest.raises(nemo_sync.ResponseTooLargeError, match="an event"):
        for _ in range(100):
            decoder.feed(b"data: " + b"y" * 50 + b"\n")


def test_many_small_events_under_the_cap_are_fine() -> None:
    decoder = SSEDecoder(max_line=1000)
    items = []
    for _ in range(1000):
        items += decoder.feed(b"data: " + b"z" * 500 + b"\n\n")
    assert len(items) == 1000
