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

from nemo_sync._transport import USER_AGENT, Transport
from nemo_sync.errors import DownloadError

ProgressCallback = Callable[[int, "int | None"], object]
CHUNK = 256 * 1024
MAX_REDIRECTS = 5
MAX_RESUMES = 3
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=120.0)


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


def safe_name(url: URL, default: str) -> str:
    """A file name from the URL's last path segment: no separators, no ``..``, safe chars."""
    name = unquote(url.path.rsplit("/", 1)[-1])
    name = _SAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    return name[:120] if name else default


async def _headers(transport: Transport, url: URL, offset: int) -> dict[str, str]:
    """Auth only for the API's own origin: download URLs usually live on a CDN."""
    headers = {"User-Agent": USER_AGENT}
    if transport.is_api_host(url):
        headers.update(transport.base_headers())
        if transport.auth is not None:
            headers["Authorization"] = f"Bearer {await transport.auth.token()}"
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return headers


async def _open(transport: Transport, url: URL, offset: int) -> aiohttp.ClientResponse:
    """GET, following redirects by hand so each hop decides again whether auth goes."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await transport.http.get(
            url,
            headers=await _headers(transport, url, offset),
            allow_redirects=False,
            timeout=_TIMEOUT,
        )
        if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
            response.release()
            url = url.join(URL(response.headers["Location"]))
            continue
        return response
    raise DownloadError(f"too many redirects downloading {url.with_query(None)}")


async def download(
    transport: Transport,
    url: str,
    dest: Path,
    *,
    default_name: str,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Stream ``url`` to ``dest`` (a file, or a folder to put it in). Returns the path.

    The bytes go to a temporary file beside the target, which is renamed into place only
    when complete; a dropped connection resumes with Range when the server allows it.

    Raises:
        DownloadError: on a refused or incomplete download (no file is left at ``dest``).
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
            await _fetch(transport, target_url, out, shown, on_progress)
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


async def _fetch(
    transport: Transport,
    url: URL,
    out: BinaryIO,
    shown: URL,
    on_progress: ProgressCallback | None,
) -> None:
    received = 0
    total: int | None = None
    resumes = 0
    while True:
        try:
            response = await _open(transport, url, received)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if resumes >= MAX_RESUMES:
                raise DownloadError(f"could not download {shown}: {type(exc).__name__}") from exc
            resumes += 1
            continue
        try:
            if received and response.status == 200:
                # The server ignored Range: start over.
                out.seek(0)
                out.truncate()
                received = 0
            elif response.status not in (200, 206):
                raise DownloadError(
                    f"download of {shown} refused: HTTP {response.status}", status=response.status
                )
            if response.status == 200:
                total = response.content_length
            elif total is None and response.content_length is not None:
                total = received + response.content_length
            resumable = response.headers.get("Accept-Ranges", "").lower() == "bytes"
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
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
                    out.seek(0)
                    out.truncate()
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
