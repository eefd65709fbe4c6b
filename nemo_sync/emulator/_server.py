"""The HTTP surface: routes, the envelope, auth, attribution, faults and the request log."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nemo_sync._contract import (
    ANONYMOUS_TOKEN_PATH,
    APP_NAME,
    CODE_NO_CREDITS,
    CREATE_SESSION_PATH,
    CREDITS_PATH,
    HEADER_CLIENT_ID,
    REGISTER_LINK_PATH,
    REGISTER_LINK_QUERY,
    RUN_SSE_PATH,
    STATE_CANVAS_KEY,
    STATE_DRAFT_KEY,
    STATE_GENERATED_KEY,
    STATE_KEY,
    STATE_MEDIA_KEY,
    USER_ID,
)
from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._agent_turn import read_chat_request, run_turn
from nemo_sync.emulator._api_errors import ApiError, bad_request
from nemo_sync.emulator._claim import ClaimRoutes
from nemo_sync.emulator._fastapi import DetailError
from nemo_sync.emulator._files import serve_file
from nemo_sync.emulator._middleware import FAULT, plumbing, stamp_request_id
from nemo_sync.emulator._render_api import RenderRoutes
from nemo_sync.emulator._route_kit import attribution_problem, bearer_token, envelope, iso
from nemo_sync.emulator._state import Account, MediaRecord, SessionRecord
from nemo_sync.emulator._upload_api import discard, no_files, read_json, read_multipart, to_record

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

UPLOAD_ROUTE = f"/api/upload-video/{APP_NAME}/{USER_ID}/{{session_id}}"
STATE_ROUTE = f"/api/state/{APP_NAME}/{USER_ID}/{{session_id}}/latest"


async def _optional_json(request: web.Request) -> dict[str, Any]:
    """A JSON object body that may be absent (create-session takes defaults)."""
    raw = await request.read()
    if not raw.strip():
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
        self.renders = RenderRoutes(emu, self.account)
        self.claims = ClaimRoutes(emu, self.account)

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
        r.add_post(ANONYMOUS_TOKEN_PATH, self.anonymous_token)
        r.add_post(CREATE_SESSION_PATH, self.create_session)
        r.add_post(RUN_SSE_PATH, self.run_sse)
        r.add_post(UPLOAD_ROUTE, self.upload)
        r.add_get(CREDITS_PATH, self.credits)
        r.add_get(STATE_ROUTE, self.state)
        self.renders.register(r)
        self.claims.register(r)
        r.add_get("/media/{media_id}/{name}", self.media_file)
        r.add_get(REGISTER_LINK_PATH, self.bind_page)
        return app

    def _with_bind_url(self, error: ApiError, request: web.Request) -> ApiError:
        """A forced 2001 carries the registration link, as a real one does."""
        if error.code == CODE_NO_CREDITS and error.data is None:
            account = self._account_or_none(request)
            if account is not None and not account.registered:
                error.data = self._bind_data(account)
        return error

    def _bind_data(self, account: Account) -> dict[str, Any]:
        """What a 2001 for an anonymous account carries: the user id a client builds the
        registration link from [R] (and, in SKILL.md's style, the link itself)."""
        if self.emu.config.reference_replies:
            return {"user_id": account.id}
        return {"user_id": account.id, "bind_url": self.bind_url(account)}

    # -- helpers --------------------------------------------------------------------------

    def _account_or_none(self, request: web.Request) -> Account | None:
        try:
            return self._authenticate(request)
        except ApiError:
            return None

    def _authenticate(self, request: web.Request) -> Account:
        return self.emu.state.authenticate(bearer_token(request), self.emu.clock.now())

    def account(self, request: web.Request) -> Account:
        """The caller's account (and, in strict mode, the attribution headers checked)."""
        account = self._authenticate(request)
        if self.emu.config.strict_attribution:
            problem = attribution_problem(request)
            if problem:
                raise ApiError(4000, problem, status=400)
        return account

    def bind_url(self, account: Account) -> str:
        """The registration link for an anonymous account: ``<web>/register?bind=<user_id>``
        [V 1.9][R] (the emulator serves the web app's links itself)."""
        return f"{self.emu.web_url}{REGISTER_LINK_PATH}?{REGISTER_LINK_QUERY}={account.id}"

    def _no_credits(self, account: Account, needed: int) -> ApiError:
        data = None if account.registered else self._bind_data(account)
        hint = "top up credits in your account" if account.registered else "register to get more"
        return ApiError(
            CODE_NO_CREDITS,
            f"insufficient credits: {needed} needed, {account.available} available; {hint}",
            data=data,
        )

    def _media_public(self, media: MediaRecord) -> dict[str, Any]:
        url = f"{self.emu.cdn_url}/media/{media.id}/{media.path.name}"
        return media.public(url, reference=self.emu.config.reference_replies)

    # -- routes ---------------------------------------------------------------------------

    async def index(self, _request: web.Request) -> web.Response:
        """What this server is, for someone poking at it with curl."""
        return envelope(
            {"service": "NemoVideo API emulator (nemo-sync)", "docs": "docs/testing.md"}
        )

    async def anonymous_token(self, request: web.Request) -> web.Response:
        """``POST /api/auth/anonymous-token``: 100 credits, 7 days, one per client id a week."""
        client_id = request.headers.get(HEADER_CLIENT_ID, "").strip()
        if not client_id:
            raise ApiError(400, f"missing {HEADER_CLIENT_ID}", status=400)
        if len(client_id) > 128:
            raise ApiError(400, f"{HEADER_CLIENT_ID} is too long", status=400)
        async with self.emu.transaction() as changes:
            token = self.emu.state.issue_anonymous_token(
                client_id, self.emu.clock.now(), reissue=self.emu.config.reissue_anonymous_tokens
            )
            changes.mark(token.account, token)
        assert token.expires_at is not None
        # [R]: token, user_id, expires_at, credits.
        data: dict[str, Any] = {
            "token": token.value,
            "user_id": token.account.id,
            "expires_at": iso(token.expires_at),
            "credits": token.account.available,
        }
        if not self.emu.config.reference_replies:
            data |= {
                "expires_in": round(token.expires_at - self.emu.clock.now()),
                "client_id": client_id,
            }
        return envelope(data)

    async def create_session(self, request: web.Request) -> web.Response:
        """``POST /api/tasks/me/with-session/nemo_agent`` -> ``task_id`` and ``session_id``."""
        account = self.account(request)
        body = await _optional_json(request)
        task_name = body.get("task_name")
        task_name = task_name if isinstance(task_name, str) and task_name.strip() else "project"
        language = body.get("language", "en")
        if not isinstance(language, str) or len(language) > 35:
            # The service's FastAPI model takes a string; an ISO code is at most a few tags.
            raise DetailError("language must be an ISO code such as 'en' or 'zh-CN'", status=422)
        async with self.emu.transaction() as changes:
            session = self.emu.state.create_session(account, task_name)
            changes.mark(session)
        # [R]: task_id, session_id, user_id.
        data: dict[str, Any] = {
            "task_id": session.task_id,
            "session_id": session.id,
            "user_id": account.id,
        }
        if not self.emu.config.reference_replies:
            data |= {"task_name": task_name, "language": language}
            if not account.registered:
                data["bind_url"] = self.bind_url(account)
        return envelope(data)

    async def run_sse(self, request: web.Request) -> web.StreamResponse:
        """``POST /run_sse``: one chat turn, streamed as ADK events."""
        account = self.account(request)
        chat = await read_chat_request(request)
        if chat.app_name != APP_NAME:
            # ADK's agent loader cannot find the app: FastAPI's plain detail.
            raise DetailError(f"App not found: {chat.app_name}", status=404)
        if chat.user_id != USER_ID:
            raise ApiError(1002, f"session not found for user {chat.user_id!r}")
        session = self.emu.state.session_for(account, chat.session_id)
        return await run_turn(
            request,
            session,
            chat.text,
            config=self.emu.config,
            clock=self.emu.clock,
            fault=request.get(FAULT),
            no_credits=self._no_credits,
            transaction=self.emu.transaction,
        )

    async def upload(self, request: web.Request) -> web.Response:
        """``POST /api/upload-video/nemo_agent/me/<session_id>``: ``files`` parts, or URLs."""
        account = self.account(request)
        session = self.emu.state.session_for(account, request.match_info["session_id"])
        limit = self.emu.config.max_upload_bytes
        media_dir = self.emu.data_dir / "media"
        from_urls = request.content_type == "application/json"
        if request.content_type.startswith("multipart/"):
            received = await read_multipart(request, media_dir, limit)
        elif from_urls:
            received = await read_json(request, self.emu.http(), media_dir, limit)
        else:
            raise no_files()  # neither a form nor JSON: the form's ``files`` is missing
        try:
            records = [await to_record(item) for item in received]
        except BaseException:
            discard(received)
            raise
        async with self.emu.transaction() as changes:
            for media in records:
                self.emu.state.add_media(session, media)
            changes.mark(*records)
        public = [self._media_public(m) for m in records]
        if self.emu.config.reference_replies:
            # [R]: always a list, with no ids, and the state already holds the files.
            return envelope({"files": public, "session_state_applied": True})
        # SKILL.md's style (v2's guess): one file is the object itself; several are a list.
        return envelope(public[0] if len(public) == 1 and not from_urls else {"files": public})

    async def credits(self, request: web.Request) -> web.Response:
        """``GET /api/credits/balance/simple``."""
        return envelope(self.account(request).balance())

    async def state(self, request: web.Request) -> web.Response:
        """``GET /api/state/nemo_agent/me/<session_id>/latest`` -> ``data.state.*`` [V]."""
        account = self.account(request)
        session = self.emu.state.session_for(account, request.match_info["session_id"])
        data: dict[str, Any] = {
            "session_id": session.id,
            "task_id": session.task_id,
            "version": session.version,
            STATE_KEY: {
                STATE_DRAFT_KEY: session.draft,
                STATE_MEDIA_KEY: [self._media_public(m) for m in session.media.values()],
                STATE_CANVAS_KEY: _canvas_config(session),
                # The emulator generates no media; the key is there as the service has it.
                STATE_GENERATED_KEY: [],
            },
        }
        if not account.registered and not self.emu.config.reference_replies:
            data["bind_url"] = self.bind_url(account)
        return envelope(data)

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
        account = self.emu.state.accounts.get(request.query.get(REGISTER_LINK_QUERY, ""))
        if account is None or account.registered:
            return web.Response(status=404, text="unknown registration link")
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><title>Register (emulator)</title><p>This is the NemoVideo "
                "emulator's registration link. Registration is not emulated here: in tests, "
                "call <code>emu.register(...)</code>.</p>"
            ),
        )


def _canvas_config(session: SessionRecord) -> dict[str, Any]:
    """The state's ``canvas_config``: the draft's canvas, with its aspect ratio."""
    width, height = d.canvas(session.draft)
    gcd = math.gcd(width, height)
    return {"width": width, "height": height, "aspect_ratio": f"{width // gcd}:{height // gcd}"}
