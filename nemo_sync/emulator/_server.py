"""The HTTP surface: routes, the envelope, auth, attribution, faults and the request log."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nemo_sync.emulator._chat import run_turn
from nemo_sync.emulator._errors import ApiError, bad_request
from nemo_sync.emulator._files import serve_file
from nemo_sync.emulator._middleware import FAULT, plumbing, stamp_request_id
from nemo_sync.emulator._render import RESOLUTIONS, output_size
from nemo_sync.emulator._state import Account, MediaRecord, RenderRecord, SessionRecord
from nemo_sync.emulator._upload import discard, read_json, read_multipart, to_record

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

SKILL_SOURCE = "music-cog-online"
PLATFORMS = ("clawhub", "cursor", "unknown")
ASPECTS = ("9:16", "16:9", "1:1")
APP_NAME = "nemo_agent"


def envelope(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A successful JSON reply."""
    return web.json_response(
        {"code": 0, "message": "ok", "data": data}, status=status, headers=headers
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def attribution_problem(request: web.Request) -> str | None:
    """What is wrong with the three ``X-Skill-*`` headers, if anything."""
    headers = request.headers
    for name in ("X-Skill-Source", "X-Skill-Version", "X-Skill-Platform"):
        if not headers.get(name, "").strip():
            return f"missing attribution header {name}"
    if headers["X-Skill-Source"] != SKILL_SOURCE:
        return f"X-Skill-Source must be {SKILL_SOURCE!r}"
    if headers["X-Skill-Platform"] not in PLATFORMS:
        return "X-Skill-Platform must be one of " + ", ".join(PLATFORMS)
    return None


async def _json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise bad_request("the request needs a JSON body")
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the JSON body must be an object")
    return body


class Api:
    """The route handlers of one emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    # -- plumbing -------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(
            middlewares=[plumbing(self.emu, self._with_bind_url)],
            client_max_size=16 * 1024 * 1024,
        )
        app.on_response_prepare.append(stamp_request_id)
        r = app.router
        r.add_get("/", self.index)
        r.add_post("/api/auth/anonymous-token", self.anonymous_token)
        r.add_post("/api/tasks/me/with-session/nemo_agent", self.create_session)
        r.add_post("/run_sse", self.run_sse)
        r.add_post("/api/upload-video/nemo_agent/me/{session_id}", self.upload)
        r.add_post("/api/upload-video/nemo_agent/me/", self.upload)
        r.add_post("/api/upload-video/nemo_agent/me", self.upload)
        r.add_get("/api/credits/balance/simple", self.credits)
        r.add_get("/api/state/nemo_agent/me/{session_id}/latest", self.state)
        r.add_post("/api/render/proxy/lambda", self.render)
        r.add_get("/api/render/proxy/lambda/{render_id}", self.render_status)
        r.add_get("/downloads/{name}", self.download)
        r.add_get("/media/{media_id}/{name}", self.media_file)
        r.add_get("/bind", self.bind_page)
        return app

    def _with_bind_url(self, error: ApiError, request: web.Request) -> ApiError:
        """A forced 2001 carries the registration link, as a real one does."""
        if error.code == 2001 and error.data is None:
            account = self._account_or_none(request)
            if account is not None and not account.registered:
                error.data = {"bind_url": self.bind_url(account)}
        return error

    # -- helpers --------------------------------------------------------------------------

    def _account_or_none(self, request: web.Request) -> Account | None:
        try:
            return self._authenticate(request)
        except ApiError:
            return None

    def _authenticate(self, request: web.Request) -> Account:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        return self.emu.state.authenticate(token, self.emu.clock.now())

    def _account(self, request: web.Request) -> Account:
        """The caller's account (and, in strict mode, the attribution headers checked)."""
        account = self._authenticate(request)
        if self.emu.config.strict_attribution:
            problem = attribution_problem(request)
            if problem:
                raise ApiError(4000, problem, status=400)
        return account

    def bind_url(self, account: Account) -> str:
        """The registration link for an anonymous account."""
        return f"{self.emu.url}/bind?bind={account.bind_code}"

    def _no_credits(self, account: Account, needed: int) -> ApiError:
        data = None if account.registered else {"bind_url": self.bind_url(account)}
        hint = "top up credits in your account" if account.registered else "register to get more"
        return ApiError(
            2001,
            f"insufficient credits: {needed} needed, {account.available} available; {hint}",
            data=data,
        )

    def _media_public(self, media: MediaRecord) -> dict[str, Any]:
        url = f"{self.emu.cdn_url}/media/{media.id}/{media.path.name}"
        return media.public(url)

    def _render_public(self, job: RenderRecord) -> dict[str, Any]:
        data: dict[str, Any] = {
            "render_id": job.id,
            "status": job.status,
            "progress": job.progress,
            "session_id": job.session_id,
            "width": job.width,
            "height": job.height,
            "created_at": _iso(job.created_at),
        }
        if job.client_render_id is not None:
            data["client_render_id"] = job.client_render_id
        if job.status == "completed":
            data["download_url"] = f"{self.emu.cdn_url}/downloads/{job.id}.mp4?sig={job.sig}"
        if job.error is not None:
            data["error"] = job.error
        return data

    # -- routes ---------------------------------------------------------------------------

    async def index(self, _request: web.Request) -> web.Response:
        """What this server is, for someone poking at it with curl."""
        return envelope(
            {"service": "NemoVideo API emulator (nemo-sync)", "docs": "docs/testing.md"}
        )

    async def anonymous_token(self, request: web.Request) -> web.Response:
        """``POST /api/auth/anonymous-token``: 100 credits, 7 days, one per client id a week."""
        client_id = request.headers.get("X-Client-Id", "").strip()
        if not client_id:
            raise ApiError(400, "missing X-Client-Id", status=400)
        if len(client_id) > 128:
            raise ApiError(400, "X-Client-Id is too long", status=400)
        token = self.emu.state.issue_anonymous_token(client_id, self.emu.clock.now())
        assert token.expires_at is not None
        return envelope(
            {
                "token": token.value,
                "expires_at": _iso(token.expires_at),
                "expires_in": round(token.expires_at - self.emu.clock.now()),
                "credits": token.account.available,
                "client_id": client_id,
            }
        )

    async def create_session(self, request: web.Request) -> web.Response:
        """``POST /api/tasks/me/with-session/nemo_agent``."""
        account = self._account(request)
        body = await _json_body(request, required=False)
        task_name = body.get("task_name", "project")
        session = self.emu.state.create_session(account)
        data: dict[str, Any] = {
            "session_id": session.id,
            "task_id": session.task_id,
            "task_name": task_name if isinstance(task_name, str) else "project",
            "language": body.get("language", "") if isinstance(body.get("language"), str) else "",
        }
        if not account.registered:
            data["bind_url"] = self.bind_url(account)
        return envelope(data)

    async def run_sse(self, request: web.Request) -> web.StreamResponse:
        """``POST /run_sse``: one chat turn, streamed as ADK events."""
        account = self._account(request)
        body = await _json_body(request)
        app_name = body.get("app_name", body.get("appName", APP_NAME))
        if app_name != APP_NAME:
            raise ApiError(4004, f"app not found: {app_name!r}")
        session_id = body.get("session_id", body.get("sessionId"))
        if not isinstance(session_id, str) or not session_id:
            raise bad_request("'session_id' is required")
        message = body.get("new_message", body.get("newMessage"))
        parts = message.get("parts") if isinstance(message, dict) else None
        text = (
            parts[0].get("text")
            if isinstance(parts, list) and parts and isinstance(parts[0], dict)
            else None
        )
        if not isinstance(text, str) or not text.strip():
            raise bad_request("'new_message.parts[0].text' must be a non-empty string")
        session = self.emu.state.session_for(account, session_id)
        return await run_turn(
            request,
            session,
            text,
            config=self.emu.config,
            clock=self.emu.clock,
            fault=request.get(FAULT),
            no_credits=self._no_credits,
        )

    async def upload(self, request: web.Request) -> web.Response:
        """``POST /api/upload-video/nemo_agent/me/<session_id>`` (or ``.../me/`` + a field)."""
        account = self._account(request)
        session_id = request.match_info.get("session_id")
        session: SessionRecord | None = None
        if session_id:
            session = self.emu.state.session_for(account, session_id)
        limit = self.emu.config.max_upload_bytes
        media_dir = self.emu.data_dir / "media"
        if request.content_type.startswith("multipart/"):
            received, field_id = await read_multipart(request, media_dir, limit)
        elif request.content_type == "application/json":
            received, field_id = await read_json(request, self.emu.http(), media_dir, limit)
        else:
            raise bad_request("send the file as multipart/form-data, or JSON with 'urls'")
        try:
            session = session or self._session_from_field(account, field_id)
            records = [await to_record(item) for item in received]
        except BaseException:
            discard(received)
            raise
        for media in records:
            self.emu.state.add_media(session, media)
        public = [self._media_public(m) for m in records]
        return envelope({**public[0], "media": public})

    def _session_from_field(self, account: Account, session_id: str | None) -> SessionRecord:
        if not session_id:
            raise bad_request("'session_id' is required (in the path or the form)")
        return self.emu.state.session_for(account, session_id)

    async def credits(self, request: web.Request) -> web.Response:
        """``GET /api/credits/balance/simple``."""
        return envelope(self._account(request).balance())

    async def state(self, request: web.Request) -> web.Response:
        """``GET /api/state/nemo_agent/me/<session_id>/latest``."""
        account = self._account(request)
        session = self.emu.state.session_for(account, request.match_info["session_id"])
        data: dict[str, Any] = {
            "session_id": session.id,
            "task_id": session.task_id,
            "version": session.version,
            "draft": session.draft,
            "media": [self._media_public(m) for m in session.media.values()],
        }
        if not account.registered:
            data["bind_url"] = self.bind_url(account)
        return envelope(data)

    async def render(self, request: web.Request) -> web.Response:
        """``POST /api/render/proxy/lambda``: accept a render job (credits frozen)."""
        emu = self.emu
        account = self._account(request)
        problem = attribution_problem(request)
        if problem:
            raise ApiError(402, f"export blocked: {problem}", status=402)
        if emu.config.export_requires_plan and not account.registered:
            raise ApiError(
                402, "export is not available on the free plan: register or upgrade", status=402
            )
        body = await _json_body(request)
        session_id = body.get("session_id", body.get("sessionId"))
        if not isinstance(session_id, str) or not session_id:
            raise bad_request("'session_id' is required")
        session = emu.state.session_for(account, session_id)
        client_id = body.get("render_id", body.get("renderId"))
        client_id = str(client_id) if isinstance(client_id, (str, int)) and client_id else None
        if client_id is not None:
            existing = emu.state.renders_by_client_id.get((account.id, client_id))
            if existing is not None:  # a retried POST: the same job, not a second charge
                return envelope(self._render_public(existing))
        draft = body.get("draft", session.draft)
        if isinstance(draft, str):
            try:
                draft = json.loads(draft)
            except ValueError:
                raise bad_request("'draft' is a string that is not JSON") from None
        if not isinstance(draft, dict):
            raise bad_request("'draft' must be an object")
        resolution = str(body.get("resolution", "1080p")).lower()
        if resolution.isdigit():
            resolution += "p"
        if resolution not in RESOLUTIONS:
            raise bad_request("'resolution' must be one of " + ", ".join(RESOLUTIONS))
        meta = draft.get("m")
        meta = meta if isinstance(meta, dict) else {}
        aspect = body.get("aspect") or body.get("aspect_ratio") or meta.get("aspect") or "9:16"
        if aspect not in ASPECTS:
            raise bad_request("'aspect' must be one of " + ", ".join(ASPECTS))
        cost = emu.config.render_cost
        if account.available < cost:
            raise self._no_credits(account, cost)
        width, height = output_size(resolution, aspect)
        fault = request.get(FAULT)
        job = RenderRecord(
            id=f"rnd_{secrets.token_hex(8)}",
            client_render_id=client_id,
            session_id=session.id,
            account=account,
            draft=json.loads(json.dumps(draft)),  # the job renders a snapshot
            width=width,
            height=height,
            cost=cost,
            fail_with=fault.render_fail if fault is not None else None,
            created_at=emu.clock.now(),
        )
        emu.state.add_render(job)
        emu.renderer.start(job, session)
        return envelope(self._render_public(job))

    async def render_status(self, request: web.Request) -> web.Response:
        """``GET /api/render/proxy/lambda/<render_id>``."""
        account = self._account(request)
        job = self.emu.state.render_for(account, request.match_info["render_id"])
        return envelope(self._render_public(job))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """``GET /downloads/<render_id>.mp4?sig=...``: the CDN; no token wanted."""
        name = request.match_info["name"]
        job = self.emu.state.renders.get(name.removesuffix(".mp4"))
        if job is None or not name.endswith(".mp4"):
            return web.Response(status=404, text="no such file")
        if not secrets.compare_digest(request.query.get("sig", ""), job.sig):
            return web.Response(status=403, text="signature does not match")
        if job.status != "completed" or job.output is None or not job.output.is_file():
            return web.Response(status=404, text="not rendered (yet)")
        fault = request.get(FAULT)
        return await serve_file(
            request, job.output, content_type="video/mp4", drop=bool(fault and fault.drop)
        )

    async def media_file(self, request: web.Request) -> web.StreamResponse:
        """``GET /media/<media_id>/<file>``: an uploaded file, as the CDN serves it."""
        media = self.emu.state.media.get(request.match_info["media_id"])
        if media is None or media.path.name != request.match_info["name"]:
            return web.Response(status=404, text="no such file")
        fault = request.get(FAULT)
        return await serve_file(
            request,
            media.path,
            content_type="application/octet-stream",
            drop=bool(fault and fault.drop),
        )

    async def bind_page(self, request: web.Request) -> web.Response:
        """The registration page a ``bind_url`` points at (registration is not emulated)."""
        code = request.query.get("bind", "")
        account = self.emu.state.accounts_by_bind.get(code)
        if account is None:
            return web.Response(status=404, text="unknown registration link")
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><title>Register (emulator)</title><p>This is the NemoVideo "
                "emulator's registration link. Registration is not emulated here: in tests, "
                "call <code>emu.register(...)</code>.</p>"
            ),
        )
