"""Small result types returned by the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._contract import (
    MEDIA_ID_KEYS,
    MEDIA_NAME_KEYS,
    MEDIA_URL_KEYS,
    STATE_CANVAS_KEY,
    STATE_DRAFT_KEY,
    STATE_GENERATED_KEY,
    STATE_KEY,
    STATE_MEDIA_KEY,
    is_exportable,
    media_kind,
)
from nemo_sync._envelope import loads_strict, pick, require_object
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
        id: The media id (``file_id``, ``media_id``, ``id`` or ``asset_id`` on the wire).
        name: The file name.
        size: Size in bytes (0 when the service did not say).
        kind: ``"video"``, ``"audio"``, ``"image"`` or ``"unknown"``.
        url: Where the service keeps it (``url`` or ``asset_url``), when it says.
        raw: Everything the service said about it, unchanged.
    """

    id: str
    name: str
    size: int
    kind: str
    url: str | None = attrs.field(default=None, kw_only=True)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, kw_only=True)

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> Media:
        """Parse one media object; the id and URL may come under any of the vendor's names."""
        obj = require_object(data, endpoint)
        media_id = pick(obj, *MEDIA_ID_KEYS, endpoint=endpoint, kind=(str, int))
        name = next(
            (obj[k] for k in MEDIA_NAME_KEYS if isinstance(obj.get(k), str) and obj[k]),
            str(media_id),
        )
        url = next((obj[k] for k in MEDIA_URL_KEYS if isinstance(obj.get(k), str) and obj[k]), None)
        size = obj.get("size")
        return cls(
            id=str(media_id),
            name=str(name),
            size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else 0,
            kind=_media_kind(str(name), obj.get("kind") or obj.get("type")),
            url=url,
            raw=dict(obj),
        )


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
        from nemo_sync.draft import Draft

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
