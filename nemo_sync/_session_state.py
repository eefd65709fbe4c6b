"""A session's state [V]: the model of ``GET /api/state/.../latest`` and the call that reads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._contract import (
    STATE_CANVAS_KEY,
    STATE_DRAFT_KEY,
    STATE_GENERATED_KEY,
    STATE_KEY,
    STATE_MEDIA_KEY,
    is_exportable,
    state_path,
)
from nemo_sync._envelope import loads_strict, require_object
from nemo_sync._models import Media
from nemo_sync.draft import Draft
from nemo_sync.errors import APIResponseError

if TYPE_CHECKING:
    from nemo_sync._api import Api


def _media_list(value: Any, where: str, endpoint: str) -> tuple[Media, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise APIResponseError(
            f"'{where}' should be a list, got {type(value).__name__}", endpoint=endpoint
        )
    return tuple(Media.from_data(item, endpoint) for item in value if isinstance(item, Mapping))


@attrs.frozen
class SessionState:
    """A session's state [V]: ``data.state.draft``, ``.video_infos``, ``.canvas_config``, ...

    Attributes:
        draft: The timeline (an empty draft when the session has none yet).
        media: The media in the session (``video_infos``).
        canvas_config: The canvas (size, background...), as the service sent it.
        generated_media: Media the agent generated, as the service sent it.
        draft_wire: The draft exactly as the service sent it (what an export sends back).
        raw: The whole reply's ``data``, unchanged (``bind_url`` and other fields live here).
    """

    draft: Draft
    media: tuple[Media, ...]
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)
    canvas_config: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    generated_media: tuple[Any, ...] = attrs.field(default=(), repr=False, eq=False)
    draft_wire: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def bind_url(self) -> str | None:
        """The registration link, when the service includes one."""
        value = self.raw.get("bind_url") or self.raw.get("bindUrl")
        return value if isinstance(value, str) else None

    @property
    def exportable(self) -> bool:
        """Whether the draft has a track with segments: something to render [V]."""
        return is_exportable(self.draft_wire)

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> SessionState:
        """Parse the state reply: ``data.state.*`` [V], or the same keys directly in ``data``."""
        obj = require_object(data, endpoint)
        inner = obj.get(STATE_KEY)
        state: Mapping[str, Any] = inner if isinstance(inner, Mapping) else obj
        where = "data.state" if state is not obj else "data"
        wire = state.get(STATE_DRAFT_KEY)
        if isinstance(wire, str):
            # Some backends send the draft as a JSON string.
            try:
                wire = loads_strict(wire)
            except ValueError:
                raise APIResponseError(
                    f"'{where}.draft' is a string that is not JSON", endpoint=endpoint
                ) from None
        if wire is not None and not isinstance(wire, Mapping):
            raise APIResponseError(
                f"'{where}.draft' should be an object, got {type(wire).__name__}",
                endpoint=endpoint,
            )
        try:
            draft = Draft.from_wire(wire if wire is not None else {})
        except (ValueError, TypeError, APIResponseError) as exc:
            raise APIResponseError(
                f"'{where}.draft' is not a draft: {exc}", endpoint=endpoint
            ) from exc
        media_key = STATE_MEDIA_KEY if STATE_MEDIA_KEY in state else "media"
        canvas = state.get(STATE_CANVAS_KEY)
        generated = state.get(STATE_GENERATED_KEY)
        return cls(
            draft=draft,
            media=_media_list(state.get(media_key), f"{where}.{media_key}", endpoint),
            raw=dict(obj),
            canvas_config=dict(canvas) if isinstance(canvas, Mapping) else {},
            generated_media=tuple(generated) if isinstance(generated, list) else (),
            draft_wire=dict(wire) if isinstance(wire, Mapping) else None,
        )


async def fetch_state(api: Api, session_id: str) -> SessionState:
    """Read a session's state.

    Raises:
        SessionNotFoundError: when the session no longer exists.
        APIResponseError: when the reply is not a state.
    """
    path = state_path(session_id)
    return SessionState.from_data(await api.request("GET", path), f"GET {path}")
