"""NemoClient: the entry point of the SDK."""

from __future__ import annotations

import enum
import logging
import os
import time
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp

from nemo_sync._api import Api
from nemo_sync._auth import AnonymousAuth, Auth, IssuedToken, StaticTokenAuth, expiry_from
from nemo_sync._contract import (
    ANONYMOUS_TOKEN_PATH,
    CREATE_SESSION_PATH,
    CREDITS_PATH,
    ENV_TOKEN,
    HEADER_CLIENT_ID,
    TOKEN_KEYS,
    path_segment,
    session_body,
    user_id_from,
)
from nemo_sync._credentials import CredentialStore
from nemo_sync._envelope import pick, require_object
from nemo_sync._logging import configure_from_env
from nemo_sync._models import Credits
from nemo_sync._notebook import in_notebook
from nemo_sync._render_job import RenderJob, settle_unconfirmed
from nemo_sync._session import Session
from nemo_sync._settings import (
    check_language,
    detect_platform,
    locale_language,
    resolve_base_url,
    resolve_client_id,
    resolve_home,
    resolve_web_url,
    shared_client_id_path,
)
from nemo_sync._tracker import DEFAULT_MAX_JOBS, DEFAULT_SCAN_INTERVAL, Tracker
from nemo_sync._transport import MAX_RESPONSE_BYTES, Transport
from nemo_sync.errors import ClientClosedError, ConfigurationError, NemoError

logger = logging.getLogger("nemo_sync")

if TYPE_CHECKING:
    from pathlib import Path

    from nemo_sync._jobstore import JobRecord
    from nemo_sync._store_protocol import JobStore

# A whole call, retries and their waits included: room for the contract's longest retry wait
# (60 s after a 429) and one more attempt.
DEFAULT_TIMEOUT = 120.0
_CREDITS_ENDPOINT = f"GET {CREDITS_PATH}"


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class NemoClient:
    """An async client of the NemoVideo agent API.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with nemo_sync.NemoClient() as nemo:
            print(await nemo.credits())
            session = await nemo.create_session()

    Settings come from the argument, else the environment (the vendor's names), else a
    default: ``base_url`` (``NEMO_API_URL``; ``NEMO_BASE_URL`` also works), ``web_url``
    (``NEMO_WEB_URL``), ``token`` (``NEMO_TOKEN``; without one the SDK gets an anonymous token
    and keeps it in ``credentials.json`` under ``home``), ``client_id`` (``NEMO_CLIENT_ID``,
    else the machine's id in ``~/.config/nemovideo/client_id``, shared with the vendor's
    tools), ``platform`` (``SKILL_SOURCE``; ``NEMO_PLATFORM`` also works), ``home``
    (``NEMO_HOME``).

    Args:
        base_url: The API's URL (point it at an ``Emulator``'s ``url`` in tests).
        web_url: The web app's URL, for browser links (:meth:`Session.claim_url`).
        token: A bearer token. Used as is, never replaced.
        client_id: The anonymous client id to use (by default the machine's shared one).
        platform: The ``X-Skill-Platform`` value: ``clawhub``, ``cursor`` or ``unknown``.
        home: Folder for credentials and the render job store.
        timeout: Seconds an ordinary call may take in all, retries and their waits included
            (uploads, chat and downloads have their own bounds). A retry that could not
            start in time is not made: the last error is raised instead.
        max_retries: Retries of transient faults on idempotent calls.
        max_connections: Size of the connection pool.
        max_response_bytes: The largest JSON reply read (32 MB); a larger one raises
            :class:`ResponseTooLargeError` without reading the rest.
        job_store: Where render jobs are remembered (a :class:`JobStore`): by default
            ``jobs.json`` under ``home`` (this machine); a :class:`RedisJobStore` shares them
            with every host that uses the same Redis (docs/fleet.md). The client does not
            close it.

    Raises:
        ConfigurationError: when a setting is invalid.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        web_url: str | None = None,
        token: str | None = None,
        client_id: str | None = None,
        platform: str | None = None,
        home: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        max_connections: int = 100,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        job_store: JobStore | None = None,
    ) -> None:
        configure_from_env()
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more; got {max_retries}")
        if max_response_bytes < 1024:
            raise ConfigurationError(
                f"max_response_bytes must be at least 1024; got {max_response_bytes}"
            )
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive seconds; got {timeout}")
        self._home = resolve_home(home)
        self._web_url = resolve_web_url(web_url)
        self._transport = Transport(
            base_url=resolve_base_url(base_url),
            platform=detect_platform(platform),
            # sock_connect, not connect: waiting for a free pooled connection is not a connect
            # failure, and connect= arms a timer on every request.
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 30.0)),
            max_retries=max_retries,
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
        )
        given = token if token is not None else os.environ.get(ENV_TOKEN)
        # With a Redis store, one anonymous identity for the whole fleet (nemo_sync._fleet_state).
        shared_identity = getattr(job_store, "fleet_identity", None)
        auth: Auth
        if given:
            auth = StaticTokenAuth(given)
        else:
            auth = AnonymousAuth(
                CredentialStore(self._home),
                self._fetch_anonymous_token,
                client_id=resolve_client_id(client_id),
                shared_id_path=shared_client_id_path(),
                fleet=shared_identity() if shared_identity is not None else None,
            )
        self._transport.auth = auth
        self._auth = auth
        self._state = _State.OPEN
        # With a Redis store, a 429 on any host makes every host wait (nemo_sync._fleet_state);
        # it listens from the first request on (a loop is running then), until aclose.
        share = getattr(job_store, "fleet_cooldown", None)
        self._fleet_cooldown = share(self._transport.cooldown) if share is not None else None
        if self._fleet_cooldown is not None:
            self._transport.on_open = self._fleet_cooldown.start
        # What every service gets instead of this client (see nemo_sync._api).
        self._api = Api(
            self._transport, home=self._home, web_url=self._web_url, job_store=job_store
        )

    def __repr__(self) -> str:
        kind = "anonymous" if self._auth.anonymous else "token"
        return f"NemoClient(base_url={str(self.base_url)!r}, auth={kind!r})"

    async def __aenter__(self) -> NemoClient:
        self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        self._state = _State.CLOSED
        await self._transport.close()
        if self._fleet_cooldown is not None:
            await self._fleet_cooldown.aclose()

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return str(self._transport.base_url)

    @property
    def web_url(self) -> str:
        """The web app's base URL (where browser links such as claim links point)."""
        return str(self._web_url)

    @property
    def home(self) -> Path:
        """The folder holding credentials and the render job store."""
        return self._home

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._state is _State.CLOSED

    def _ensure_open(self) -> Transport:
        if self._state is _State.CLOSED:
            raise ClientClosedError(
                "This NemoClient is closed; make a new one (async with NemoClient() as nemo: ...)"
            )
        return self._transport

    async def _fetch_anonymous_token(self, client_id: str) -> IssuedToken:
        endpoint = f"POST {ANONYMOUS_TOKEN_PATH}"
        data = await self._api.request(
            "POST",
            ANONYMOUS_TOKEN_PATH,
            headers={HEADER_CLIENT_ID: client_id},
            authenticated=False,
        )
        obj = require_object(data, endpoint)
        token = pick(obj, *TOKEN_KEYS, endpoint=endpoint)
        return IssuedToken(token, expiry_from(dict(obj), time.time()), user_id_from(obj))

    async def credits(self) -> Credits:
        """The credit balance of the account behind the token.

        Returns:
            ``Credits(available, frozen, total)``.
        """
        data = await self._api.request("GET", CREDITS_PATH)
        return Credits.from_data(data, _CREDITS_ENDPOINT)

    async def create_session(self, language: str | None = None) -> Session:
        """Start a new editing session (it keeps the timeline between chat turns).

        Args:
            language: The language the agent should answer in, as an ISO code (``"en"``,
                ``"zh-CN"``, ``"ja"``, ``"es"``...) [R]. ``None`` (or ``""``): the user's
                locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), ``"en"`` when it says none.

        Returns:
            The :class:`Session`, with its ``id``, ``task_id`` and ``user_id``.

        Raises:
            ConfigurationError: when ``language`` is not an ISO code (nothing is sent).
        """
        language = check_language(language) if language else locale_language()
        data = await self._api.request("POST", CREATE_SESSION_PATH, json=session_body(language))
        session = Session.from_data(self._api, data, f"POST {CREATE_SESSION_PATH}", client=self)
        if in_notebook() and session.task_id:
            # A notebook shows a session with its browser link: made now, while awaited.
            try:
                await session.claim_url()
            except NemoError as exc:
                logger.debug("no browser link for session %s: %s", session.id, exc)
        return session

    def session(self, session_id: str, *, task_id: str | None = None) -> Session:
        """Attach to an existing session by id, without a request.

        Args:
            session_id: The session's id.
            task_id: Its task id, when known (browser links need it: :meth:`Session.claim_url`).

        Raises:
            ConfigurationError: when ``session_id`` is empty, ``.`` or ``..``.
        """
        path_segment(session_id, "session_id")
        self._ensure_open()
        return Session(self._api, session_id.strip(), client=self, task_id=task_id or None)

    def render_job(self, render_id: str) -> RenderJob:
        """Pick up a render job by id (from ``jobs()``, another process, or a log)."""
        path_segment(render_id, "render_id")
        self._ensure_open()
        return RenderJob(self._api, render_id.strip())

    def tracker(
        self,
        *,
        scan_interval: float = DEFAULT_SCAN_INTERVAL,
        poll_interval: float | None = None,
        max_jobs: int = DEFAULT_MAX_JOBS,
    ) -> Tracker:
        """A tracker: finishes the render jobs nobody is waiting for (docs/fleet.md).

        ``async with nemo.tracker() as tracker:`` scans the job store every ``scan_interval``
        seconds for unfinished jobs that no host polls (with a :class:`RedisJobStore`: whose
        lease expired, e.g. because the host that started them died) and polls each to its
        end, under its lease, recording the result for every host. With the default file
        store it finishes this machine's unfinished jobs. At most ``max_jobs`` at once.

        Raises:
            ConfigurationError: a scan interval that is not positive, ``max_jobs`` under 1.
        """
        self._ensure_open()
        return Tracker(
            self._api, scan_interval=scan_interval, poll_interval=poll_interval, max_jobs=max_jobs
        )

    async def jobs(self, *, include_finished: bool = True) -> list[JobRecord]:
        """The render jobs in the job store, newest first: those started from this machine
        (under ``home``), or the whole fleet's with a :class:`RedisJobStore`.

        A process that died mid-render finds its jobs here and resumes them with
        ``render_job(record.id).wait()``. A job the service never confirmed (a crash between
        the submission and its answer left it ``submitting`` or ``submitted``) is looked up
        at the service first: found, it shows the service's status; still unknown 10 minutes
        after it was recorded, it is ``failed``, with ``error`` saying the service never
        received it. With no network the listing comes from the file alone.
        """
        records = await self._api.jobs.list()
        if any(r.unconfirmed for r in records):
            await settle_unconfirmed(self._api, records)
            records = await self._api.jobs.list()
        return [r for r in records if include_finished or not r.finished]
