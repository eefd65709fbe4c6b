"""The emulator's settings (constructor arguments), shared by its parts."""

from __future__ import annotations

from typing import Any, Literal

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


ReplyStyle = Literal["reference", "skill"]
REPLY_STYLES: tuple[ReplyStyle, ...] = ("reference", "skill")
ChatEvents = Literal["adk", "simple"]
CHAT_EVENT_FORMS: tuple[ChatEvents, ...] = ("adk", "simple")


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
    # With reply_style="skill": [V] says the render status is "at top-level `status`" (bare);
    # this wraps it in {code, message, data} instead (clients read both).
    render_status_enveloped: bool = False
    gui_phrase_ratio: float = attrs.field(default=0.5, validator=_ratio)
    # Whose reply shapes to answer in: the vendor's API reference [R] (the fuller examples,
    # the default) or SKILL.md 1.9 [V]. Clients must read both (contract v3).
    reply_style: ReplyStyle = attrs.field(
        default="reference", validator=attrs.validators.in_(REPLY_STYLES)
    )
    # The chat stream: Google ADK's events (what the service runs [A]) or [R]'s simple ones.
    chat_events: ChatEvents = attrs.field(
        default="adk", validator=attrs.validators.in_(CHAT_EVENT_FORMS)
    )
    # The service refuses a client id's second anonymous token within 7 days (HTTP 429) [V];
    # an emulator that is the user's own (the CLI's --local) gives the same account a new
    # one instead, so lost credentials never lock its owner out of their projects.
    reissue_anonymous_tokens: bool = False

    @property
    def reference_replies(self) -> bool:
        """Whether replies take the API reference's shapes [R] (else SKILL.md 1.9's [V])."""
        return self.reply_style == "reference"
