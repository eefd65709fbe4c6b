"""The export routes: submit, poll, cancel, the CDN download and the API's download fallback.

Replies take the API reference's shapes [R] by default (``{"success": true, "data": ...}``,
``outputUrl``, ``createdAt``/``completedAt`` in unix ms, refusals as ``{"success": false,
"error": ...}``), or SKILL.md 1.9's [V] with ``reply_style="skill"`` (a bare status with
``output.url``, errors in the ``{code, message, data}`` envelope).

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
    RENDER_CANCELLED,
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

# The export body [V][R]: ``{"id", "sessionId", "draft", "output"}``; extra keys are ignored,
# as a pydantic model does, so a v1 body fails on the missing ``id`` and ``sessionId``.
EXPORT_FIELDS = (
    Field("id", "str"),
    Field("sessionId", "str"),
    Field("draft", "dict"),
    Field("output", "dict", required=False),
)


class RenderRefusal(ApiError):
    """[R]'s refusal: ``{"success": false, "error": "<text>"}``, with HTTP 200 for a request
    the render service refuses ("fails with duplicate id error") and 404 for an unknown job."""

    def __init__(self, message: str, *, status: int = 200) -> None:
        super().__init__(status, message, status=status)

    def envelope(self) -> dict[str, Any]:
        """The JSON body ([R]'s shape, whatever this class's parent calls it)."""
        return {"success": False, "error": self.message}


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
        router.add_post(RENDER_PATH + "/{render_id}/cancel", self.cancel)
        router.add_get("/api/render/proxy/{render_id}/download", self.download_fallback)
        router.add_get("/downloads/{name}", self.cdn_download)

    @property
    def _state(self) -> State:
        return self.emu.state

    @property
    def _reference(self) -> bool:
        return self.emu.config.reference_replies

    def _refused(self, exc: ApiError, *, reference_status: int = 200) -> ApiError:
        """A refusal of the render service itself, in the reply style: [R]'s ``success:
        false`` (HTTP ``reference_status``), else the envelope as raised [V]. Refusals in
        front of it (auth, attribution, a body of the wrong shape) keep their own form."""
        if self._reference:
            return RenderRefusal(exc.message, status=reference_status)
        return exc

    def _job(self, account: Account, render_id: str) -> RenderRecord:
        """The account's job; an unknown one is a 404 in either style."""
        try:
            return self._state.render_for(account, render_id)
        except ApiError as exc:
            raise self._refused(exc, reference_status=exc.status) from None

    def _reply(self, data: dict[str, Any]) -> web.Response:
        """A successful render reply: [R] ``{"success": true, "data"}``, else [V] bare (or
        in the ``{code, message, data}`` envelope with ``render_status_enveloped``)."""
        if self._reference:
            return web.json_response({"success": True, "data": data})
        if self.emu.config.render_status_enveloped:
            return envelope(data)
        return web.json_response(data)

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
        try:
            async with emu.transaction() as changes:
                self._state.add_render(job)  # an id this account already used is refused
                changes.mark(job)
        except ApiError as exc:
            raise self._refused(exc) from None
        emu.renderer.start(job, session)
        if self._reference:
            # [R]: {"success": true, "data": {"id", "status": "pending", "progress"}}
            return self._reply({"id": job.id, "status": job.status, "progress": job.progress})
        return envelope({"render_id": job.id, "status": job.status})

    def cdn_link(self, job: RenderRecord) -> str:
        """Where the finished video is: the "CDN", no token wanted."""
        return f"{self.emu.cdn_url}/downloads/{job.file_id}.mp4?sig={job.sig}"

    def status_body(self, job: RenderRecord, *, omit_url: bool = False) -> dict[str, Any]:
        """The poll reply's object in the reply style (see :meth:`reference_status`)."""
        if self._reference:
            return self.reference_status(job, omit_url=omit_url)
        return self.skill_status(job, omit_url=omit_url)

    def reference_status(self, job: RenderRecord, *, omit_url: bool = False) -> dict[str, Any]:
        """[R]'s poll ``data``: ``{id, status, progress, outputUrl, createdAt, completedAt}``,
        times in unix ms, ``outputUrl`` once completed, ``error`` once failed."""
        body: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "progress": job.progress,
            "createdAt": _unix_ms(job.created_at),
        }
        if job.status == RENDER_COMPLETED and job.output is not None and not omit_url:
            body["outputUrl"] = self.cdn_link(job)
        if job.done and job.completed_at is not None:
            body["completedAt"] = _unix_ms(job.completed_at)
        if job.error is not None:
            body["error"] = job.error
        return body

    def skill_status(self, job: RenderRecord, *, omit_url: bool = False) -> dict[str, Any]:
        """[V]'s poll reply: top-level ``status``, ``output`` when completed."""
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
        """``GET /api/render/proxy/lambda/<id>``: [R]'s ``data`` object, or [V]'s bare one."""
        account = self._account(request)
        job = self._job(account, request.match_info["render_id"])
        await self._resume_if_orphan(job)
        fault = request.get(FAULT)
        return self._reply(self.status_body(job, omit_url=bool(fault and fault.omit_output_url)))

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST /api/render/proxy/lambda/<id>/cancel``, no body [R]: stop a pending or
        processing render (its task here is stopped and its partial files removed; a render
        in another process stops at its next heartbeat) and answer with its status, as a
        poll would. Cancelling a cancelled job answers the same again; a completed or
        failed one is refused (the emulator's choice: [R] says only "cancel a pending render
        job"); an unknown id gets the poll's not-found."""
        emu = self.emu
        account = self._account(request)
        render_id = request.match_info["render_id"]
        self._job(account, render_id)  # not found: refused before the transaction
        async with emu.transaction() as changes:
            # Looked at again under the store's write lock: another process may have just
            # finished the job, or cancelled it.
            job = self._state.renders_owned.get((account.id, render_id))
            if job is not None and not job.done:
                job.cancel(emu.clock.now())
                changes.mark(job)
        job = self._job(account, render_id)
        if job.status != RENDER_CANCELLED:
            message = (
                f"render {job.id} is already {job.status}: "
                "only a pending or processing render can be cancelled"
            )
            raise self._refused(ApiError(409, message, status=409))
        await emu.renderer.stopped(job)
        return self._reply(self.status_body(job))

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
        job = self._job(account, request.match_info["render_id"])
        if job.status != RENDER_COMPLETED or job.output is None or not job.output.is_file():
            missing = ApiError(4004, f"render {job.id} has no video (status: {job.status})")
            raise self._refused(missing, reference_status=missing.status)
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


def _unix_ms(timestamp: float) -> int:
    """A time as [R] gives it: integer milliseconds since the epoch."""
    return int(timestamp * 1000)


def _check_output(output: Any) -> None:
    """``output.format`` must be mp4 when given (the only format the vendor's clients send)."""
    if not isinstance(output, dict) or "format" not in output:
        return
    allowed = (EXPORT_OUTPUT["format"],)
    if output["format"] not in allowed:
        raise refuse([literal(["body", "output", "format"], allowed, output["format"])])
