"""Session: one editing session (its timeline persists between chat turns)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nemo_sync._chat import STILL_WORKING_EVERY, TURN_TIMEOUT, ChatResult, ChatTurn, StillWorking
from nemo_sync._envelope import pick, require_object
from nemo_sync._models import SessionState

if TYPE_CHECKING:
    from nemo_sync._client import NemoClient


class Session:
    """An editing session on the service, bound to a client.

    Made by :meth:`NemoClient.create_session` or :meth:`NemoClient.session`.

    Attributes:
        id: The session id.
        bind_url: The registration link the service gave with the session, if any.
        raw: The reply that created the session (empty when attached by id).
    """

    def __init__(
        self,
        client: NemoClient,
        session_id: str,
        *,
        bind_url: str | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self.id = session_id
        self.bind_url = bind_url
        self.raw: Mapping[str, Any] = raw or {}

    def __repr__(self) -> str:
        return f"Session(id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def client(self) -> NemoClient:
        """The client this session talks through."""
        return self._client

    @classmethod
    def from_data(cls, client: NemoClient, data: Any, endpoint: str) -> Session:
        """Build a session from the create-session reply (``session_id``/``id``/``sessionId``)."""
        obj = require_object(data, endpoint)
        session_id = pick(obj, "session_id", "sessionId", "id", endpoint=endpoint, kind=(str, int))
        bind_url = obj.get("bind_url") or obj.get("bindUrl")
        return cls(
            client,
            str(session_id),
            bind_url=bind_url if isinstance(bind_url, str) else None,
            raw=dict(obj),
        )

    @property
    def _state_path(self) -> str:
        return f"/api/state/nemo_agent/me/{self.id}/latest"

    async def state(self) -> SessionState:
        """The session's current timeline (draft) and media.

        Returns:
            ``SessionState(draft, media, raw)``; ``draft`` is a :class:`nemo_sync.Draft`.

        Raises:
            SessionNotFoundError: when the session no longer exists.
        """
        path = self._state_path
        data = await self._client._request("GET", path)
        return SessionState.from_data(data, f"GET {path}")

    def chat(
        self,
        text: str,
        *,
        on_still_working: StillWorking | None = None,
        still_working_every: float = STILL_WORKING_EVERY,
        timeout: float = TURN_TIMEOUT,
        track_changes: bool = True,
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
            track_changes: Fetch the state before and after the turn to report changes.

        Raises:
            ValueError: when ``text`` is empty.
        """
        return ChatTurn(
            self,
            text,
            on_still_working=on_still_working,
            still_working_every=still_working_every,
            timeout=timeout,
            track_changes=track_changes,
        )

    async def send(
        self,
        text: str,
        *,
        on_still_working: StillWorking | None = None,
        timeout: float = TURN_TIMEOUT,
    ) -> ChatResult:
        """Run a whole chat turn and return what it did (see :meth:`chat`)."""
        async with self.chat(text, on_still_working=on_still_working, timeout=timeout) as turn:
            return await turn.result()
