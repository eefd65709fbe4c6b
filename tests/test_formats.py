"""Formats: extensions, sniffing by magic bytes, and the verdict when the two disagree."""

from __future__ import annotations

import struct

import pytest

from nemo_sync._contract import MAX_UPLOAD_BYTES, SUPPORTED_FORMATS
from nemo_sync._formats import (
    FORMATS,
    check_format,
    extension_of,
    format_of,
    sniff,
)
from nemo_sync.errors import UnsupportedFileError


def ftyp(brand: bytes) -> bytes:
    return struct.pack(">I4s", 24, b"ftyp") + brand + b"\x00\x00\x02\x00isomiso2" + b"\x00" * 8


WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32
AVI = b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
MKV = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 32
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 32
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 32
AAC_ADTS = b"\xff\xf1\x50\x80" + b"\x00" * 32


def test_the_table_is_the_contracts_list() -> None:
    assert tuple(FORMATS) == SUPPORTED_FORMATS
    assert MAX_UPLOAD_BYTES == 500 * 1024 * 1024
    assert {f.kind for f in FORMATS.values()} == {"video", "audio", "image"}


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("clip.MP4", "mp4"),
        ("a.b.mov", "mov"),
        ("noext", ""),
        (".hidden", ""),
        ("dir.mp4/file", ""),
        ("C:\\videos\\clip.mkv", "mkv"),
        ("trailing.", ""),
    ],
)
def test_extension_of(name: str, ext: str) -> None:
    assert extension_of(name) == ext


def test_format_of_knows_aliases_and_case() -> None:
    jpeg = format_of("photo.JPEG")
    assert jpeg is not None
    assert jpeg.extension == "jpg"
    assert jpeg.mime == "image/jpeg"
    assert format_of("clip.mp4") is FORMATS["mp4"]
    assert format_of("doc.pdf") is None
    assert format_of("m4v.m4v") is None  # not in the contract's list


@pytest.mark.parametrize(
    ("head", "suggest", "family"),
    [
        (ftyp(b"isom"), "mp4", "isobmff"),
        (ftyp(b"qt  "), "mov", "isobmff"),
        (ftyp(b"M4A "), "m4a", "isobmff"),
        (struct.pack(">I4s", 8, b"wide") + b"\x00" * 32, "mov", "isobmff"),
        (WAV, "wav", "wave"),
        (AVI, "avi", "avi"),
        (WEBP, "webp", "webp"),
        (PNG, "png", "png"),
        (JPEG, "jpg", "jpeg"),
        (GIF, "gif", "gif"),
        (MKV, "mkv", "matroska"),
        (MP3_ID3, "mp3", "mpeg-audio"),
        (MP3_FRAME, "mp3", "mpeg-audio"),
        (AAC_ADTS, "aac", "adts"),
    ],
)
def test_sniff_recognises_accepted_containers(head: bytes, suggest: str, family: str) -> None:
    found = sniff(head)
    assert found is not None
    assert found.suggest == suggest
    assert family in found.families


@pytest.mark.parametrize(
    ("head", "label"),
    [
        (b"%PDF-1.7\n" + b"\x00" * 40, "PDF"),
        (b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
        (ftyp(b"heic"), "HEIC"),
        (b"fLaC" + b"\x00" * 40, "FLAC"),
        (b"RIFF\x24\x00\x00\x00CDXA" + b"\x00" * 32, "RIFF"),
        (b"<!DOCTYPE html><html><head>" + b" " * 40, "HTML"),
        (b"just some notes about the shoot, nothing else\n", "text"),
        ("日本語のメモです。".encode() * 5, "text"),
    ],
)
def test_sniff_recognises_things_that_are_not_media(head: bytes, label: str) -> None:
    found = sniff(head)
    assert found is not None
    assert label in found.label
    assert found.families == frozenset()
    assert found.suggest is None


@pytest.mark.parametrize("head", [b"", b"\x00\x01", bytes(range(256)), b"\x00" * 64])
def test_sniff_lets_unknown_bytes_through(head: bytes) -> None:
    assert sniff(head) is None


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("clip.mp4", ftyp(b"isom")),
        ("clip.mov", ftyp(b"isom")),  # the same container family: fine
        ("song.m4a", ftyp(b"M4A ")),
        ("song.mp3", MP3_ID3),
        ("song.aac", MP3_ID3),  # ID3 tags sit on AAC files too
        ("photo.jpeg", JPEG),
        ("clip.webm", MKV),
        ("clip.mp4", None),  # a stream: the extension alone decides
    ],
)
def test_check_format_accepts(name: str, head: bytes | None) -> None:
    assert check_format(name, head) is format_of(name)


def test_an_unsupported_extension_lists_the_formats() -> None:
    with pytest.raises(UnsupportedFileError) as caught:
        check_format("notes.txt", b"hello there, these are my notes")
    err = caught.value
    assert err.status is None
    assert err.supported == SUPPORTED_FORMATS
    assert "notes.txt: '.txt' files are not accepted" in err.message
    assert "mp4, mov, avi" in err.message


def test_a_misnamed_file_gets_the_name_to_use() -> None:
    with pytest.raises(UnsupportedFileError) as caught:
        check_format("IMG_0001", ftyp(b"isom"))
    message = caught.value.message
    assert "IMG_0001 has no extension" in message
    assert "looks like an MP4 video" in message
    assert "filename='IMG_0001.mp4'" in message


def test_disagreeing_extension_and_content_say_both() -> None:
    with pytest.raises(UnsupportedFileError) as caught:
        check_format("cover.mp4", PNG)
    message = caught.value.message
    assert "the name says an MP4 video" in message
    assert "looks like a PNG image" in message
    assert "filename='cover.png'" in message


def test_content_that_is_not_media_is_refused_whatever_the_name() -> None:
    with pytest.raises(UnsupportedFileError, match=r"report\.mp4: .* a PDF document, not media"):
        check_format("report.mp4", b"%PDF-1.4\n" + b"\x00" * 64)
    with pytest.raises(UnsupportedFileError, match=r"HEIC image .*convert it to JPG"):
        check_format("photo.jpg", ftyp(b"heic"))


def test_no_extension_and_unknown_content_asks_for_a_name() -> None:
    with pytest.raises(UnsupportedFileError, match=r"filename='clip\.mp4'"):
        check_format("upload", bytes(range(256)))


@pytest.mark.parametrize(
    "head",
    [b"hello\n", bytes(range(256)), b"\x00" * 64, b"just some notes about the shoot\n"],
)
def test_content_that_is_no_media_at_all_is_refused_naming_the_file(head: bytes) -> None:
    """A text file renamed .mp4 used to pass and fail only at render, far from its name."""
    with pytest.raises(UnsupportedFileError, match=r"notes\.mp4: the name says an MP4 video"):
        check_format("notes.mp4", head)
