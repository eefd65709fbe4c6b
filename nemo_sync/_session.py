"""Session: one editing session (its timeline persists between chat turns)."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nemo_sync import _render_job, _upload
from nemo_sync._chat_turn import (
    IDLE_TIMEOUT,
    STILL_WORKING_EVERY,
    TURN_TIMEOUT,
    ChatResult,
    ChatTurn,
    StillWorking,
)
from nemo_sync._claim_link import claim_link
from nemo_sync._contract import (
    CLAIM_TOKEN_TTL,
    SESSION_ID_KEYS,
    TASK_ID_KEYS,
    path_segment,
    user_id_from,
)
from nemo_sync._envelope import pick, require_object
from nemo_sync._models import Media
from nemo_sync._notebook import in_notebook, still_working_line
from nemo_sync._render_job import RenderJob
from nemo_sync._session_state import SessionState, fetch_state
from nemo_sync._upload import UploadFile, UploadSource
from nemo_sync._upload_body import ProgressCallback
from nemo_sync.errors import ConfigurationError, StreamInterruptedError

logger = logging.getLogger("nemo_sync")

if TYPE_CHECKING:
    from nemo_sync._api import Api
    from nemo_sync._client import NemoClient
    from nemo_sync.draft import Draft


class Session:
    """An editing session on the service, bound to a client.

    Made by :meth:`NemoClient.create_session` or :meth:`NemoClient.session`.

    Attributes:
        id: The session id.
        task_id: The task (project) the session belongs to, when known; browser links
            (:meth:`claim_url`) need it.
        user_id: The service's id for the account (``anon_...`` for an anonymous one) [R],
            when the reply gave it.
        bind_url: The registration link of an anonymous account: the one the reply gave,
            else ``<web_url>/register?bind=<user_id>`` [V 1.9][R]; None for a registered one.
        raw: The reply that created the session (empty when attached by id).
    """

    def __init__(
        self,
        api: Api,
        session_id: str,
        *,
        client: NemoClient,
        task_id: str | None = None,
        user_id: str | None = None,
        bind_url: str | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self._api = api
        self._client = client
        self.id = session_id
        self.task_id = task_id
        self.user_id = user_id
        self.bind_url = bind_url
        self.raw: Mapping[str, Any] = raw or {}
        self._claim: tuple[str, float] | None = None  # (link, event-loop time it lapses)

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, task_id={self.task_id!r})"

    def _repr_html_(self) -> str:
        """In a notebook: the session's id and its browser link (once :meth:`claim_url` made
        one; ``create_session()`` makes it in a notebook)."""
        rows = f"<b>Session</b> <code>{html.escape(self.id)}</code>"
        if self._claim is not None:
            link = html.escape(self._claim[0], quote=True)
            rows += f' &middot; <a href="{link}" target="_blank">open in the browser</a>'
        elif self.task_id:
            rows += " &middot; <code>await session.claim_url()</code> for a browser link"
        return f"<p>{rows}</p>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def client(self) -> NemoClient:
        """The client this session talks through."""
        return self._client

    @classmethod
    def from_data(cls, api: Api, data: Any, endpoint: str, *, client: NemoClient) -> Session:
        """Build a session from the create-session reply: ``task_id`` and ``session_id`` [V]."""
        obj = require_object(data, endpoint)
        session_id = str(pick(obj, *SESSION_ID_KEYS, endpoint=endpoint, kind=(str, int)))
        path_segment(session_id, "the session id in the reply")
        task_id = next((obj[k] for k in TASK_ID_KEYS if isinstance(obj.get(k), (str, int))), None)
        user_id = user_id_from(obj)
        if user_id is not None:
            api.session_user_id = user_id
        bind_url = obj.get("bind_url") or obj.get("bindUrl")
        return cls(
            api,
            session_id,
            client=client,
            task_id=str(task_id) if task_id is not None else None,
            user_id=user_id,
            bind_url=bind_url if isinstance(bind_url, str) else api.bind_link(),
            raw=dict(obj),
        )

    async def claim_url(self) -> str:
        """A link that opens this project in the browser: ``<web_url>/workspace/claim?ct=...``.

        It carries a claim token (``clm_...``), which opens the project and has no API
        access; the bearer token never goes into a URL. The link is cached until its token
        expires.

        Raises:
            ConfigurationError: when the task id is unknown (a session attached by id only:
                pass ``task_id=`` to :meth:`NemoClient.session`).
        """
        loop = asyncio.get_running_loop()
        if self._claim is not None and loop.time() < self._claim[1]:
            return self._claim[0]
        if not self.task_id:
            raise ConfigurationError(
                "claim_url() needs the session's task id: sessions from create_session() "
                "have it; for one attached by id, pass nemo.session(session_id, task_id=...)"
            )
        link, ttl = await claim_link(self._api, self.task_id, self.id)
        # Renewed a minute early, so a link handed out is never about to lapse.
        self._claim = (link, loop.time() + max(0.0, min(ttl, CLAIM_TOKEN_TTL) - 60.0))
        return link

    async def state(self) -> SessionState:
        """The session's current timeline (draft) and media.

        Returns:
            ``SessionState(draft, media, raw, canvas_config, generated_media, ...)``;
            ``draft`` is a :class:`nemo_sync.Draft`.

        Raises:
            SessionNotFoundError: when the session no longer exists.
        """
        return await fetch_state(self._api, self.id)

    def chat(
        self,
        text: str,
        *,
        on_still_working: StillWorking | None = None,
        still_working_every: float = STILL_WORKING_EVERY,
        timeout: float = TURN_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        track_changes: bool = True,
        keep_events: bool = False,
    ) -> ChatTurn:
        """Start a chat turn: ``async with session.chat(text) as turn: async for event in turn``.

        The message is sent exactly once. Text, tool calls, tool results and heartbeats arrive
        as typed events; ``await turn.result()`` gives a :class:`ChatResult`.

        Args:
            text: What to ask, e.g. "sync the background music to my video".
            on_still_working: Called with the elapsed seconds after each
                ``still_working_every`` seconds without the agent's words (sync or async).
            still_working_every: Seconds of silence between ``on_still_working`` calls.
            timeout: The whole turn's deadline in seconds (heartbeats do not extend it).
            idle_timeout: Seconds with nothing but heartbeats after which the turn is treated
                as timed out (the service's rule: 10 minutes).
            track_changes: Fetch the state before and after the turn to report changes.
            keep_events: Keep every event in ``turn.events`` and the result. By default
                memory stays flat however many events the server sends: heartbeats are
                counted (``turn.heartbeats``), consecutive partial text chunks are kept as
                one, and at most 100 unknown events are kept; iterating the turn still
                yields every event as it arrives.

        Raises:
            ValueError: when ``text`` is empty.
        """
        return ChatTurn(
            self._api,
            self.id,
            text,
            on_still_working=on_still_working,
            still_working_every=still_working_every,
            timeout=timeout,
            idle_timeout=idle_timeout,
            track_changes=track_changes,
            keep_events=keep_events,
        )

    async def send(
        self,
        text: str,
        *,
        on_still_working: StillWorking | None = None,
        timeout: float = TURN_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        recover: bool = True,
    ) -> ChatResult:
        """Run a whole chat turn and return what it did (see :meth:`chat`).

        Args:
            text: What to ask.
            on_still_working: See :meth:`chat`.
            timeout: See :meth:`chat`.
            idle_timeout: See :meth:`chat`.
            recover: When the stream drops, follow the service's recovery procedure
                (:meth:`ChatTurn.recover`: about 5 minutes at most) instead of raising at
                once. That includes a connection lost after the request went out but before
                any event came: the message may be in progress at the service. A request
                that never left (a refused connection) is not recovered: its error is
                raised. The message is never sent again either way.

        Raises:
            StreamInterruptedError: the stream dropped and recovery saw no change (or
                ``recover=False``).
            APIConnectionError: the request never reached the service (``request_sent``
                is False).
            AgentError: the agent reported an error.
            APITimeoutError: the turn ran past ``timeout`` or ``idle_timeout``.
        """
        if on_still_working is None and in_notebook():
            on_still_working = still_working_line  # a notebook shows the long turns too
        turn = self.chat(
            text, on_still_working=on_still_working, timeout=timeout, idle_timeout=idle_timeout
        )
        try:
            # Opening the stream is inside the try: a connection lost after the POST went
            # out raises StreamInterruptedError there too (ChatTurn tells it from a refused
            # connection, which it raises as it is).
            async with turn:
                return await turn.result()
        except StreamInterruptedError:
            if not recover:
                raise
            logger.info("the chat stream dropped; recovering from the session state")
        return await turn.recover()

    async def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Media:
        """Upload a video, audio file or image into the session, streamed from its source.

        The file is checked first, and nothing is sent when a check fails: it exists, is a
        regular file, is not empty, has an accepted format (by its extension, and by its
        first bytes when they can be read ahead) and is at most 500 MB. Memory use does not
        grow with the file's size. A retry (after a 429, say) reads the source again from
        its start; streams and unseekable file objects cannot be read twice, so they are not
        retried.

        Args:
            source: A path, bytes, a binary file object (read from its current position),
                or an async iterable of bytes.
            filename: The name to upload it as; needed for bytes and streams. Its extension
                tells the format.
            content_type: Its media type (by default from the format, e.g. ``video/mp4``).
            size: Its size in bytes; needed for streams and unseekable file objects.
            on_progress: Called as ``on_progress(sent_bytes, total_bytes)`` as bytes go out:
                ``(0, total)`` when an attempt starts (again after a retry), last
                ``(total, total)``. It may be a coroutine function.

        Returns:
            The uploaded :class:`Media`.

        Raises:
            InvalidUploadError: when the source cannot be sent as given (missing, a folder,
                empty, no filename or size where one is needed).
            UnsupportedFileError: when its format is not accepted (the message lists them).
            FileTooLargeError: when it is over 500 MB.
            APITimeoutError: when the connection took no data for 5 minutes.
        """
        item = UploadFile(source, filename=filename, content_type=content_type, size=size)
        return await _upload.upload(self._api, self.id, item, on_progress)

    async def upload_urls(self, urls: Sequence[str]) -> list[Media]:
        """Have the service fetch files from URLs into the session.

        Args:
            urls: http(s) URLs. One whose path ends in an extension that is not accepted is
                refused before anything is sent.

        Returns:
            The :class:`Media` made, in the service's order.

        Raises:
            InvalidUploadError: when a URL is not an http(s) URL.
            UnsupportedFileError: when a URL names a file of a format that is not accepted.
        """
        return await _upload.upload_urls(self._api, self.id, urls)

    async def upload_many(
        self,
        sources: Iterable[UploadSource | UploadFile],
        *,
        concurrency: int = 3,
        on_progress: ProgressCallback | None = None,
    ) -> list[Media]:
        """Upload several files, ``concurrency`` at a time (see :meth:`upload`).

        Every source is checked before any is sent. When an upload fails, those already
        running finish, the rest are not sent, and :class:`UploadBatchError` says which
        failed and carries the media of those that made it.

        Args:
            sources: Paths, bytes, file objects or streams; wrap one in
                :class:`UploadFile` to give its ``filename``, ``content_type`` or ``size``.
            concurrency: How many uploads run at once.
            on_progress: Called as ``on_progress(sent_bytes, total_bytes)`` over the whole
                batch.

        Returns:
            The :class:`Media` of each source, in input order.

        Raises:
            UploadBatchError: when any upload failed after the checks passed.
            InvalidUploadError, UnsupportedFileError, FileTooLargeError: when a source fails
                its check (then nothing was sent).
        """
        return await _upload.upload_many(
            self._api, self.id, sources, concurrency=concurrency, on_progress=on_progress
        )

    async def export(
        self,
        draft: Draft | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> RenderJob:
        """Start rendering the timeline to an MP4 (export is free: no credits are spent).

        The canvas (size, aspect) is part of the draft, so there is nothing else to choose.
        The job is recorded under NEMO_HOME before the request goes out, so it can be found
        again (``nemo.jobs()``) if this process dies. A submission that fails is tried once
        more with a new render id, as the service prescribes.

        Args:
            draft: What to render. None sends the session's current timeline back exactly
                as the service gave it; a :class:`Draft` or a wire dict sends that instead.
            idempotency_key: Export once for this key: every call with it, from any process
                sharing the job store (any host, with a :class:`RedisJobStore`), returns the
                same job, and one render request is sent (for 24 hours; docs/fleet.md).

        Returns:
            The :class:`RenderJob`; ``await job.wait()`` then ``await job.download(path)``.

        Raises:
            NothingToExportError: the timeline has no track with segments (nothing is sent).
            ExportBlockedError: the plan does not allow export.
            JobStoreUnavailableError: the job store cannot be reached (with an idempotency
                key nothing is sent then: a duplicate render could follow).
        """
        return await _render_job.export(self._api, self.id, draft, idempotency_key=idempotency_key)
