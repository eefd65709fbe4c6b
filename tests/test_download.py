"""Downloads against hostile servers: wrong ranges, redirects to the API host, a dripping CDN.

Each server here sends exact bytes (tests/scripted.py); every case ends in a complete, correct
file or a typed error with nothing left at the destination.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from tests.scripted import ScriptedServer

VIDEO = bytes(range(256)) * 400  # 102,400 bytes
POLL = ("GET", "/api/render/proxy/lambda/r1")


def completed(url: str) -> Any:
    return lambda: web.json_response({"status": "completed", "output": {"url": url}})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in ("nemo-home", "xdg-config"))


def cut_after(data: bytes, n: int, *, resumable: bool = True) -> Any:
    """Send the first ``n`` bytes with the full length announced, then drop the connection."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Length": str(len(data)), "Content-Type": "video/mp4"}
        if resumable:
            headers["Accept-Ranges"] = "bytes"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        await response.write(data[:n])
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


def partial(body: bytes, content_range: str, total: int) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=206,
            body=body,
            headers={
                "Content-Range": content_range,
                "Content-Type": "video/mp4",
                "Accept-Ranges": "bytes",
            },
        )

    return handler


def whole(data: bytes) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, headers={"Content-Type": "video/mp4"})

    return handler


async def download_from_cdn(
    api: ScriptedServer, cdn: ScriptedServer, to: Path, *handlers: Any, **options: Any
) -> Path:
    """Download render r1, whose video the CDN serves with ``handlers`` in turn."""
    api.reply(*POLL, completed(f"{cdn.url}/v.mp4"))
    cdn.on("GET", "/v.mp4", *handlers)
    async with NemoClient(base_url=api.url, token="t") as nemo:
        return await nemo.render_job("r1").download(to, **options)


async def test_a_206_that_does_not_start_at_the_offset_starts_over(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    """Row 13: a resume answered with the wrong Content-Range must not splice wrong bytes."""
    path = await download_from_cdn(
        api,
        cdn,
        tmp_path / "out.mp4",
        cut_after(VIDEO, 1000),
        # Asked for bytes=1000-, it sends bytes 0-... labelled as such: not a continuation.
        partial(VIDEO, f"bytes 0-{len(VIDEO) - 1}/{len(VIDEO)}", len(VIDEO)),
        whole(VIDEO),
    )
    assert path.read_bytes() == VIDEO
    assert cdn.seen[1].headers["Range"] == "bytes=1000-"
    assert "Range" not in cdn.seen[2].headers  # started over from byte 0


async def test_a_206_that_disagrees_on_the_total_starts_over(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    other_total = len(VIDEO) + 10
    path = await download_from_cdn(
        api,
        cdn,
        tmp_path / "out.mp4",
        cut_after(VIDEO, 1000),
        partial(VIDEO[1000:], f"bytes 1000-{len(VIDEO) - 1}/{other_total}", other_total),
        whole(VIDEO),
    )
    assert path.read_bytes() == VIDEO


async def test_a_correct_206_resumes_where_it_stopped(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    path = await download_from_cdn(
        api,
        cdn,
        tmp_path / "out.mp4",
        cut_after(VIDEO, 1000),
        partial(VIDEO[1000:], f"bytes 1000-{len(VIDEO) - 1}/{len(VIDEO)}", len(VIDEO)),
    )
    assert path.read_bytes() == VIDEO
    assert cdn.count("GET", "/v.mp4") == 2


async def test_ranges_that_never_agree_end_in_an_error_and_no_file(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    with pytest.raises(nemo_sync.DownloadError):
        await download_from_cdn(
            api,
            cdn,
            tmp_path / "out.mp4",
            cut_after(VIDEO, 1000),
            partial(VIDEO, "bytes 0-9/99999999", 99999999),
            cut_after(VIDEO, 1000),
            partial(VIDEO, "bytes 0-9/99999999", 99999999),
        )
    assert leftovers(tmp_path) == []


async def test_a_cdn_redirect_to_the_api_host_gets_no_token_and_json_is_not_a_video(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    """Row 14: the token never follows a redirect that started at another host."""
    api.reply(*POLL, completed(f"{cdn.url}/v.mp4"))
    cdn.reply(
        "GET",
        "/v.mp4",
        lambda: web.Response(
            status=302, headers={"Location": f"{api.url}/api/credits/balance/simple"}
        ),
    )
    api.reply(
        "GET",
        "/api/credits/balance/simple",
        lambda: web.json_response({"code": 0, "data": {"available": 1}}),
    )
    async with NemoClient(base_url=api.url, token="secret") as nemo:
        with pytest.raises(nemo_sync.DownloadError, match="application/json, not a video"):
            await nemo.render_job("r1").download(tmp_path / "out.mp4")
    hop = next(s for s in api.seen if s.path == "/api/credits/balance/simple")
    assert "Authorization" not in hop.headers
    assert leftovers(tmp_path) == []


def trickle(*, chunk: int, pause: float) -> Any:
    """A CDN that sends the video ``chunk`` bytes at a time, ``pause`` seconds apart."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Length": str(len(VIDEO)), "Content-Type": "video/mp4"}
        )
        await response.prepare(request)
        for i in range(0, len(VIDEO), chunk):
            await response.write(VIDEO[i : i + chunk])
            await asyncio.sleep(pause)
        return response

    return handler


async def test_a_dripping_cdn_is_a_stall(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    """Row 8: one byte every 0.2 s never trips a per-read timeout; the rate guard does."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(nemo_sync.DownloadError, match="stalled"):
        await download_from_cdn(
            api, cdn, tmp_path / "out.mp4", trickle(chunk=1, pause=0.2), stall_timeout=1.0
        )
    assert loop.time() - started < 10
    assert leftovers(tmp_path) == []


async def test_a_download_deadline_holds(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    with pytest.raises(nemo_sync.DownloadError, match=r"did not finish in 0\.5 s"):
        await download_from_cdn(
            api, cdn, tmp_path / "out.mp4", trickle(chunk=1024, pause=0.05), timeout=0.5
        )
    assert leftovers(tmp_path) == []


async def test_a_body_longer_than_announced_is_refused(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    with pytest.raises(nemo_sync.DownloadError, match="more than the 100 bytes"):
        await download_from_cdn(
            api, cdn, tmp_path / "out.mp4", partial(VIDEO, f"bytes 0-99/{100}", 100)
        )
    assert leftovers(tmp_path) == []
