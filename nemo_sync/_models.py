"""Small result types returned by the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from nemo_sync._contract import (
    MEDIA_ID_KEYS,
    MEDIA_KIND_KEYS,
    MEDIA_NAME_KEYS,
    MEDIA_URL_KEYS,
    media_kind,
)
from nemo_sync._envelope import pick, require_object
from nemo_sync.errors import APIResponseError


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


def _first_text(obj: Mapping[str, Any], keys: tuple[str, ...], limit: int = 4096) -> str | None:
    """The first of ``keys`` holding a non-empty string (ids and URLs are short; a huge one is
    not trusted)."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value and len(value) <= limit:
            return value
    return None


def _duration_ms(obj: Mapping[str, Any]) -> int | None:
    """A positive, finite length: ``duration_ms``, else ``duration`` in seconds [R]."""
    for key, scale in (("duration_ms", 1.0), ("duration", 1000.0)):
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ms = value * scale
            if 0 < ms < 10**12:  # also false for NaN
                return int(ms)
    return None


def _pixels(obj: Mapping[str, Any], key: str) -> int | None:
    """A width or height: a whole, positive number of pixels below 100,000."""
    value = obj.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000:
        return value
    return None


def _fps(obj: Mapping[str, Any]) -> int | float | None:
    value = obj.get("fps")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1000:
        return int(value) if isinstance(value, float) and value.is_integer() else value
    return None


@attrs.frozen(kw_only=True)
class Media:
    """A media file in a session (an upload, or one the agent made).

    The service's API reference shows media without an id [R]: an item is known by its
    ``cdn_url`` and its file name. Some replies do carry an id; it is kept when given.

    Attributes:
        name: The file name (``filename``).
        kind: ``"video"``, ``"audio"``, ``"image"`` (``file_type``), else from the extension
            (``"unknown"`` when neither says).
        id: The media id, when the reply gave one (``file_id``, ``media_id``, ``id`` or
            ``asset_id``); ``None`` otherwise, which is how the service's reference answers.
        url: Where the service keeps it (``cdn_url`` [R], ``url`` or ``asset_url``).
        size: Size in bytes: the service's, else (for an upload) the bytes sent; 0 when
            neither is known.
        duration_ms: Its length in ms (``duration`` in seconds [R], or ``duration_ms``).
        width: Width in pixels (video and images), when said.
        height: Height in pixels, when said.
        fps: Frames per second (video), when said.
        hash: The service's content hash, when said.
        raw: Everything the service said about it, unchanged.
    """

    name: str
    kind: str
    id: str | None = None
    url: str | None = None
    # Not part of equality: an upload knows the bytes it sent, a state reply may not say.
    size: int = attrs.field(default=0, eq=False)
    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None
    fps: int | float | None = None
    hash: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def key(self) -> str:
        """What identifies this media to the service: its id when it has one, else its URL,
        else its file name. Draft segments built from it refer to it by this."""
        return self.id or self.url or self.name

    @classmethod
    def from_data(cls, data: Any, endpoint: str) -> Media:
        """Parse one media object in any documented shape (ids and URLs under any of the
        vendor's names; none of them required but one that names the media).

        Raises:
            APIResponseError: when the object is not an object, or names no media at all
                (no id, no URL, no file name).
        """
        obj = require_object(data, endpoint)
        media_id = _first_text(obj, MEDIA_ID_KEYS, limit=256)
        url = _first_text(obj, MEDIA_URL_KEYS)
        name = _first_text(obj, MEDIA_NAME_KEYS, limit=1024)
        if media_id is None and url is None and name is None:
            raise APIResponseError(
                "a media object names no media: none of "
                + ", ".join(MEDIA_ID_KEYS + MEDIA_URL_KEYS + MEDIA_NAME_KEYS),
                endpoint=endpoint,
            )
        if name is None:
            # The last segment of its URL reads better than an id as a name.
            name = url.rsplit("/", 1)[-1].split("?", 1)[0] if url else None
            name = name or str(media_id)
        size = obj.get("size")
        kind_given = next(
            (obj[k] for k in MEDIA_KIND_KEYS if isinstance(obj.get(k), str) and obj[k]), None
        )
        hash_value = _first_text(obj, ("hash", "sha256"), limit=256)
        return cls(
            id=media_id,
            name=name,
            size=int(size)
            if isinstance(size, (int, float)) and not isinstance(size, bool) and 0 <= size < 2**63
            else 0,
            kind=_media_kind(name, kind_given),
            url=url,
            duration_ms=_duration_ms(obj),
            width=_pixels(obj, "width"),
            height=_pixels(obj, "height"),
            fps=_fps(obj),
            hash=hash_value,
            raw=dict(obj),
        )
