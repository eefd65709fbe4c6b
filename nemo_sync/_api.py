"""The API as services see it: the request path, the home folder, URLs, the job store.

``NemoClient`` makes one :class:`Api` and hands it to every service (sessions, uploads, chat
turns, render jobs), the way anthropic-sdk-python binds its resources to the client's request
methods: a service gets what it needs and an id, never the client or a ``Session``, so every
import arrow points down and no module reaches into another's private parts.
"""

from __future__ import annotations

from pathlib import Path

from yarl import URL

from nemo_sync._claim_link import register_link
from nemo_sync._jobstore import FileJobStore
from nemo_sync._store_protocol import JobStore
from nemo_sync._transport import Transport


class Api:
    """The client's request path and the state it shares, bound once.

    Attributes:
        transport: The request path (downloads stream through it; it refuses to work once the
            client is closed).
        home: The folder for credentials and the render job store.
        web_url: The web app's base URL (browser links).
        jobs: The render job store (one per client): the one given, else ``jobs.json``
            under ``home``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        home: Path,
        web_url: URL,
        job_store: JobStore | None = None,
    ) -> None:
        self.transport = transport
        self.home = home
        self.web_url = web_url
        self.jobs: JobStore = job_store if job_store is not None else FileJobStore(home)
        # The account's id as the last session reply gave it [R]: with a token the user gave,
        # the only way to know whether the account is anonymous (and so the bind link).
        self.session_user_id: str | None = None
        transport.bind_link = self.bind_link
        # Bound once: a call goes straight to the transport, which refuses to work once the
        # client is closed (so no closed check, and no coroutine frame, is needed here).
        self.request = transport.request
        self.open_stream = transport.open_stream

    def bind_link(self) -> str | None:
        """The registration link for an anonymous account (``None`` for a registered one)."""
        auth = self.transport.auth
        user_id = (auth.user_id if auth is not None else None) or self.session_user_id
        return register_link(self.web_url, user_id)

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return str(self.transport.base_url)
