"""The export routes: submit, poll, the CDN download and the API's download fallback [V][T].

Export is free [V]: nothing here looks at credits.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nemo_sync._contract import (
    EXPORT_OUTPUT,
    RENDER_COMPLETED,
    RENDER_PATH,
)
from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._api_errors import ApiError
from nemo_sync.emulator._fastapi import Field, literal, read_json_body, refuse, validate
from nemo_sync.emulator._files import serve_file
from nemo_sync.emulator._middleware import FAULT
from nemo_sync.emulator._route_kit import attribution_problem, envelope, iso
from nemo_sync.emulator._state import Account, RenderRecord, State

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

logger = logging.getLogger("nemo_sync.emulator")

# The export body [V][T]: ``{"id", "sessionId", "draft", "output"}``; extra keys are ignored,
# as a pydantic model does, so a v1 body fails on the missing ``id`` and ``sessionId``.
EXPORT_FIELDS = (
    Field("id", "str"),
    Field("sessionId", "str"),
    Field("draft", "dict"),
    Field("output", "dict", required=False),
)


class RenderRoutes:
    """The export routes of one emulator.

    Args:
        emu: The emulator (state, config, renderer, URLs).
        account: Authenticates a request (the server's own check, strict mode included).
    """

    def __init__(self, emu: Emulator, account: Callable[[web.Request], Account]) -> None:
        self.emu = emu
        self._account = account

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes (the poll route before the fallback: ``lambda/download`` polls)."""
        router.add_post(RENDER_PATH, self.submit)
        router.add_get(RENDER_PATH + "/{render_id}", self.status)
        router.add_get("/api/render/proxy/{render_id}/download", self.download_fallback)
        router.add_get("/downloads/{name}", self.cdn_download)

    @property
    def _state(self) -> State:
        return self.emu.state

    async def submit(self, request: web.Request) -> web.Response:
        """``POST /api/render/proxy/lambda``: accept a render job."""
        emu = self.emu
        account = self._account(request)
        problem = attribution_problem(request)
        if problem:
            raise ApiError(402, f"export blocked: {problem}", status=402)
        if emu.config.export_requires_plan and not account.registered:
            raise ApiError(
                402, "export is not available on the free plan: register or upgrade", status=402
            )
        body = validate(await read_json_body(request), EXPORT_FIELDS)
        _check_output(body.get("output"))
        if not body["id"]:
            raise refuse(
                [
                    {
                        "type": "string_too_short",
                        "loc": ["body", "id"],
                        "msg": "String should have at least 1 character",
                        "input": "",
                        "ctx": {"min_length": 1},
                    }
                ]
            )
        session = self._state.session_for(account, body["sessionId"])
        draft: dict[str, Any] = json.loads(json.dumps(body["draft"]))  # the job's snapshot
        width, height = d.canvas(draft)
        fault = request.get(FAULT)
        job = RenderRecord(
            id=body["id"],
            session_id=session.id,
            account=account,
            draft=draft,
            width=width,
            height=height,
            duration_ms=d.recompute_duration(draft) if d.tracks(draft) else 0,
            fail_with=fault.render_fail if fault is not None else None,
            created_at=emu.clock.now(),
        )
        job.worker, job.heartbeat_at = emu.worker_id, time.time()
        async with emu.transaction() as changes:
            self._state.add_render(job)  # 409 for an id this account already used
            changes.mark(job)
        emu.renderer.start(job, session)
        return envelope({"render_id": job.id, "status": job.status})

    def cdn_link(self, job: RenderRecord) -> str:
        """Where the finished video is: the "CDN", no token wanted."""
        return f"{self.emu.cdn_url}/downloads/{job.file_id}.mp4?sig={job.sig}"

    def status_body(self, job: RenderRecord, *, omit_url: bool = False) -> dict[str, Any]:
        """The poll reply [V][T]: top-level ``status``, ``output`` when completed."""
        body: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "progress": job.progress,
            "width": job.width,
            "height": job.height,
            "created_at": iso(job.created_at),
        }
        if job.status == RENDER_COMPLETED and job.output is not None:
            output: dict[str, Any] = {
                "url": self.cdn_link(job),
                "duration": job.duration_ms / 1000,
                "size": job.output.stat().st_size,
            }
            if omit_url:
                del output["url"]
            body["output"] = output
        if job.error is not None:
            body["error"] = job.error
        return body

    async def status(self, request: web.Request) -> web.Response:
        """``GET /api/render/proxy/lambda/<id>``: bare by default, as [V] describes it."""
        account = self._account(request)
        job = self._state.render_for(account, request.match_info["render_id"])
        await self._resume_if_orphan(job)
        fault = request.get(FAULT)
        body = self.status_body(job, omit_url=bool(fault and fault.omit_output_url))
        if self.emu.config.render_status_enveloped:
            return envelope(body)
        return web.json_response(body)

    async def _resume_if_orphan(self, job: RenderRecord) -> None:
        """Render again, from its stored draft, a job that a stopped process left unfinished
        (renders are reproducible: same draft, same media, same video)."""
        emu = self.emu
        if not emu.render_is_orphan(job):
            return
        async with emu.transaction() as changes:
            # Looked at again under the store's write lock: of two processes polling an
            # orphan at once, only the first takes it.
            if not emu.render_is_orphan(job):
                return
            job.worker, job.heartbeat_at = emu.worker_id, time.time()
            changes.mark(job)
        logger.info("render %s was left unfinished by a stopped emulator: rendering it", job.id)
        emu.renderer.start(job, self._state.sessions.get(job.session_id))

    async def download_fallback(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/render/proxy/<id>/download``: the same bytes on the API host, with the
        token [V] (for when ``output.url`` is missing or fails)."""
        account = self._account(request)
        job = self._state.render_for(account, request.match_info["render_id"])
        if job.status != RENDER_COMPLETED or job.output is None or not job.output.is_file():
            raise ApiError(4004, f"render {job.id} has no video (status: {job.status})")
        return await self._serve(request, job)

    async def cdn_download(self, request: web.Request) -> web.StreamResponse:
        """``GET /downloads/<file>.mp4?sig=...``: the CDN; no token wanted."""
        name = request.match_info["name"]
        job = self._state.renders_by_file.get(name.removesuffix(".mp4"))
        if job is None or not name.endswith(".mp4"):
            return web.Response(status=404, text="no such file")
        if not secrets.compare_digest(request.query.get("sig", ""), job.sig):
            return web.Response(status=403, text="signature does not match")
        if job.status != RENDER_COMPLETED or job.output is None or not job.output.is_file():
            return web.Response(status=404, text="not rendered (yet)")
        return await self._serve(request, job)

    async def _serve(self, request: web.Request, job: RenderRecord) -> web.StreamResponse:
        assert job.output is not None
        fault = request.get(FAULT)
        return await serve_file(
            request, job.output, content_type="video/mp4", drop=bool(fault and fault.drop)
        )


def _check_output(output: Any) -> None:
    """``output.format`` must be mp4 when given (the only format the vendor's clients send)."""
    if not isinstance(output, dict) or "format" not in output:
        return
    allowed = (EXPORT_OUTPUT["format"],)
    if output["format"] not in allowed:
        raise refuse([literal(["body", "output", "format"], allowed, output["format"])])
