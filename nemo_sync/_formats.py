"""What the service accepts: formats by extension, a cheap look at the first bytes, the size cap.

Sniffing reads a few hundred bytes and recognises containers by their magic numbers. It is a
second opinion, not a decoder, but every accepted format has a signature at its start: content
that matches none is refused, and content it does recognise must agree with the extension.
"""

from __future__ import annotations

import attrs

from nemo_sync._contract import FORMAT_ALIASES, SUPPORTED_FORMATS
from nemo_sync.errors import UnsupportedFileError

SNIFF_BYTES = 512
"""How much of the start of a file sniffing reads."""


@attrs.frozen
class Format:
    """One accepted format.

    Attributes:
        extension: The canonical extension, as the contract lists it (``"jpg"``).
        kind: ``"video"``, ``"audio"`` or ``"image"``.
        mime: The media type sent with the file.
        family: The container family sniffing recognises (formats of one family may
            carry each other's extension: an MP4 named ``.mov`` is fine).
        label: How messages name it ("an MP4 video").
    """

    extension: str
    kind: str
    mime: str
    family: str
    label: str


_FORMATS = (
    Format("mp4", "video", "video/mp4", "isobmff", "an MP4 video"),
    Format("mov", "video", "video/quicktime", "isobmff", "a QuickTime (MOV) video"),
    Format("avi", "video", "video/x-msvideo", "avi", "an AVI video"),
    Format("webm", "video", "video/webm", "matroska", "a WebM video"),
    Format("mkv", "video", "video/x-matroska", "matroska", "a Matroska (MKV) video"),
    Format("jpg", "image", "image/jpeg", "jpeg", "a JPEG image"),
    Format("png", "image", "image/png", "png", "a PNG image"),
    Format("gif", "image", "image/gif", "gif", "a GIF image"),
    Format("webp", "image", "image/webp", "webp", "a WebP image"),
    Format("mp3", "audio", "audio/mpeg", "mpeg-audio", "an MP3 audio file"),
    Format("wav", "audio", "audio/wav", "wave", "a WAV audio file"),
    Format("m4a", "audio", "audio/mp4", "isobmff", "an M4A audio file"),
    Format("aac", "audio", "audio/aac", "adts", "an AAC audio file"),
)
FORMATS: dict[str, Format] = {f.extension: f for f in _FORMATS}
assert tuple(FORMATS) == SUPPORTED_FORMATS, "the format table must match the contract's list"


@attrs.frozen
class Sniffed:
    """What the first bytes say a file is.

    Attributes:
        label: What it looks like, in words ("a PNG image", "a PDF document").
        families: The format families it may belong to (empty: not a format we accept).
        suggest: The extension to suggest when the name is wrong (``None``: nothing fits).
    """

    label: str
    families: frozenset[str]
    suggest: str | None = None


def extension_of(name: str) -> str:
    """The lower-case extension of a file name ('' when there is none)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


def format_of(name: str) -> Format | None:
    """The accepted format a file name's extension stands for, or ``None``."""
    ext = extension_of(name)
    return FORMATS.get(FORMAT_ALIASES.get(ext, ext))


def _media(label: str, *families: str, suggest: str) -> Sniffed:
    return Sniffed(label, frozenset(families), suggest)


def _other(label: str) -> Sniffed:
    return Sniffed(label, frozenset())


# ISO base media brands of formats the service does not take (same box structure as MP4).
_FOREIGN_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image sequence",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image sequence",
    b"crx ": "a Canon raw photo",
}
# Top-level boxes an old QuickTime file may start with instead of ``ftyp``.
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")

_SIGNATURES: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\x89PNG\r\n\x1a\n", _media("a PNG image", "png", suggest="png")),
    (b"\xff\xd8\xff", _media("a JPEG image", "jpeg", suggest="jpg")),
    (b"GIF87a", _media("a GIF image", "gif", suggest="gif")),
    (b"GIF89a", _media("a GIF image", "gif", suggest="gif")),
    (b"\x1a\x45\xdf\xa3", _media("a Matroska/WebM video", "matroska", suggest="mkv")),
    (b"ID3", _media("an MP3/AAC audio file", "mpeg-audio", "adts", suggest="mp3")),
    (b"ADIF", _media("an AAC audio file", "adts", suggest="aac")),
    (b"%PDF", _other("a PDF document")),
    (b"PK\x03\x04", _other("a ZIP archive (or an Office document)")),
    (b"\x1f\x8b", _other("a gzip archive")),
    (b"7z\xbc\xaf\x27\x1c", _other("a 7-Zip archive")),
    (b"Rar!", _other("a RAR archive")),
    (b"\x7fELF", _other("a program (ELF)")),
    (b"MZ", _other("a Windows program")),
    (b"fLaC", _other("a FLAC audio file (not supported: convert it to WAV, MP3 or M4A)")),
    (b"OggS", _other("an Ogg file (not supported: convert it to MP3, M4A or WebM)")),
    (b"II*\x00", _other("a TIFF image (not supported: convert it to PNG or JPG)")),
    (b"MM\x00*", _other("a TIFF image (not supported: convert it to PNG or JPG)")),
    (b"caff", _other("a Core Audio file (not supported: convert it to M4A or WAV)")),
)


def _sniff_riff(head: bytes) -> Sniffed:
    form = head[8:12]
    if form == b"WAVE":
        return _media("a WAV audio file", "wave", suggest="wav")
    if form == b"AVI ":
        return _media("an AVI video", "avi", suggest="avi")
    if form == b"WEBP":
        return _media("a WebP image", "webp", suggest="webp")
    return _other(f"a RIFF file of type {form.decode('latin-1')!r}")


def _sniff_isobmff(head: bytes) -> Sniffed | None:
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in _FOREIGN_BRANDS:
            return _other(_FOREIGN_BRANDS[brand] + " (not supported: convert it to JPG or PNG)")
        if brand == b"qt  ":
            return _media("a QuickTime (MOV) video", "isobmff", suggest="mov")
        if brand in (b"M4A ", b"M4B "):
            return _media("an M4A audio file", "isobmff", suggest="m4a")
        return _media("an MP4 video", "isobmff", suggest="mp4")
    if box in _QUICKTIME_BOXES:
        return _media("a QuickTime (MOV) video", "isobmff", suggest="mov")
    return None


def _sniff_frame_sync(head: bytes) -> Sniffed | None:
    """Raw MPEG audio: an MP3 frame or an AAC ADTS frame (they share the sync word)."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x03
    if layer == 0 and head[1] & 0xF0 == 0xF0:
        return _media("an AAC audio file", "adts", suggest="aac")
    if layer != 0:
        return _media("an MP3 audio file", "mpeg-audio", suggest="mp3")
    return None


def _looks_like_text(head: bytes) -> bool:
    """Whether the bytes read as text (media containers are binary from their first bytes)."""
    if len(head) < 16 or b"\x00" in head:
        return False
    # A multi-byte character may be cut at the end of the sample.
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\t\n\r\f" for c in text)
    return False


def sniff(head: bytes) -> Sniffed | None:
    """What the first bytes of a file say it is, or ``None`` when they are not recognised.

    Args:
        head: The file's first bytes (``SNIFF_BYTES`` of them is plenty; fewer is fine).
    """
    if head.startswith(b"RIFF") and len(head) >= 12:
        return _sniff_riff(head)
    if len(head) >= 12:
        found = _sniff_isobmff(head)
        if found is not None:
            return found
    for magic, sniffed in _SIGNATURES:
        if head.startswith(magic):
            return sniffed
    found = _sniff_frame_sync(head)
    if found is not None:
        return found
    stripped = head.lstrip()
    if stripped[:1] == b"<" and b"html" in stripped[:64].lower():
        return _other("an HTML page")
    if _looks_like_text(head):
        return _other("text")
    return None


def _supported_list() -> str:
    return ", ".join(SUPPORTED_FORMATS)


def _unsupported(message: str) -> UnsupportedFileError:
    return UnsupportedFileError(message, supported=SUPPORTED_FORMATS)


def _renamed(name: str, extension: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if extension_of(base) else base
    return f"{stem}.{extension}"


def check_format(name: str, head: bytes | None) -> Format:
    """The format of a file to upload, from its name and (when given) its first bytes.

    Args:
        name: The file name the upload will carry.
        head: The file's first bytes, or ``None`` when they cannot be read ahead (streams).

    Returns:
        The accepted format the name stands for.

    Raises:
        UnsupportedFileError: when the extension is not an accepted one, or the content is
            recognisably something else than the extension says. The message says which
            formats are accepted and what the content looks like.
    """
    fmt = format_of(name)
    sniffed = sniff(head) if head else None
    if fmt is None:
        ext = extension_of(name)
        what = f"{name}: '.{ext}' files are not accepted" if ext else f"{name} has no extension"
        hint = f" Supported formats: {_supported_list()}."
        if sniffed is not None and sniffed.suggest is not None:
            hint += (
                f" Its content looks like {sniffed.label}: if it is one, upload it as "
                f"filename={_renamed(name, sniffed.suggest)!r}."
            )
        elif sniffed is not None:
            hint += f" Its content looks like {sniffed.label}."
        elif not ext:
            hint += " Name the file with its format's extension (filename='clip.mp4')."
        raise _unsupported(what + "." + hint)
    if head is not None and sniffed is None:
        # Every accepted format announces itself in its first bytes; content that matches
        # none of them (a short text, random bytes) would only fail later, at render time,
        # far from the file the user named.
        raise _unsupported(
            f"{name}: the name says {fmt.label}, but its first bytes are not those of "
            f"{fmt.label} (nor of any format the service takes). Check that this is the file "
            f"you meant. Supported formats: {_supported_list()}."
        )
    if sniffed is None or fmt.family in sniffed.families:
        return fmt
    if sniffed.suggest is not None:
        raise _unsupported(
            f"{name}: the name says {fmt.label}, but the content looks like {sniffed.label}. "
            f"Rename it (or upload it with filename={_renamed(name, sniffed.suggest)!r}) so "
            "the service reads it right."
        )
    raise _unsupported(
        f"{name}: the name says {fmt.label}, but the content looks like {sniffed.label}, "
        f"not media. Check that this is the file you meant. Supported formats: "
        f"{_supported_list()}."
    )
