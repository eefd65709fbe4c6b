"""The one converter between the models and the service's short-key JSON.

``WIRE_NAMES`` is the only place that knows the short keys. Unknown keys, and known keys whose
values are not of the expected type (a float where an int belongs, a null), are kept in the
model's ``extra`` and written back unchanged, so ``to_wire(from_wire(d)) == d`` for any
draft-shaped JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from nemo_sync._contract import DURATION_KEY, METADATA_KEY, TRACKS_KEY
from nemo_sync._envelope import nests_deeper_than
from nemo_sync.draft._parts import Segment, Track, TrackType
from nemo_sync.errors import DraftFormatError

# How deep a draft's JSON may nest, the draft object itself being level 1. Real drafts use
# about 6 levels. The copies (deepcopy), json.dumps and == all recurse, about two Python frames
# a level, so a limit well under the interpreter's 1000 keeps all of them safe.
MAX_DEPTH = 100


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise DraftFormatError when ``value`` nests lists and objects deeper than ``limit``."""
    if nests_deeper_than(value, limit):
        raise DraftFormatError(f"the draft's JSON is nested deeper than {limit} levels")


# attribute -> (wire key, accepted JSON types). bool is never accepted as a number.
_INT = (int,)
_NUM = (int, float)
WIRE_NAMES: dict[type, dict[str, tuple[str, tuple[type, ...]]]] = {
    Segment: {
        "id": ("id", (str,)),
        "media_id": ("mid", (str,)),
        "name": ("n", (str,)),
        "start_ms": ("st", _INT),
        "duration_ms": ("d", _INT),
        "source_start_ms": ("in", _INT),
        "volume": ("v", _NUM),
        "text": ("x", (str,)),
    },
    Track: {
        "id": ("id", (str,)),
        "track_type": ("tt", _INT),
        "name": ("n", (str,)),
        "segments": ("sg", (list,)),
    },
}
_STRICT_LISTS = {"sg", "t"}  # a wrong type here is a broken draft, not an unknown value


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return False
    return type(value) in kinds or (float in kinds and type(value) is int)


def _keep(value: Any, _type: Any) -> Any:
    return value


converter = cattrs.Converter()


def _structure_factory(cl: type) -> Callable[[Any, Any], Any]:
    names = WIRE_NAMES[cl]
    overrides = {attr: override(rename=key) for attr, (key, _) in names.items()}
    if cl is Segment:
        # Keep the volume exactly as sent (1 stays 1, 0.35 stays 0.35).
        overrides["volume"] = override(rename="v", struct_hook=_keep)
    overrides["extra"] = override(omit=True)
    overrides["wire_keys"] = override(omit=True)
    base: Callable[[Any, Any], Any] = make_dict_structure_fn(cl, converter, **overrides)  # type: ignore[arg-type]
    by_key = dict(names.values())

    def structure(obj: Any, _type: Any) -> Any:
        if not isinstance(obj, Mapping):
            raise DraftFormatError(f"a {cl.__name__.lower()} must be an object, got {obj!r:.60}")
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            kinds = by_key.get(key)
            if kinds is not None and _fits(value, kinds):
                known[key] = value
            elif key in _STRICT_LISTS and value is not None:
                raise DraftFormatError(f"'{key}' must be a list, got {type(value).__name__}")
            else:
                extra[key] = copy.deepcopy(value)
        instance = base(known, cl)
        instance.extra = extra
        instance.wire_keys = frozenset(obj)
        return instance

    return structure


def _unstructure_factory(cl: type) -> Callable[[Any], dict[str, Any]]:
    names = WIRE_NAMES[cl]
    overrides = {attr: override(rename=key) for attr, (key, _) in names.items()}
    overrides["extra"] = override(omit=True)
    overrides["wire_keys"] = override(omit=True)
    base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cl, converter, **overrides)  # type: ignore[arg-type]

    def unstructure(instance: Any) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(instance.extra)
        for key, value in base(instance).items():
            if value is None:
                continue
            if value == [] and (key not in instance.wire_keys or key in instance.extra):
                continue  # an empty list the wire never had (or had as something else)
            out[key] = value
        return out

    return unstructure


converter.register_structure_hook(TrackType, lambda value, _t: TrackType(value))
converter.register_unstructure_hook(TrackType, int)
converter.register_structure_hook_factory(lambda cl: cl in WIRE_NAMES, _structure_factory)
converter.register_unstructure_hook_factory(lambda cl: cl in WIRE_NAMES, _unstructure_factory)


def tracks_from_wire(raw: Any) -> list[Track]:
    """Structure the ``t`` list."""
    if not isinstance(raw, list):
        raise DraftFormatError(f"'t' must be a list, got {type(raw).__name__}")
    return [converter.structure(item, Track) for item in raw]


def tracks_to_wire(tracks: list[Track]) -> list[dict[str, Any]]:
    """Unstructure the tracks."""
    return [converter.unstructure(track, Track) for track in tracks]


# The draft itself: its three known keys, then everything else kept as it came.
DRAFT_KEYS = {"tracks": TRACKS_KEY, "duration_ms": DURATION_KEY, "metadata": METADATA_KEY}


def register_draft(cls: type[_DraftLike]) -> None:
    """Give ``cls`` (``Draft``) its structure and unstructure hooks on the one converter.

    ``Draft`` lives in ``_draft.py`` with its behaviour; how it maps to the wire lives here,
    beside every other short key.
    """
    t_key, d_key, m_key = TRACKS_KEY, DURATION_KEY, METADATA_KEY

    def structure(obj: Any, _type: Any) -> _DraftLike:
        if not isinstance(obj, Mapping):
            raise DraftFormatError(f"a draft must be a JSON object, got {type(obj).__name__}")
        check_depth(obj)  # before anything recurses into it
        draft = cls()
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            if key == t_key and value is not None:
                draft.tracks = tracks_from_wire(value)
            elif key == d_key and type(value) is int:
                draft.duration_ms = value
            elif key == m_key and isinstance(value, dict):
                draft.metadata = copy.deepcopy(value)
            else:
                extra[key] = copy.deepcopy(value)
        draft.extra = extra
        draft.wire_keys = frozenset(obj)
        return draft

    def unstructure(draft: _DraftLike) -> dict[str, Any]:
        out = copy.deepcopy(draft.extra)
        # A key kept in extra (say "m": null) wins over an empty default written in its place.
        if draft.tracks or (t_key in draft.wire_keys and t_key not in draft.extra):
            out[t_key] = tracks_to_wire(draft.tracks)
        if draft.duration_ms is not None:
            out[d_key] = draft.duration_ms
        if draft.metadata or (m_key in draft.wire_keys and m_key not in draft.extra):
            out[m_key] = copy.deepcopy(draft.metadata)
        return out

    converter.register_structure_hook(cls, structure)
    converter.register_unstructure_hook(cls, unstructure)


class _DraftLike(Protocol):
    """What the draft hooks need of ``Draft`` (declared here so this module imports no model
    that imports it back)."""

    tracks: list[Track]
    duration_ms: int | None
    metadata: dict[str, Any]
    extra: dict[str, Any]
    wire_keys: frozenset[str]

    def __init__(self) -> None: ...
