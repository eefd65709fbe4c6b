"""The browser link [V 1.9]: ``POST /api/auth/claim-token`` and the page it opens.

A claim token opens one project in a browser and has no API access; the bearer token never
appears in a URL, so the page takes only a claim token.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from nemo_sync._contract import (
    CLAIM_LINK_PATH,
    CLAIM_LINK_QUERY,
    CLAIM_TOKEN_PATH,
    CLAIM_TOKEN_TTL,
)
from nemo_sync.emulator import _draft_ops as d
from nemo_sync.emulator._api_errors import ApiError
from nemo_sync.emulator._fastapi import Field, read_json_body, validate
from nemo_sync.emulator._route_kit import envelope
from nemo_sync.emulator._state import Account, Claim

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

CLAIM_FIELDS = (Field("task_id", "str"), Field("session_id", "str"))
_TRACK_NAMES = {d.VIDEO: "Video", d.AUDIO: "Audio", d.TEXT: "Text"}


class ClaimRoutes:
    """The claim-token endpoint and the claim page of one emulator."""

    def __init__(self, emu: Emulator, account: Callable[[web.Request], Account]) -> None:
        self.emu = emu
        self._account = account

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes."""
        router.add_post(CLAIM_TOKEN_PATH, self.claim_token)
        router.add_get(CLAIM_LINK_PATH, self.claim_page)

    async def claim_token(self, request: web.Request) -> web.Response:
        """``POST /api/auth/claim-token`` with ``{"task_id", "session_id"}``."""
        account = self._account(request)
        body = validate(await read_json_body(request), CLAIM_FIELDS)
        session = self.emu.state.session_for(account, body["session_id"])
        if session.task_id != body["task_id"]:
            # The pair names no project of this account: the same answer as an unknown session.
            raise ApiError(1002, f"session not found in task {body['task_id']}")
        token = f"clm_{secrets.token_urlsafe(24)}"
        ttl = int(CLAIM_TOKEN_TTL)
        claim = Claim(token=token, session=session, expires_at=self.emu.clock.now() + ttl)
        async with self.emu.transaction() as changes:
            self.emu.state.claims[token] = claim
            changes.mark(claim)
        return envelope({"claim_token": token, "expires_in": ttl})

    async def claim_page(self, request: web.Request) -> web.Response:
        """``GET /workspace/claim?ct=<claim token>``: a page naming the project."""
        claim = self.emu.state.claims.get(request.query.get(CLAIM_LINK_QUERY, ""))
        if claim is None or self.emu.clock.now() >= claim.expires_at:
            return _page(
                404,
                "Link not found",
                "<p>This project link is unknown or has expired. "
                "Ask for a new one from the app that gave it to you.</p>",
            )
        session = claim.session
        tracks = [
            f"<li>{_TRACK_NAMES.get(t.get('tt', -1), 'Track')}: "
            f"{len(d.segments(t))} segment(s)</li>"
            for t in d.tracks(session.draft)
            if isinstance(t, dict)
        ]
        media = [f"<li>{html.escape(m.name)}</li>" for m in session.media.values()]
        body = (
            f"<h1>{html.escape(session.task_name)}</h1>"
            f"<p>Session <code>{html.escape(session.id)}</code> "
            f"(task <code>{html.escape(session.task_id)}</code>), "
            f"version {session.version}.</p>"
            f"<h2>Timeline</h2><ul>{''.join(tracks) or '<li>empty</li>'}</ul>"
            f"<h2>Media</h2><ul>{''.join(media) or '<li>none</li>'}</ul>"
        )
        return _page(200, session.task_name, body)


def _page(status: int, title: str, body: str) -> web.Response:
    """A small HTML page (``body`` is already escaped; the title is escaped here)."""
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            f"<!doctype html><meta charset=utf-8><title>{html.escape(title)} "
            f"- NemoVideo (emulator)</title>{body}"
        ),
    )
