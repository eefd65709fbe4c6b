"""What the emulated service remembers: accounts, tokens, sessions, media, render jobs.

Every lookup is a dict access: one emulator serves hundreds of concurrent sessions.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from nemo_sync._contract import RENDER_CANCELLED, RENDER_DONE, RENDER_PENDING
from nemo_sync.emulator._api_errors import ApiError

TOKEN_LIFETIME = 7 * 86400.0
ANONYMOUS_CREDITS = 100


@attrs.define(eq=False)
class Account:
    """A user of the service: an anonymous client id, or a user-given token.

    Attributes:
        id: The account id, the ``user_id`` of token and session replies [R]: ``anon_...``
            for an anonymous client, ``user_...`` for one made by ``add_token``.
        client_id: The anonymous client id, ``None`` for an account made by ``add_token``.
        registered: Registered accounts can export when the plan check is on, and get no
            registration link.
        available: Credits that can be spent now.
        frozen: Credits held by running render jobs.
        token_issued_at: When the last anonymous token was issued (emulator clock).
    """

    id: str
    client_id: str | None
    registered: bool
    available: int
    frozen: int = 0
    token_issued_at: float | None = None

    @property
    def total(self) -> int:
        """available + frozen."""
        return self.available + self.frozen

    def balance(self) -> dict[str, int]:
        """The credits endpoint's ``data``."""
        return {"available": self.available, "frozen": self.frozen, "total": self.total}


@attrs.define(eq=False)
class Token:
    """A bearer token and the account behind it (``expires_at`` on the emulator clock)."""

    value: str = attrs.field(repr=False)
    account: Account
    expires_at: float | None


@attrs.define(eq=False)
class MediaRecord:
    """A media file in a session.

    Attributes:
        id: The media id (``med_...``).
        name: The file name as uploaded.
        size: Bytes stored.
        kind: ``"video"``, ``"audio"`` or ``"image"``.
        duration_ms: Its duration (``None`` for images).
        duration_estimated: True when the emulator could not read the duration and assumed 10 s.
        sha256: Hex digest of the bytes received, computed while streaming.
        path: Where the bytes are on disk.
        source_url: The URL it was fetched from (URL uploads).
        beats: Cached beat analysis (filled by the first beat-sync on it).
        session_id: The session it was uploaded to (set when it joins one).
        width, height, fps: Picture facts the local engine read (``None`` when unknown).
    """

    id: str
    name: str
    size: int
    kind: str
    duration_ms: int | None
    duration_estimated: bool
    sha256: str
    path: Path = attrs.field(repr=False)
    source_url: str | None = None
    beats: Any = attrs.field(default=None, repr=False)
    session_id: str | None = attrs.field(default=None, repr=False)
    width: int | None = attrs.field(default=None, repr=False)
    height: int | None = attrs.field(default=None, repr=False)
    fps: float | None = attrs.field(default=None, repr=False)

    def public(self, url: str, *, reference: bool = True) -> dict[str, Any]:
        """The media object clients see: in the upload reply and the state's ``video_infos``.

        ``reference``: the API reference's shape [R], with no id: ``filename``,
        ``file_type``, ``cdn_url``, ``duration`` (seconds), ``width``, ``height``, ``fps``
        (what is known) and ``hash``. Otherwise the older shape with ``file_id``, ``url`` and
        ``duration_ms`` (what v2 of the contract guessed), still read by clients.
        """
        if reference:
            item: dict[str, Any] = {
                "filename": self.name,
                "file_type": self.kind,
                "cdn_url": url,
            }
            if self.duration_ms is not None:
                item["duration"] = self.duration_ms / 1000
            for key in ("width", "height", "fps"):
                if getattr(self, key) is not None:
                    item[key] = getattr(self, key)
            item["hash"] = self.sha256
            return item
        data: dict[str, Any] = {
            "file_id": self.id,
            "filename": self.name,
            "url": url,
            "size": self.size,
            "kind": self.kind,
            "type": self.kind,
            "duration_ms": self.duration_ms,
            "duration_estimated": self.duration_estimated,
            "sha256": self.sha256,
        }
        if self.source_url is not None:
            data["source_url"] = self.source_url
        return data


def empty_draft() -> dict[str, Any]:
    """A new session's draft. ``cv`` (canvas) is a key the SDK does not know: it must keep it."""
    return {"t": [], "d": 0, "m": {}, "cv": {"w": 1080, "h": 1920}}


@attrs.define(eq=False)
class SessionRecord:
    """A session: its draft (wire format, plain dicts), its media and its history.

    Attributes:
        id: The session id.
        task_id: The task the session belongs to.
        task_name: The project's name, as the create call gave it.
        account: The owner.
        draft: The current draft.
        version: Bumped by every edit.
        media: Media by id, in upload order.
        turns: Chat turns run so far.
        history: The drafts before the last edit turns, oldest first: ``undo`` brings back
            the last one (the agent's draft versions; at most ``_edits.HISTORY_DEPTH``).
    """

    id: str
    task_id: str
    account: Account
    ordinal: int = attrs.field(repr=False)
    rng: random.Random = attrs.field(repr=False)
    task_name: str = "project"
    draft: dict[str, Any] = attrs.field(factory=empty_draft, repr=False)
    version: int = 0
    media: dict[str, MediaRecord] = attrs.field(factory=dict, repr=False)
    turns: int = 0
    history: list[dict[str, Any]] = attrs.field(factory=list, repr=False)
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, repr=False)
    _next_id: int = attrs.field(default=0, repr=False)

    def new_id(self, prefix: str) -> str:
        """A short id for a track or segment, unique in this session and deterministic."""
        self._next_id += 1
        return f"{prefix}_{self._next_id}"


@attrs.frozen
class Claim:
    """A claim token, its project and its expiry (emulator clock)."""

    token: str = attrs.field(repr=False)
    session: SessionRecord
    expires_at: float


@attrs.define(eq=False)
class RenderRecord:
    """A render job.

    Export is free [V]: a job never holds or charges credits.

    Attributes:
        id: The render id the client chose (``render_<unix ms>``); the poll URL names it.
        file_id: The server's name for the output file (``rnd_...``): download links name
            this, never the client's id, so an odd id cannot become a file name.
        session_id: The session rendered.
        status: ``pending``, ``processing``, ``completed``, ``failed`` or ``cancelled``.
        progress: 0-100.
        error: Why it failed.
        output: The rendered file, once completed.
        width, height: The output size (the draft's canvas).
        duration_ms: The draft's duration.
        created_at: When it was submitted (emulator clock).
        completed_at: When it completed, failed or was cancelled (emulator clock).
        worker: Which emulator process renders it (a persistent emulator's jobs outlive the
            process that started them); ``None`` when nobody does.
        heartbeat_at: When that worker last said it is alive (real time, ``time.time()``).
    """

    id: str
    session_id: str
    account: Account = attrs.field(repr=False)
    draft: dict[str, Any] = attrs.field(repr=False)
    width: int
    height: int
    duration_ms: int = 0
    file_id: str = attrs.field(factory=lambda: f"rnd_{secrets.token_hex(8)}")
    status: str = RENDER_PENDING
    progress: int = 0
    error: str | None = None
    output: Path | None = None
    sig: str = attrs.field(factory=lambda: secrets.token_urlsafe(12), repr=False)
    fail_with: str | None = attrs.field(default=None, repr=False)
    created_at: float = 0.0
    completed_at: float | None = None
    worker: str | None = attrs.field(default=None, repr=False)
    heartbeat_at: float = attrs.field(default=0.0, repr=False)
    task: asyncio.Task[None] | None = attrs.field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """Its key among every account's jobs: render ids are only unique per account."""
        return (self.account.id, self.id)

    @property
    def running_here(self) -> bool:
        """Whether a render task in this process is working on it."""
        return self.task is not None and not self.task.done()

    @property
    def done(self) -> bool:
        """Whether the job has finished (completed, failed or cancelled)."""
        return self.status in RENDER_DONE

    def cancel(self, at: float) -> None:
        """Cancel the job [R]: a final status, nobody's to render, and its render task in
        this process (if any) told to stop; the task removes its partial files."""
        self.status = RENDER_CANCELLED
        self.completed_at = at
        self.worker = None
        if self.task is not None and not self.task.done():
            self.task.cancel()


class State:
    """Accounts, tokens, sessions and render jobs, indexed for O(1) lookups."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.clear()

    def clear(self) -> None:
        """Forget everything (in place: the emulator's parts keep this object)."""
        self.tokens: dict[str, Token] = {}
        self.accounts: dict[str, Account] = {}
        self.accounts_by_client: dict[str, Account] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.media: dict[str, MediaRecord] = {}
        # Render ids are the clients' (render_<unix ms>), so two accounts can pick the same
        # one: jobs are owned per account, ``renders`` shows the latest job with each id.
        self.renders: dict[str, RenderRecord] = {}
        self.renders_owned: dict[tuple[str, str], RenderRecord] = {}
        self.renders_by_file: dict[str, RenderRecord] = {}
        self.claims: dict[str, Claim] = {}
        self.session_count = 0

    def new_account(self, *, client_id: str | None, registered: bool, credits: int) -> Account:
        account = Account(
            id=f"{'anon' if client_id is not None else 'user'}_{secrets.token_hex(6)}",
            client_id=client_id,
            registered=registered,
            available=credits,
        )
        self.index_account(account)
        return account

    def issue_anonymous_token(self, client_id: str, now: float, *, reissue: bool = False) -> Token:
        """A new token for ``client_id``: the account persists per client id, and only one
        token is issued per client id per 7 days.

        Args:
            reissue: Within the 7 days, issue another token for the same account (sessions,
                credits) instead of refusing: the CLI's own ``--local`` emulator, where a
                lost token must not lock the user out of their projects for a week.

        Raises:
            ApiError: HTTP 429 (with Retry-After) inside the 7-day window, unless ``reissue``.
        """
        account = self.accounts_by_client.get(client_id)
        if account is None:
            account = self.new_account(
                client_id=client_id, registered=False, credits=ANONYMOUS_CREDITS
            )
        elif account.token_issued_at is not None and not reissue:
            wait = account.token_issued_at + TOKEN_LIFETIME - now
            if wait > 0:
                raise ApiError(
                    429,
                    "rate limited: one anonymous token per client id per 7 days",
                    status=429,
                    headers={"Retry-After": str(max(1, round(wait)))},
                )
        account.token_issued_at = now
        token = Token(
            # The service's token form [R]; the emulator's own tokens are random like them.
            value=f"nmv_usr_{secrets.token_urlsafe(24)}",
            account=account,
            expires_at=now + TOKEN_LIFETIME,
        )
        self.tokens[token.value] = token
        return token

    def add_token(
        self, value: str, *, credits: int, registered: bool, expires_at: float | None
    ) -> Token:
        """Register a user-given token with a new account of its own."""
        if value in self.tokens:
            raise ValueError("that token is already known to the emulator")
        account = self.new_account(client_id=None, registered=registered, credits=credits)
        token = Token(value=value, account=account, expires_at=expires_at)
        self.tokens[value] = token
        return token

    def authenticate(self, value: str | None, now: float) -> Account:
        """The account behind a bearer token.

        Raises:
            ApiError: 1001 (HTTP 401) for a missing, unknown or expired token.
        """
        if not value:
            raise ApiError(1001, "missing bearer token")
        token = self.tokens.get(value)
        if token is None:
            raise ApiError(1001, "invalid token")
        if token.expires_at is not None and now >= token.expires_at:
            raise ApiError(1001, "token expired")
        return token.account

    def find_account(self, key: str) -> Account:
        """An account by token, client id or account id.

        Raises:
            KeyError: when nothing matches.
        """
        token = self.tokens.get(key)
        if token is not None:
            return token.account
        account = self.accounts_by_client.get(key) or self.accounts.get(key)
        if account is None:
            raise KeyError("no account for that token, client id or account id")
        return account

    def create_session(self, account: Account, task_name: str = "project") -> SessionRecord:
        self.session_count += 1
        ordinal = self.session_count
        session = SessionRecord(
            id=str(uuid.uuid4()),
            task_id=f"task_{secrets.token_hex(6)}",
            account=account,
            ordinal=ordinal,
            task_name=task_name,
            # Seeded per session: a session's silent turns and reply wording do not depend on
            # how other sessions' requests interleave with it.
            rng=random.Random(f"{self.seed}/{ordinal}"),
        )
        self.sessions[session.id] = session
        return session

    def find_media(self, session: SessionRecord, ref: str) -> MediaRecord | None:
        """A session's media by what a draft or a client calls it: its id, or its CDN URL
        (``.../media/<id>/<file>``: the reference's media have no id [R], so a draft built
        by a client names them by URL)."""
        media = session.media.get(ref)
        if media is None and "/media/" in ref:
            media_id = ref.split("/media/", 1)[1].split("/", 1)[0]
            found = session.media.get(media_id)
            if found is not None and ref.split("?", 1)[0].endswith("/" + found.path.name):
                media = found
        return media

    def add_media(self, session: SessionRecord, media: MediaRecord) -> None:
        media.session_id = session.id
        session.media[media.id] = media
        self.media[media.id] = media

    def session_for(self, account: Account, session_id: str) -> SessionRecord:
        """The account's session.

        Raises:
            ApiError: 1002 (HTTP 404) when it does not exist or belongs to someone else.
        """
        session = self.sessions.get(session_id)
        if session is None or session.account.id != account.id:
            raise ApiError(1002, f"session not found: {session_id}")
        return session

    def render_for(self, account: Account, render_id: str) -> RenderRecord:
        """The account's render job.

        Raises:
            ApiError: HTTP 404 (code 4004) when there is no such job for this account.
        """
        job = self.renders_owned.get((account.id, render_id))
        if job is None:
            raise ApiError(4004, f"render job not found: {render_id}")
        return job

    def add_render(self, job: RenderRecord) -> None:
        """Record a new job.

        Raises:
            ApiError: HTTP 409 when the account already has a job with this id ([R]: "fails
                with duplicate id error"; the route words it per reply style). Answering
                with the old job would hide a client bug.
        """
        if job.key in self.renders_owned:
            raise ApiError(
                409, f"duplicate render id: {job.id} is already used; send a new id", status=409
            )
        self.index_render(job)

    def index_render(self, job: RenderRecord) -> None:
        """Make a job findable by its owner and id, its id, and its output file."""
        self.renders_owned[job.key] = job
        self.renders[job.id] = job
        self.renders_by_file[job.file_id] = job

    def index_account(self, account: Account) -> None:
        """Make an account findable by id, client id and registration code."""
        self.accounts[account.id] = account
        if account.client_id is not None:
            self.accounts_by_client[account.client_id] = account


def public_sessions(state: State) -> Mapping[str, SessionRecord]:
    """A read-only view of the sessions."""
    from types import MappingProxyType

    return MappingProxyType(state.sessions)
