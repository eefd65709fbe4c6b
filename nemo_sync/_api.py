"""The API as services see it: the request path, the home folder, URLs, the job store.

``NemoClient`` makes one :class:`Api` and hands it to every service (sessions, uploads, chat
turns, render jobs), the way anthropic-sdk-python binds its resources to the client's request
methods: a service gets what it needs and an id, never the client or a ``Session``, so every
import arrow points down and no module reaches into another's private parts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from nemo_sync._jobstore import JobStore
from nemo_sync._transport import Transport
from nemo_sync.errors import ClientClosedError


class Api:
    """The client's request path and the state it shares, bound once.

    Attributes:
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
        is_closed: Callable[[], bool],
    ) -> None:
        self._transport = transport
        self._is_closed = is_closed
        self.home = home
        self.web_url = web_url
        self.jobs = JobStore(home)

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return str(self._transport.base_url)

    @property
    def transport(self) -> Transport:
        """The transport, once the client is known to be open (downloads stream through it)."""
        if self._is_closed():
            raise ClientClosedError(
                "This NemoClient is closed; make a new one (async with NemoClient() as nemo: ...)"
            )
        return self._transport

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call through the transport's attempt loop (see ``Transport.request``)."""
        return await self.transport.request(method, path, **kwargs)

    async def open_stream(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """Open an event stream (see ``Transport.open_stream``)."""
        return await self.transport.open_stream(method, path, **kwargs)
