"""Downloads that never leave half a file and never hand the token to another host."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

import aiohttp
from yarl import URL

from nemo_sync._transport import Transport
from nemo_sync.errors import APIConnectionError, APIResponseError, DownloadError

ProgressCallback = Callable[[int, "int | None"], object]
CHUNK = 256 * 1024
MAX_RESUMES = 3
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
# The stall guard: at least this much must arrive in every window of stall_timeout seconds.
STALL_WINDOW = 60.0
STALL_MIN_BYTES = 64 * 1024


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it back
    os.umask(mask)
    return mask


def safe_file_name(text: str, default: str, *, limit: int = 120) -> str:
    """A file name from text off the network: ASCII letters, digits and ``._-`` only.

    Any other run of characters becomes ``_`` (so no separator, no ``..``, nothing a terminal
    would act on); leading and trailing dots and underscores go. ``default`` when nothing is
    left.
    """
    name = _SAFE.sub("_", text).strip("._")
    return name[:limit] if name else default


def safe_name(url: URL, default: str) -> str:
    """A file name from the URL's last path segment (see :func:`safe_file_name`)."""
    name = unquote(url.path.rsplit("/", 1)[-1])
    return safe_file_name(name.replace("\\", "/").rsplit("/", 1)[-1], default)


_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``(first, last, total)`` of a ``Content-Range`` header, or None when unreadable."""
    found = _RANGE.fullmatch(value.strip()) if value else None
    if not found:
        return None
    first, last, total = found.groups()
    return int(first), int(last), None if total == "*" else int(total)


class _StallGuard:
    """Fails a download that moves less than ``min_bytes`` in any ``window`` seconds.

    A per-read timeout cannot catch a server that drips a byte every few seconds; a rate over
    a window can, without punishing a slow but honest link.
    """

    def __init__(self, window: float, min_bytes: int) -> None:
        self.window = window
        self.min_bytes = min_bytes
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._bytes = 0

    def add(self, size: int) -> None:
        self._bytes += size
        now = self._loop.time()
        if now - self._start < self.window:
            return
        if self._bytes < self.min_bytes:
            raise DownloadError(
                f"the download stalled: {self._bytes} bytes in {now - self._start:.0f} s "
                f"(less than {self.min_bytes} per {self.window:.0f} s)"
            )
        self._start, self._bytes = now, 0


async def download(
    transport: Transport,
    url: str,
    dest: Path,
    *,
    default_name: str,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
    stall_timeout: float = STALL_WINDOW,
) -> Path:
    """Stream ``url`` to ``dest`` (a file, or a folder to put it in). Returns the path.

    The bytes go to a temporary file beside the target, which is renamed into place only
    when complete; a dropped connection resumes with Range when the server allows it, and a
    resumed part must start where asked and agree on the total, else the download starts over.

    Args:
        transport: The client's transport (its pool, base URL and auth).
        url: An absolute URL, or a path on the API host.
        dest: A file, or a folder to put it in.
        default_name: The file name when ``dest`` is a folder and the URL has none.
        on_progress: Called as ``on_progress(bytes_so_far, total_or_None)``.
        timeout: The whole download's deadline in seconds (None: none).
        stall_timeout: Fail when less than 64 KB arrive in this many seconds.

    Raises:
        DownloadError: on a refused, stalled, late or incomplete download (no file is left at
            ``dest``).
    """
    target_url = transport.base_url.join(URL(url))
    dest = Path(dest).expanduser()
    target = dest / safe_name(target_url, default_name) if dest.is_dir() else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    shown = target_url.with_query(None)  # signed query strings stay out of messages
    try:
        with os.fdopen(fd, "wb") as out:
            fetch = _fetch(
                transport, target_url, out, shown, on_progress, stall_timeout=stall_timeout
            )
            if timeout is None:
                await fetch
            else:
                try:
                    await asyncio.wait_for(fetch, timeout)
                except asyncio.TimeoutError:
                    raise DownloadError(
                        f"the download of {shown} did not finish in {timeout:g} s"
                    ) from None
            out.flush()
            # mkstemp made it 0600 while it filled; the finished video is an ordinary file.
            if os.chmod in os.supports_fd:
                os.chmod(out.fileno(), 0o666 & ~_umask())
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def _restart(out: BinaryIO) -> None:
    out.seek(0)
    out.truncate()


async def _fetch(
    transport: Transport,
    url: URL,
    out: BinaryIO,
    shown: URL,
    on_progress: ProgressCallback | None,
    *,
    stall_timeout: float,
) -> None:
    received = 0
    total: int | None = None
    resumes = 0
    read_timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=30.0, sock_read=max(stall_timeout, 1.0)
    )
    while True:
        try:
            # The transport's attempt loop: auth and redirect rules, connection retries.
            response = await transport.open_download(url, offset=received, timeout=read_timeout)
        except (APIConnectionError, APIResponseError) as exc:
            raise DownloadError(f"could not download {shown}: {exc}") from exc
        try:
            if response.status not in (200, 206):
                raise DownloadError(
                    f"download of {shown} refused: HTTP {response.status}", status=response.status
                )
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind in ("application/json", "text/html"):
                # An error page or an API envelope, not a video: never save it as one.
                raise DownloadError(
                    f"download of {shown} answered {kind}, not a video", status=response.status
                )
            if response.status == 206:
                span = _content_range(response.headers.get("Content-Range"))
                if (
                    span is None
                    or span[0] != received
                    or (total is not None and span[2] is not None and span[2] != total)
                ):
                    # A part that does not continue what we have: start over from byte 0.
                    response.release()
                    _restart(out)
                    received, total = 0, None
                    if resumes >= MAX_RESUMES:
                        raise DownloadError(f"download of {shown}: the server's ranges disagree")
                    resumes += 1
                    continue
                if span[2] is not None:
                    total = span[2]
                elif total is None and response.content_length is not None:
                    total = received + response.content_length
            else:
                if received:
                    _restart(out)  # the server ignored Range: start over
                    received = 0
                total = response.content_length
            resumable = response.headers.get("Accept-Ranges", "").lower() == "bytes"
            guard = _StallGuard(stall_timeout, STALL_MIN_BYTES)
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    if total is not None and received + len(chunk) > total:
                        raise DownloadError(
                            f"download of {shown} sent more than the {total} bytes it announced"
                        )
                    out.write(chunk)
                    received += len(chunk)
                    guard.add(len(chunk))
                    if on_progress is not None:
                        on_progress(received, total)
            except (
                aiohttp.ClientPayloadError,
                aiohttp.ClientConnectionError,
                asyncio.TimeoutError,
            ) as exc:
                if resumes >= MAX_RESUMES:
                    raise DownloadError(
                        f"download of {shown} kept dropping ({received} bytes in)"
                    ) from exc
                resumes += 1
                if not resumable:
                    _restart(out)
                    received = 0
                continue
        finally:
            response.release()
        if total is not None and received != total:
            if resumes < MAX_RESUMES and received < total:
                resumes += 1
                continue
            raise DownloadError(f"download of {shown} is incomplete: {received} of {total} bytes")
        return
