"""The API as services see it: the request path, the home folder, URLs, the job store.

``NemoClient`` makes one :class:`Api` and hands it to every service (sessions, uploads, chat
turns, render jobs), the way anthropic-sdk-python binds its resources to the client's request
methods: a service gets what it needs and an id, never the client or a ``Session``, so every
import arrow points down and no module reaches into another's private parts.
"""

from __future__ import annotations

from pathlib import Path

from yarl import URL

from nemo_sync._jobstore import JobStore
from nemo_sync._transport import Transport


class Api:
    """The client's request path and the state it shares, bound once.

    Attributes:
        transport: The request path (downloads stream through it; it refuses to work once the
            client is closed).
        home: The folder for credentials and the render job store.
        web_url: The web app's base URL (browser links).
        jobs: The render job store (one per client).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        home: Path,
        web_url: URL,
    ) -> None:
        self.transport = transport
        self.home = home
        self.web_url = web_url
        self.jobs = JobStore(home)
        # Bound once: a call goes straight to the transport, which refuses to work once the
        # client is closed (so no closed check, and no coroutine frame, is needed here).
        self.request = transport.request
        self.open_stream = transport.open_stream

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return str(self.transport.base_url)
