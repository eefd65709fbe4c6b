"""Small result types returned by the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._contract import (
    MEDIA_ID_KEYS,
    MEDIA_NAME_KEYS,
    MEDIA_URL_KEYS,
    media_kind,
)
from nemo_sync._envelope import pick, require_object

if TYPE_CHECKING:
    pass


def _whole(value: int | float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number(data: Mapping[str, Any], name: str, endpoint: str) -> int | float:
    return _whole(pick(data, name, endpoint=endpoint, kind=(int, float)))


@attrs.frozen
class Credits:
    """The account's credit balance.

    Attributes:
        available: Credits that can be spent now.
        frozen: Credits held by running jobs (charged or released when they end).
        total: available + frozen, as the service reports it (computed when it does not).
    """

    available: int | float
    frozen: int | float
    total: int | float

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> Credits:
        """Parse the ``data`` of the balance endpoint."""
        if type(data) is dict and "available" in data:
            # The per-call case: whole numbers, taken as they are (bool is no int here).
            available = data["available"]
            frozen = data.get("frozen", 0)
            total = data.get("total", None)
            if type(available) is int and type(frozen) is int:
                if total is None:
                    return cls(available, frozen, available + frozen)
                if type(total) is int:
                    return cls(available, frozen, total)
        obj = require_object(data, endpoint)
        available = _number(obj, "available", endpoint)
        frozen = _number(obj, "frozen", endpoint) if obj.get("frozen") is not None else 0
        # [R]: total = available + frozen; computed when the reply leaves it out.
        total = (
            _number(obj, "total", endpoint)
            if obj.get("total") is not None
            else _whole(available + frozen)
        )
        return cls(available=available, frozen=frozen, total=total)


def _media_kind(name: str, given: Any) -> str:
    if isinstance(given, str) and given:
        return given
    return media_kind(name.rsplit(".", 1)[-1] if "." in name else "")


def _duration_ms(obj: Mapping[str, Any]) -> int | None:
    """A positive, finite length: ``duration_ms``, else ``duration`` in seconds."""
    for key, scale in (("duration_ms", 1.0), ("duration", 1000.0)):
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ms = value * scale
            if 0 < ms < 10**12:  # also false for NaN
                return int(ms)
    return None


@attrs.frozen
class Media:
    """A media file in a session (an upload, or one the agent made).

    Attributes:
        id: The media id (``file_id``, ``media_id``, ``id`` or ``asset_id`` on the wire).
        name: The file name.
        size: Size in bytes (0 when the service did not say).
        kind: ``"video"``, ``"audio"``, ``"image"`` or ``"unknown"``.
        url: Where the service keeps it (``url`` or ``asset_url``), when it says.
        duration_ms: Its length in ms (``duration_ms``, or ``duration`` in seconds), when said.
        raw: Everything the service said about it, unchanged.
    """

    id: str
    name: str
    size: int
    kind: str
    url: str | None = attrs.field(default=None, kw_only=True)
    duration_ms: int | None = attrs.field(default=None, kw_only=True)
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
            duration_ms=_duration_ms(obj),
            raw=dict(obj),
        )
