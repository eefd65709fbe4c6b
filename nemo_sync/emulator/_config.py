"""The emulator's settings (constructor arguments), shared by its parts."""

from __future__ import annotations

from typing import Any

import attrs

from nemo_sync._contract import MAX_UPLOAD_BYTES


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more; got {value}")


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be more than 0; got {value}")


def _ratio(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1; got {value}")


@attrs.define
class Config:
    """Tunable behaviour; see :class:`nemo_sync.emulator.Emulator` for each setting."""

    render_seconds: float = attrs.field(default=0.5, validator=_non_negative)
    chat_latency: float = attrs.field(default=0.0, validator=_non_negative)
    heartbeat_interval: float = attrs.field(default=0.2, validator=_positive)
    silent_ratio: float = attrs.field(default=0.3, validator=_ratio)
    chat_cost: int = attrs.field(default=1, validator=_non_negative)
    max_upload_bytes: int = attrs.field(default=MAX_UPLOAD_BYTES, validator=_non_negative)
    export_requires_plan: bool = False
    strict_attribution: bool = False
    # [V] says the render status is "at top-level `status`" (bare); [T] reads either.
    render_status_enveloped: bool = False
    gui_phrase_ratio: float = attrs.field(default=0.5, validator=_ratio)
