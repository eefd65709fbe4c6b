"""``Emulator``: the whole NemoVideo API on a local port, with state, faults and a fake clock."""

from __future__ import annotations

import enum
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from nemo_sync._contract import MAX_UPLOAD_BYTES
from nemo_sync._models import Media
from nemo_sync.emulator._clock import FakeClock
from nemo_sync.emulator._config import ChatEvents, Config, ReplyStyle
from nemo_sync.emulator._faults import FaultSet
from nemo_sync.emulator._local import default_backend
from nemo_sync.emulator._recorder import RequestLog
from nemo_sync.emulator._render_worker import RenderBackend, Renderer
from nemo_sync.emulator._server import Api
from nemo_sync.emulator._state import (
    ANONYMOUS_CREDITS,
    Account,
    MediaRecord,
    RenderRecord,
    SessionRecord,
    State,
)
from nemo_sync.emulator._store import Changes, MemoryStore, SqliteStore, StateStore

if TYPE_CHECKING:
    from nemo_sync.emulator._thread import EmulatorThread


class _Default(enum.Enum):
    DEFAULT = "default"


DEFAULT = _Default.DEFAULT
_SHUTDOWN_TIMEOUT = 1.0
# How often a render in a persistent emulator writes its progress (and so says it is alive),
# and how long a silent one is taken for dead and re-run by the next process polled for it.
HEARTBEAT_SECONDS = 0.5
STALE_SECONDS = 3.0


def _url_host(host: str) -> str:
    """The host to put in URLs for a bind address (a wildcard address is not reachable)."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - naming the wildcard, not binding to it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Emulator:
    """The NemoVideo API as a stateful local server, for tests, demos and offline work.

    ::

        async with Emulator() as emu:
            async with NemoClient(base_url=emu.url) as nemo:
                ...
            emu.faults.add("GET /api/credits/balance/simple", status=429, retry_after=1)
            emu.clock.advance(days=7)  # anonymous tokens expire -> 1001
            assert emu.requests[-1].path == "/api/credits/balance/simple"

    Args:
        host: Address to listen on.
        port: Port to listen on (0: any free one; see :attr:`url`).
        cdn_host: Host name for download links (e.g. ``"localhost"`` while the API is on
            ``127.0.0.1``), so a test can check a client never sends its token to the CDN.
        render_backend: What renders MP4s. By default ``nemo_sync.local.LocalRenderBackend``
            when the ``local`` extra is installed; ``None`` (or no extra) makes every render
            fail with a message saying what to install.
        render_seconds: How long a render takes at least (real seconds).
        chat_latency: How long the agent "thinks" before answering (real seconds; heartbeats
            are sent meanwhile).
        heartbeat_interval: Seconds between heartbeats in a chat stream.
        silent_ratio: Share of edit turns that end with no text (the real service: ~0.3).
        gui_phrase_ratio: Share of edit replies that end with a GUI phrase ("click the
            Export button"), as the real service's do; clients turn them into actions.
        seed: Seeds the silent turns and the reply wording, per session.
        chat_cost: Credits an edit turn costs (turns that edit nothing are free).
        max_upload_bytes: Upload size limit (the service's is 500 MB); past it -> 4002.
        export_requires_plan: Make anonymous (unregistered) accounts get HTTP 402 on export.
        strict_attribution: Refuse (HTTP 400) any API call missing the ``X-Skill-*`` headers;
            the service itself only checks them on export (HTTP 402).
        reply_style: Whose reply shapes to answer in: ``"reference"`` (the default) answers
            as the vendor's API reference does [R] (uploads as ``files[]`` with ``cdn_url``
            and no id; render submit and poll in ``{"success": true, "data": ...}`` with
            ``outputUrl``); ``"skill"`` as SKILL.md 1.9 does [V] (media with ids; a bare
            render status with ``output.url``). Clients must read both.
        chat_events: The chat stream's form: ``"adk"`` (Google ADK's events, as the service
            runs) or ``"simple"`` (the API reference's ``{"type": "text", ...}`` events).
        render_status_enveloped: With ``reply_style="skill"``, serve the render status inside
            the ``{code, message, data}`` envelope instead of bare.
        reissue_anonymous_tokens: Answer a second anonymous-token request for a known client
            id within 7 days with a fresh token for the same account (its sessions, its
            credits) instead of the service's HTTP 429. For an emulator that is the user's own
            (the CLI's ``--local`` sets it), so lost or damaged credentials never lock them
            out of their projects; leave it off to test a client against the service's rule.
        data_dir: A folder to keep everything in, across restarts: the state (accounts,
            tokens, sessions, drafts, media index, render jobs, credits, claim tokens) in a
            SQLite database, with uploads and renders beside it. Any number of emulators,
            in any processes, may share one folder: they act as one service, and a render one
            of them left unfinished is finished by the next that is polled for it. A damaged
            database found there is moved aside and replaced by one holding every record
            that still reads, and files no record refers to that a killed process left are
            removed (docs/state.md). When not given, the state is in memory only and files
            go to a temporary folder removed on close (the fast default for tests).
        max_recorded_requests: How many requests :attr:`requests` keeps (``None``: all).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_host: str | None = None,
        render_backend: RenderBackend | _Default | None = DEFAULT,
        render_seconds: float = 0.5,
        chat_latency: float = 0.0,
        heartbeat_interval: float = 0.2,
        silent_ratio: float = 0.3,
        gui_phrase_ratio: float = 0.5,
        seed: int = 0,
        chat_cost: int = 1,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        export_requires_plan: bool = False,
        strict_attribution: bool = False,
        reply_style: ReplyStyle = "reference",
        chat_events: ChatEvents = "adk",
        render_status_enveloped: bool = False,
        reissue_anonymous_tokens: bool = False,
        data_dir: str | Path | None = None,
        max_recorded_requests: int | None = 10_000,
    ) -> None:
        self.config = Config(
            render_seconds=render_seconds,
            chat_latency=chat_latency,
            heartbeat_interval=heartbeat_interval,
            silent_ratio=silent_ratio,
            gui_phrase_ratio=gui_phrase_ratio,
            chat_cost=chat_cost,
            max_upload_bytes=max_upload_bytes,
            export_requires_plan=export_requires_plan,
            strict_attribution=strict_attribution,
            render_status_enveloped=render_status_enveloped,
            reply_style=reply_style,
            chat_events=chat_events,
            reissue_anonymous_tokens=reissue_anonymous_tokens,
        )
        self._host = host
        self._port = port
        self._cdn_host = cdn_host
        self._seed = seed
        self.clock = FakeClock()
        self.faults = FaultSet()
        self.requests = RequestLog(max_recorded_requests)
        self.state = State(seed)
        backend = default_backend() if render_backend is DEFAULT else render_backend
        assert not isinstance(backend, _Default)
        self._own_data_dir = data_dir is None
        self._data_dir = Path(data_dir) if data_dir is not None else None
        # Names this process's render workers in a shared store's jobs, and the files it
        # writes (so the next process can tell a killed one's leftovers from work in progress).
        self.worker_id = f"wrk_{secrets.token_hex(6)}"
        self.store: StateStore = (
            MemoryStore()
            if self._data_dir is None
            else SqliteStore(self._data_dir, worker_id=self.worker_id)
        )
        self._backend = backend
        self._renderer: Renderer | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._url = ""
        self._cdn_url = ""

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"Emulator({where}, sessions={len(self.state.sessions)})"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (``async with`` does this for you).

        Raises:
            RuntimeError: when already started.
            OSError: when the port cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("this Emulator is already running")
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="nemo-emulator-"))
        self._data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open(self.state)
        self._renderer = self._new_renderer()
        runner = web.AppRunner(Api(self).app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        try:
            await runner.setup()
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            await self.store.close()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self._url = f"http://{_url_host(self._host)}:{port}"
        self._cdn_url = f"http://{self._cdn_host}:{port}" if self._cdn_host else self._url

    async def close(self) -> None:
        """Stop the server and end running renders; without a ``data_dir``, delete the stored
        files. With one, unfinished renders are left for the next emulator on the folder."""
        if self._renderer is not None:
            await self._renderer.cancel_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            await self.store.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._own_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def run_in_thread(self) -> EmulatorThread:
        """Start the emulator on a background thread with its own event loop.

        For synchronous code and tools (the CLI's ``--local`` mode). Stop it with ``.stop()``
        or use it as a context manager::

            with Emulator().run_in_thread() as handle:
                print(handle.url)

        Returns:
            A handle with ``url``, ``emulator``, ``call(fn, *args)`` and ``stop()``.
        """
        from nemo_sync.emulator._thread import EmulatorThread

        handle = EmulatorThread(self)
        handle.start()
        return handle

    # -- what tests look at ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API's base URL, like ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: before :meth:`start`.
        """
        if not self._url:
            raise RuntimeError("the Emulator is not started: use `async with Emulator() as emu`")
        return self._url

    @property
    def cdn_url(self) -> str:
        """The base URL of download links (differs from :attr:`url` with ``cdn_host``)."""
        self.url  # noqa: B018 - raises the "not started" error
        return self._cdn_url

    @property
    def web_url(self) -> str:
        """The web app's base URL (``NEMO_WEB_URL``): the emulator serves the browser links
        (``/workspace/claim?ct=...``) itself, so it is :attr:`url`."""
        return self.url

    @property
    def port(self) -> int:
        """The port the emulator listens on."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def data_dir(self) -> Path:
        """Where uploads and renders are stored."""
        if self._data_dir is None:
            raise RuntimeError("the Emulator is not started")
        return self._data_dir

    @property
    def renderer(self) -> Renderer:
        """The render job runner (internal)."""
        if self._renderer is None:
            raise RuntimeError("the Emulator is not started")
        return self._renderer

    @property
    def render_backend(self) -> RenderBackend | None:
        """What renders MP4s (``None``: renders fail saying what to install)."""
        return self._backend

    @property
    def sessions(self) -> Mapping[str, SessionRecord]:
        """Every session by id (read-only): ``emu.sessions[sid].draft``, ``.media[mid].sha256``."""
        return MappingProxyType(self.state.sessions)

    @property
    def renders(self) -> Mapping[str, RenderRecord]:
        """Every render job by its render id, the one the client sent (read-only; when two
        accounts pick the same id, the latest job)."""
        return MappingProxyType(self.state.renders)

    def media_record(self, media: Media | str) -> MediaRecord:
        """The emulator's record of an uploaded file: by the :class:`~nemo_sync.Media` a client
        got, its id or its CDN URL (the reference's replies carry no id [R]).

        Raises:
            KeyError: when no session has it.
        """
        ref = media.key if isinstance(media, Media) else media
        for session in self.state.sessions.values():
            found = self.state.find_media(session, ref)
            if found is not None:
                return found
        raise KeyError(f"no uploaded media {ref!r}")

    def http(self) -> aiohttp.ClientSession:
        """The client the emulator fetches URL uploads with (made on first use)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    # -- test helpers ---------------------------------------------------------------------

    def account(self, key: str) -> Account:
        """An account by token, anonymous client id or account id.

        Raises:
            KeyError: when there is none.
        """
        return self.state.find_account(key)

    def add_token(
        self,
        token: str,
        *,
        credits: int = ANONYMOUS_CREDITS,
        registered: bool = True,
        expires_in: float | None = None,
    ) -> Account:
        """Accept a user-given token (as ``NEMO_TOKEN`` would hold), with an account of its own.

        Args:
            token: The token value.
            credits: Its starting balance.
            registered: Registered accounts are not blocked by ``export_requires_plan`` and
                get no registration link.
            expires_in: Seconds (emulator clock) until it expires; ``None``: never.

        Raises:
            ValueError: when the token is already known.
        """
        expires_at = self.clock.now() + expires_in if expires_in is not None else None
        added = self.state.add_token(
            token, credits=credits, registered=registered, expires_at=expires_at
        )
        self.store.stage(added.account, added)
        return added.account

    def set_credits(
        self, key: str, *, available: int | None = None, frozen: int | None = None
    ) -> Account:
        """Set an account's balance (by token, client id or account id).

        Raises:
            KeyError: when there is no such account.
        """
        account = self.state.find_account(key)
        if available is not None:
            account.available = available
        if frozen is not None:
            account.frozen = frozen
        self.store.stage(account)
        return account

    def register(self, key: str) -> Account:
        """Mark an account as registered (lifts ``export_requires_plan``).

        Raises:
            KeyError: when there is no such account.
        """
        account = self.state.find_account(key)
        account.registered = True
        self.store.stage(account)
        return account

    async def wait_for_renders(self) -> None:
        """Wait until every render job has completed or failed."""
        await self.renderer.idle()

    def reset(self) -> None:
        """Forget everything: accounts, tokens, sessions, media, renders, faults, requests,
        and the clock's offset. Running renders are stopped. With a ``data_dir``, the stored
        state is emptied too (for every process on it, with this emulator's next request)."""
        if self._renderer is not None:
            self._renderer.abandon()
        self.state = State(self._seed)
        self.store.stage_clear()
        self.faults.clear()
        self.requests.clear()
        self.clock.reset()
        if self._data_dir is not None:
            for folder in ("media", "renders"):
                shutil.rmtree(self._data_dir / folder, ignore_errors=True)

    # -- the store ----------------------------------------------------------------------

    async def sync(self) -> None:
        """Catch up with what other processes wrote to a shared ``data_dir`` (internal)."""
        await self.store.sync(self.state)

    def transaction(self) -> AbstractAsyncContextManager[Changes]:
        """``async with emu.transaction() as changes:`` change the state atomically, marking
        what changed with ``changes.mark(...)`` (internal; see ``_store``)."""
        return self.store.transaction(self.state)

    async def _save_render(self, job: RenderRecord, *, released: bool = False) -> None:
        """Write a running job (progress, heartbeat, result) for other processes to see."""
        job.worker = None if released or job.done else self.worker_id
        job.heartbeat_at = time.time()
        async with self.transaction() as changes:
            changes.mark(job)

    def render_is_orphan(self, job: RenderRecord) -> bool:
        """Whether an unfinished job has nobody rendering it: no task here, and no worker
        elsewhere that has said it is alive lately (internal)."""
        if job.done or job.running_here or not self.store.persistent:
            return False
        if job.worker is None or job.worker == self.worker_id:
            return True
        return time.time() - job.heartbeat_at > STALE_SECONDS

    def _new_renderer(self) -> Renderer:
        config = self.config
        return Renderer(
            self._backend,
            render_seconds=lambda: config.render_seconds,
            out_dir=self.data_dir / "renders",
            save=self._save_render if self.store.persistent else None,
            heartbeat=HEARTBEAT_SECONDS,
            now=self.clock.now,
            find_media=self.state.find_media,
            writer=self.worker_id,
        )
