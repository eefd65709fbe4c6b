"""The SSE decoder, byte by byte and by property."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemo_sync._sse import ServerSentEvent, SSEDecoder, SSEHeartbeat


def decode(*chunks: bytes) -> list[ServerSentEvent | SSEHeartbeat]:
    decoder = SSEDecoder()
    out = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.end()


def one_byte_at_a_time(data: bytes) -> list[ServerSentEvent | SSEHeartbeat]:
    return decode(*(data[i : i + 1] for i in range(len(data))))


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    data = b"data: a" + newline + b"data: b" + newline + newline + b"data: c" + newline * 2
    expected = [ServerSentEvent("a\nb"), ServerSentEvent("c")]
    assert decode(data) == expected
    assert one_byte_at_a_time(data) == expected


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    assert decode(b"data: x\r", b"\n\r", b"\n") == [ServerSentEvent("x")]


def test_bom_is_stripped_at_the_start_only() -> None:
    bom = codecs.BOM_UTF8
    assert decode(bom + b"data: a\n\n") == [ServerSentEvent("a")]
    assert decode(b"data: a\n\n" + bom + b"data: b\n\n") == [ServerSentEvent("a")]


def test_one_leading_space_is_removed_and_only_one() -> None:
    assert decode(b"data:x\n\ndata: x\n\ndata:  x\n\n") == [
        ServerSentEvent("x"),
        ServerSentEvent("x"),
        ServerSentEvent(" x"),
    ]


def test_fields_event_id_retry() -> None:
    data = b"event: update\nid: 7\nretry: 1500\ndata: {}\n\nretry: 1x\nid: a\0b\ndata: 2\n\n"
    assert decode(data) == [
        ServerSentEvent("{}", "update", "7", 1500),
        ServerSentEvent("2", "message", "7", 1500),  # NUL id ignored; bad retry ignored
    ]


def test_comments_and_empty_data_are_heartbeats() -> None:
    assert decode(b": ping\n\ndata:\n\n: \n") == [
        SSEHeartbeat("ping"),
        SSEHeartbeat(),
        SSEHeartbeat(""),
    ]


def test_utf8_split_across_chunks() -> None:
    data = "data: 同步音乐 🎵\n\n".encode()
    assert one_byte_at_a_time(data) == [ServerSentEvent("同步音乐 🎵")]


def test_an_unterminated_last_event_is_discarded() -> None:
    assert decode(b"data: done\n\ndata: half") == [ServerSentEvent("done")]
    assert decode(b"data: done\n\ndata: no blank line\n") == [ServerSentEvent("done")]


def test_unknown_fields_and_lines_without_colon() -> None:
    assert decode(b"foo: bar\ndata\n\n") == [SSEHeartbeat()]  # "data" alone = empty data


def test_a_10_mb_line_in_small_chunks() -> None:
    payload = b"x" * (10 * 1024 * 1024)
    data = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    out: list[ServerSentEvent | SSEHeartbeat] = []
    for i in range(0, len(data), 4096):
        out += decoder.feed(data[i : i + 4096])
    assert len(out) == 1
    assert isinstance(out[0], ServerSentEvent)
    assert len(out[0].data) == len(payload)


stream_lines = st.lists(
    st.sampled_from(
        [
            b"data: a",
            b"data:b",
            b"data: \xe4\xbd\xa0\xe5\xa5\xbd",
            b": hb",
            b"",
            b"event: x",
            b"id: 3",
            b"retry: 20",
            b"data:",
            b"\xef\xbb\xbfdata: bom",
        ]
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(stream_lines, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.data())
def test_any_chunking_yields_the_same_events(
    lines: list[bytes], newline: bytes, data: st.DataObject
) -> None:
    stream = newline.join(lines) + newline
    whole = decode(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert decode(*chunks) == whole
