"""Small result types returned by the client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._contract import media_kind
from nemo_sync._envelope import pick, require_object
from nemo_sync.errors import APIResponseError

if TYPE_CHECKING:
    from nemo_sync.draft import Draft


def _number(data: Mapping[str, Any], name: str, endpoint: str) -> int | float:
    value = pick(data, name, endpoint=endpoint, kind=(int, float))
    return int(value) if isinstance(value, float) and value.is_integer() else value


@attrs.frozen
class Credits:
    """The account's credit balance.

    Attributes:
        available: Credits that can be spent now.
        frozen: Credits held by running jobs (charged or released when they end).
        total: available + frozen, as the service reports it.
    """

    available: int | float
    frozen: int | float
    total: int | float

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> Credits:
        """Parse the ``data`` of the balance endpoint."""
        obj = require_object(data, endpoint)
        return cls(
            available=_number(obj, "available", endpoint),
            frozen=_number(obj, "frozen", endpoint) if "frozen" in obj else 0,
            total=_number(obj, "total", endpoint) if "total" in obj else 0,
        )


def _media_kind(name: str, given: Any) -> str:
    if isinstance(given, str) and given:
        return given
    return media_kind(name.rsplit(".", 1)[-1] if "." in name else "")


@attrs.frozen
class Media:
    """A media file in a session (an upload, or one the agent made).

    Attributes:
        id: The media id (``media_id`` or ``id`` on the wire).
        name: The file name.
        size: Size in bytes (0 when the service did not say).
        kind: ``"video"``, ``"audio"``, ``"image"`` or ``"unknown"``.
        raw: Everything the service said about it, unchanged.
    """

    id: str
    name: str
    size: int
    kind: str
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> Media:
        """Parse one media object (accepts ``media_id``/``id``/``mediaId``)."""
        obj = require_object(data, endpoint)
        media_id = pick(obj, "media_id", "mediaId", "id", endpoint=endpoint, kind=(str, int))
        name = obj.get("name") or obj.get("filename") or obj.get("file_name") or str(media_id)
        size = obj.get("size")
        return cls(
            id=str(media_id),
            name=str(name),
            size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else 0,
            kind=_media_kind(str(name), obj.get("kind") or obj.get("type")),
            raw=dict(obj),
        )


@attrs.frozen
class SessionState:
    """A session's state: its timeline and media.

    Attributes:
        draft: The timeline (an empty draft when the session has none yet).
        media: The media in the session.
        raw: The whole reply's ``data``, unchanged (``bind_url`` and other fields live here).
    """

    draft: Draft
    media: tuple[Media, ...]
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)

    @property
    def bind_url(self) -> str | None:
        """The registration link, when the service includes one."""
        value = self.raw.get("bind_url") or self.raw.get("bindUrl")
        return value if isinstance(value, str) else None

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> SessionState:
        """Parse the state reply (the draft under ``data.draft`` or ``data.state.draft``)."""
        from nemo_sync.draft import Draft

        obj = require_object(data, endpoint)
        wire = obj.get("draft")
        if wire is None and isinstance(obj.get("state"), Mapping):
            wire = obj["state"].get("draft")
        if isinstance(wire, str):
            # Some backends send the draft as a JSON string.
            try:
                wire = json.loads(wire)
            except ValueError:
                raise APIResponseError(
                    "'data.draft' is a string that is not JSON", endpoint=endpoint
                ) from None
        try:
            draft = Draft.from_wire(wire if wire is not None else {})
        except (ValueError, TypeError, APIResponseError) as exc:
            raise APIResponseError(
                f"'data.draft' is not a draft: {exc}", endpoint=endpoint
            ) from exc
        raw_media = obj.get("media")
        if raw_media is None and isinstance(obj.get("state"), Mapping):
            raw_media = obj["state"].get("media")
        if raw_media is None:
            raw_media = []
        if not isinstance(raw_media, list):
            raise APIResponseError(
                f"'data.media' should be a list, got {type(raw_media).__name__}",
                endpoint=endpoint,
            )
        return cls(
            draft=draft,
            media=tuple(Media.from_data(m, endpoint) for m in raw_media),
            raw=dict(obj),
        )
