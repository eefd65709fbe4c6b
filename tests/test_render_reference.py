"""Render jobs in every documented reply form (issue 21): the vendor's API reference [R]
(``{"success": true, "data": {...}}``, ``outputUrl``, ``createdAt``/``completedAt`` in unix
ms, a cancel endpoint, ``success: false`` refusals with HTTP 200) and SKILL.md 1.9 [V] (a
top-level ``status``, ``output.url``).

First a tiny server answering exactly the reference's example bodies, then the emulator in
both of its reply styles, all driven the way a user drives the SDK.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import nemo_sync
from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._config import ReplyStyle
from tests.render_doubles import BytesRenderBackend
from tests.scripted import ScriptedServer, envelope
from tests.test_emulator_render import GatedBackend, until

SID = "s-1"
STATE = ("GET", f"/api/state/nemo_agent/me/{SID}/latest")
SUBMIT = ("POST", "/api/render/proxy/lambda")
POLL = ("GET", "/api/render/proxy/lambda/render_xxx")
CANCEL = ("POST", "/api/render/proxy/lambda/render_xxx/cancel")
DRAFT = {"t": [{"tt": 0, "sg": [{"n": "city", "st": 0, "d": 10000}]}], "d": 10000}
VIDEO = bytes(range(256)) * 64
CLIP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(2048)

# [R]'s example bodies, word for word (only outputUrl's host is the test CDN's).
REFERENCE_SUBMITTED = {
    "success": True,
    "data": {"id": "render_xxx", "status": "pending", "progress": 5},
}


def reference_completed(cdn_host: str) -> dict[str, Any]:
    return {
        "success": True,
        "data": {
            "id": "render_xxx",
            "status": "completed",
            "progress": 100,
            "outputUrl": f"{cdn_host}/render-result/render_xxx.mp4",
            "createdAt": 1773423613616,
            "completedAt": 1773423641222,
        },
    }


def reply(body: Any, status: int = 200) -> Callable[[], web.Response]:
    return lambda: web.json_response(body, status=status)


def state() -> web.Response:
    return envelope({"state": {"draft": DRAFT}})


def sent_ids(api: ScriptedServer) -> list[str]:
    return [json.loads(s.body)["id"] for s in api.seen if (s.method, s.path) == SUBMIT]


def on_another_host(server: ScriptedServer) -> str:
    """The CDN's base URL under another host name than the API's: the token must not go."""
    return server.url.replace("127.0.0.1", "localhost")


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


# -- [R] word for word -------------------------------------------------------------------------


async def test_export_wait_and_download_with_the_reference_bodies(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    """[R]: submit answers ``data: {id, status: pending, progress: 5}``; the poll answers
    ``data: {status, progress, outputUrl, createdAt, completedAt}`` ("inside data, NOT
    top-level"); the video comes from ``outputUrl``, which gets no token."""
    api.reply(*STATE, state)
    api.reply(*SUBMIT, reply(REFERENCE_SUBMITTED))
    api.reply(*POLL, reply(reference_completed(on_another_host(cdn))))
    cdn.reply("GET", "/render-result/render_xxx.mp4", lambda: web.Response(body=VIDEO))
    async with NemoClient(base_url=api.url, token="secret", home=tmp_path / "h") as nemo:
        job = await nemo.session(SID).export()
        assert job.id == "render_xxx"  # data.id, not the id sent
        assert job.last is not None
        assert (job.last.status, job.last.progress) == ("pending", 5)
        result = await job.wait(poll_interval=0)
        path = await job.download(tmp_path / "out.mp4")
        records = await nemo.jobs()
    assert result.ok
    assert result.progress == 100
    assert result.download_url == f"{on_another_host(cdn)}/render-result/render_xxx.mp4"
    assert result.created_at == ms(1773423613616)
    assert result.completed_at == ms(1773423641222)
    assert result.created_at.tzinfo is timezone.utc
    assert path.read_bytes() == VIDEO
    [cdn_get] = cdn.seen
    assert "Authorization" not in cdn_get.headers
    assert api.seen[-1].headers["Authorization"] == "Bearer secret"  # the API host does
    assert [(r.id, r.status, r.output_path) for r in records] == [
        ("render_xxx", "completed", str(path))
    ]


@pytest.mark.parametrize(
    "answer",
    [
        reply({"success": True}),
        reply({"success": True, "data": None}),
        reply({"success": True, "data": {"id": "render_xxx", "status": "cancelled"}}),
        reply({"success": True, "data": {"id": "render_xxx", "status": "canceled"}}),
        reply({"code": 0, "message": "ok", "data": {}}),
    ],
    ids=["success-only", "null-data", "data-status", "us-spelling", "code-envelope"],
)
async def test_cancel_posts_no_body_and_wait_then_ends_as_cancelled(
    api: ScriptedServer, tmp_path: Path, answer: Callable[[], web.Response]
) -> None:
    """[R]: ``POST /api/render/proxy/lambda/{render_id}/cancel``, "No request body needed";
    the reply's form is not documented, so every envelope is read."""
    api.reply(*STATE, state)
    api.reply(*SUBMIT, reply(REFERENCE_SUBMITTED))
    api.reply(*CANCEL, answer)
    api.reply(*POLL, reply({"success": True, "data": {"id": "render_xxx", "status": "pending"}}))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        job = await nemo.session(SID).export()
        result = await job.cancel()
        assert result.cancelled
        assert result.done
        assert not result.ok
        # Cancelled is final: wait() says so at once instead of polling until its timeout.
        with pytest.raises(nemo_sync.RenderCancelledError) as caught:
            await job.wait(poll_interval=0, timeout=5)
        assert caught.value.job_id == "render_xxx"
        # So does a fresh handle on the same job (another process, say): the store knows.
        with pytest.raises(nemo_sync.RenderCancelledError):
            await nemo.render_job("render_xxx").wait(poll_interval=0, timeout=5)
        with pytest.raises(nemo_sync.RenderCancelledError):
            await nemo.render_job("render_xxx").download(tmp_path)
        records = await nemo.jobs()
        running = await nemo.jobs(include_finished=False)
    [cancel] = [s for s in api.seen if (s.method, s.path) == CANCEL]
    assert cancel.body == b""
    assert cancel.headers["Authorization"] == "Bearer t"
    assert api.count(*POLL) == 0
    assert [(r.id, r.status) for r in records] == [("render_xxx", "cancelled")]
    assert running == []
    assert not list(tmp_path.glob("*.mp4"))


async def test_a_cancel_reply_that_says_nothing_readable_is_checked_with_one_poll(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R] documents no cancel reply; an empty 200 is taken as accepted only once a poll
    says what the job is now."""
    api.reply(*CANCEL, lambda: web.Response(status=200))
    api.reply(*POLL, reply({"success": True, "data": {"id": "render_xxx", "status": "cancelled"}}))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        result = await nemo.render_job("render_xxx").cancel()
    assert result.cancelled
    assert api.count(*POLL) == 1


async def test_a_cancel_the_service_refuses_raises_its_text(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R]-style refusal (``success: false`` with HTTP 200): a job that already completed."""
    api.reply(*CANCEL, reply({"success": False, "error": "render render_xxx already completed"}))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        with pytest.raises(nemo_sync.RequestRefusedError, match="already completed"):
            await nemo.render_job("render_xxx").cancel()


async def test_a_refused_submission_is_retried_once_with_a_new_id(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """Contract v3 [R]: ``success: false`` on submit -> a new id, retry once."""
    api.reply(*STATE, state)
    api.reply(
        *SUBMIT,
        reply({"success": False, "error": "render queue is full"}),
        reply({"success": True, "data": {"status": "pending", "progress": 5}}),
    )
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        job = await nemo.session(SID).export()
        records = {r.id: r.status for r in await nemo.jobs()}
    first, second = sent_ids(api)
    assert first != second
    assert job.id == second  # the reply named no id: the one sent
    assert records == {first: "failed", second: "pending"}  # refused: it never became a job


async def test_a_second_refusal_raises_with_the_services_text(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R]: a failure is ``{"success": false, "error": ...}`` with HTTP 200; retried once."""
    api.reply(*STATE, state)
    api.reply(*SUBMIT, reply({"success": False, "error": "draft has no renderable track"}))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        with pytest.raises(nemo_sync.RequestRefusedError) as caught:
            await nemo.session(SID).export()
        records = await nemo.jobs()
    assert "draft has no renderable track" in str(caught.value)
    first, second = sent_ids(api)
    assert first != second
    assert sorted(r.status for r in records) == ["failed", "failed"]


@pytest.mark.parametrize(
    "duplicate",
    [
        reply({"success": False, "error": "duplicate id"}),
        reply({"success": False, "error": "Render ID already exists"}, status=409),
        reply({"code": 4000, "message": "duplicate render id render_1", "data": None}, 400),
        reply({"detail": "render id already used"}, status=409),
    ],
    ids=["success-false", "409-success-false", "400-envelope-text", "409-detail"],
)
async def test_a_duplicate_id_answer_is_retried_with_a_new_id(
    api: ScriptedServer, tmp_path: Path, duplicate: Callable[[], web.Response]
) -> None:
    """[R]: "If a render fails with duplicate id error, generate a new id and retry." """
    api.reply(*STATE, state)
    api.reply(*SUBMIT, duplicate, reply(REFERENCE_SUBMITTED))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        job = await nemo.session(SID).export()
    first, second = sent_ids(api)
    assert first != second
    assert job.id == "render_xxx"


async def test_another_refusal_with_an_http_error_is_not_retried(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """Only refusals a new id can cure are retried ([R]: duplicate id; contract v3: success:
    false, 5xx); a 400 about the body would only fail again."""
    api.reply(*STATE, state)
    api.reply(*SUBMIT, reply({"code": 4000, "message": "draft is not an object"}, status=400))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        with pytest.raises(nemo_sync.APIError, match="draft is not an object"):
            await nemo.session(SID).export()
    assert api.count(*SUBMIT) == 1


async def test_ids_are_never_reused_even_within_one_millisecond(
    api: ScriptedServer, tmp_path: Path
) -> None:
    """[R]: "``id`` must be unique per render": eight exports at once send eight ids."""
    api.reply(*STATE, state)
    api.reply(*SUBMIT, reply({"success": True, "data": {"status": "pending"}}))
    async with NemoClient(base_url=api.url, token="t", home=tmp_path / "h") as nemo:
        session = nemo.session(SID)
        jobs = await asyncio.gather(*(session.export() for _ in range(8)))
        records = await nemo.jobs()
    assert len(set(sent_ids(api))) == 8
    assert len({job.id for job in jobs}) == 8
    assert len(records) == 8  # none overwrote another's record


# -- [V] ---------------------------------------------------------------------------------------


async def test_the_skill_form_with_a_top_level_status_and_output_url_still_works(
    api: ScriptedServer, cdn: ScriptedServer, tmp_path: Path
) -> None:
    """[V]: the status "at top-level ``status``", the video at ``output.url``."""
    url = f"{on_another_host(cdn)}/v/out.mp4"
    api.reply(*STATE, state)
    api.reply(*SUBMIT, lambda: envelope({"render_id": "render_xxx", "status": "pending"}))
    api.reply(
        *POLL,
        reply({"id": "render_xxx", "status": "processing", "progress": 40}),
        reply({"id": "render_xxx", "status": "completed", "output": {"url": url, "size": 9}}),
    )
    cdn.reply("GET", "/v/out.mp4", lambda: web.Response(body=VIDEO))
    async with NemoClient(base_url=api.url, token="secret", home=tmp_path / "h") as nemo:
        job = await nemo.session(SID).export()
        seen: list[nemo_sync.RenderResult] = []
        result = await job.wait(poll_interval=0, on_progress=seen.append)
        path = await job.download(tmp_path)
    assert [(r.status, r.progress) for r in seen] == [("processing", 40), ("completed", None)]
    assert (result.download_url, result.size) == (url, 9)
    assert result.created_at is None  # [V] gives none
    assert path.read_bytes() == VIDEO
    assert "Authorization" not in cdn.seen[0].headers


CDN = "https://cdn.example/"
POLL_FORMS = [
    # [R]: inside data (the transport unwraps the envelope)
    ({"success": True, "data": {"status": "processing", "progress": 40}}, "processing", None, 40),
    # [V]: at the top, bare or in {code, message, data}
    ({"status": "completed", "output": {"url": CDN + "a"}}, "completed", CDN + "a", None),
    (
        {"code": 0, "data": {"status": "completed", "output": {"url": CDN + "b"}}},
        "completed",
        CDN + "b",
        None,
    ),
    # mixed: a top-level status beside outputUrl; bodies whose data holds it all
    ({"status": "completed", "outputUrl": CDN + "c"}, "completed", CDN + "c", None),
    (
        {"code": 0, "data": {"success": True, "data": {"status": "DONE", "outputUrl": CDN}}},
        "done",
        CDN,
        None,
    ),
    (
        {"data": {"status": "Completed", "output": {"url": CDN + "e"}}, "note": 1},
        "completed",
        CDN + "e",
        None,
    ),
    # the older fallback
    ({"status": "completed", "download_url": CDN + "f"}, "completed", CDN + "f", None),
    # a status this SDK does not know yet: still running
    ({"success": True, "data": {"status": "queued", "progress": 0}}, "queued", None, 0),
]


@pytest.mark.parametrize(("body", "status", "url", "progress"), POLL_FORMS)
async def test_a_poll_reads_every_documented_form(
    api: ScriptedServer,
    body: Mapping[str, Any],
    status: str,
    url: str | None,
    progress: float | None,
) -> None:
    """[R]: "status and outputUrl inside data"; [V]: "top-level ``status``", ``output.url``."""
    api.reply(*POLL, reply(body))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.render_job("render_xxx").status()
    assert (result.status, result.download_url, result.progress) == (status, url, progress)
    assert result.done == (status == "completed")


CREATED, COMPLETED = 1773423613616, 1773423641222  # [R]'s example, unix ms


@pytest.mark.parametrize(
    ("fields", "created", "completed"),
    [
        ({"createdAt": CREATED, "completedAt": COMPLETED}, CREATED, COMPLETED),
        ({"created_at": CREATED, "completed_at": COMPLETED / 1000}, CREATED, COMPLETED),
        ({"created_at": "2026-03-13T17:40:13.616Z"}, CREATED, None),
        ({"createdAt": "soon", "completedAt": True}, None, None),
    ],
    ids=["R-unix-ms", "snake-ms-and-seconds", "iso-8601", "unreadable"],
)
async def test_timestamps_are_utc_datetimes(
    api: ScriptedServer, fields: dict[str, Any], created: int | None, completed: int | None
) -> None:
    """[R]: ``createdAt``/``completedAt`` in unix ms (the emulator's [V] style sends ISO)."""
    api.reply(*POLL, reply({"success": True, "data": {"status": "completed", **fields}}))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        result = await nemo.render_job("render_xxx").status()
    assert result.created_at == (ms(created) if created else None)
    assert result.completed_at == (ms(completed) if completed else None)


@pytest.mark.parametrize(
    "body",
    [{"success": True, "data": {"progress": 5}}, {"success": True}, {"status": 7}],
    ids=["no-status", "nothing", "status-not-text"],
)
async def test_a_poll_reply_without_a_status_names_the_endpoint(
    api: ScriptedServer, body: dict[str, Any]
) -> None:
    """Neither [R]'s ``data.status`` nor [V]'s top-level one: a typed error, no KeyError."""
    api.reply(*POLL, reply(body))
    async with NemoClient(base_url=api.url, token="t") as nemo:
        with pytest.raises(nemo_sync.APIResponseError, match=r"GET /api/render/proxy/lambda/"):
            await nemo.render_job("render_xxx").status()


# -- the emulator, in both reply styles ----------------------------------------------------------


async def exported(nemo: NemoClient) -> nemo_sync.RenderJob:
    session = await nemo.create_session()
    media = await session.upload(CLIP, filename="clip.mp4")
    draft = {"t": [{"tt": 0, "sg": [{"mid": media.id, "st": 0, "d": 1000}]}], "d": 1000}
    return await session.export(draft)


@pytest.mark.parametrize("style", ["reference", "skill"])
async def test_the_emulator_exports_waits_and_downloads_in_both_styles(
    style: ReplyStyle, tmp_path: Path
) -> None:
    """The emulator answers as [R] by default and as [V] with ``reply_style="skill"``."""
    async with (
        Emulator(
            render_backend=BytesRenderBackend(VIDEO),
            render_seconds=0.05,
            cdn_host="localhost",
            reply_style=style,
        ) as emu,
        NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo,
    ):
        job = await exported(nemo)
        result = await job.wait(poll_interval=0.02)
        path = await job.download(tmp_path)
    assert result.ok
    assert result.download_url is not None
    assert result.download_url.startswith("http://localhost:")
    assert path.read_bytes() == VIDEO
    assert result.created_at is not None
    assert result.created_at.tzinfo is timezone.utc
    if style == "reference":
        assert result.completed_at is not None
        assert result.completed_at >= result.created_at
    downloads = [r for r in emu.requests if r.path.startswith("/downloads/")]
    assert downloads
    assert all("Authorization" not in r.headers for r in downloads)


@pytest.mark.parametrize("style", ["reference", "skill"])
async def test_the_emulator_cancels_a_render_mid_way_in_both_styles(
    style: ReplyStyle, tmp_path: Path
) -> None:
    """[R]: the cancel endpoint stops a running render; polls then say ``cancelled``."""
    backend = GatedBackend(VIDEO)
    async with (
        Emulator(render_backend=backend, render_seconds=0.01, reply_style=style) as emu,
        NemoClient(base_url=emu.url, home=tmp_path / "h") as nemo,
    ):
        job = await exported(nemo)
        await until(backend.started)  # the render is under way
        result = await job.cancel()
        assert result.cancelled
        assert backend.stopped.is_set()  # the render stopped before the reply came
        assert not backend.gate.is_set()
        assert (await job.status()).cancelled
        with pytest.raises(nemo_sync.RenderCancelledError):
            await job.wait(poll_interval=0.02)
        with pytest.raises(nemo_sync.RenderCancelledError):
            await job.download(tmp_path)
        assert [r.status for r in await nemo.jobs()] == ["cancelled"]
        assert emu.renders[job.id].status == "cancelled"
        # Nothing half-rendered is left behind.
        assert not [p for p in (emu.data_dir / "renders").glob("*") if p.is_file()]
        # Cancelling again changes nothing; a completed job cannot be cancelled.
        assert (await job.cancel()).cancelled
        backend.gate.set()
        other = await exported(nemo)
        assert (await other.wait(poll_interval=0.02)).ok
        with pytest.raises(nemo_sync.APIError, match="already completed"):
            await other.cancel()
        assert (await other.status()).ok
