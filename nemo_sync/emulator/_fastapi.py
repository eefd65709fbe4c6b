"""FastAPI-style refusals: HTTP 422 and ``{"detail": [...]}`` for a body that does not fit.

The service (and ADK's ``/run_sse``) validates request bodies with pydantic models, so a body
of the wrong shape is refused by FastAPI itself, before any handler runs: HTTP 422, not the
``{code, message, data}`` envelope. A v1-shaped request meets exactly this on the real service,
so the emulator answers it the same way; a client tested here learns to read the detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from nemo_sync.emulator._api_errors import ApiError

# pydantic v2's error types and messages for the types the API's models use.
_TYPE_ERRORS: Mapping[str, tuple[type, str, str]] = {
    "str": (str, "string_type", "Input should be a valid string"),
    "dict": (dict, "dict_type", "Input should be a valid dictionary"),
    "list": (list, "list_type", "Input should be a valid list"),
    "model": (
        dict,
        "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
    ),
}


class DetailError(ApiError):
    """A refusal FastAPI would send: ``{"detail": ...}`` at ``status``, not enveloped."""

    def __init__(self, detail: Any, *, status: int = 422) -> None:
        super().__init__(status, detail_text(detail), status=status)
        self.detail = detail

    def envelope(self) -> dict[str, Any]:
        """The JSON body (FastAPI's shape, whatever this class's parent calls it)."""
        return {"detail": self.detail}


def detail_text(detail: Any) -> str:
    """A one-line summary of a detail, for logs and exception messages."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
            for item in detail
            if isinstance(item, dict)
        )
    return str(detail)


def missing(loc: Sequence[str | int], input_: Any) -> dict[str, Any]:
    """pydantic's item for a required field that is absent."""
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": input_}


def wrong_type(loc: Sequence[str | int], kind: str, input_: Any) -> dict[str, Any]:
    """pydantic's item for a field of the wrong type (``kind``: a key of ``_TYPE_ERRORS``)."""
    _, error_type, message = _TYPE_ERRORS[kind]
    return {"type": error_type, "loc": list(loc), "msg": message, "input": input_}


def literal(loc: Sequence[str | int], allowed: Iterable[str], input_: Any) -> dict[str, Any]:
    """pydantic's item for a ``Literal[...]`` field given another value."""
    options = [repr(a) for a in allowed]
    expected = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
    return {
        "type": "literal_error",
        "loc": list(loc),
        "msg": f"Input should be {expected}",
        "input": input_,
        "ctx": {"expected": expected},
    }


def refuse(items: list[dict[str, Any]]) -> DetailError:
    """HTTP 422 listing every problem found (FastAPI reports them all at once)."""
    return DetailError(items)


@attrs.frozen
class Field:
    """One field of a body model: its wire name, its type, and whether it is required."""

    name: str
    kind: str
    required: bool = True


async def read_json_body(request: web.Request) -> Any:
    """The parsed JSON body, refused the way FastAPI refuses an empty or broken one.

    Raises:
        DetailError: 422 ``missing`` for no body, ``json_invalid`` for a body that is not JSON.
    """
    raw = await request.read()
    if not raw.strip():
        raise refuse([missing(["body"], None)])
    try:
        return json.loads(raw)
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        reason = getattr(exc, "msg", str(exc))
        raise refuse(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", position],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ]
        ) from None


def validate(body: Any, fields: Sequence[Field]) -> dict[str, Any]:
    """``body`` checked against a model's fields (extra keys ignored, as pydantic does).

    Returns:
        The body (an object whose declared fields have the declared types).

    Raises:
        DetailError: 422 listing every missing or mistyped field, in declaration order.
    """
    if not isinstance(body, dict):
        raise refuse([wrong_type(["body"], "model", body)])
    problems: list[dict[str, Any]] = []
    for field in fields:
        if field.name not in body:
            if field.required:
                # pydantic puts the whole object being validated in a missing field's input.
                problems.append(missing(["body", field.name], body))
            continue
        value = body[field.name]
        expected, _, _ = _TYPE_ERRORS[field.kind]
        # An optional field may be null; a required one may not (pydantic: a type error).
        if (value is not None or field.required) and not isinstance(value, expected):
            problems.append(wrong_type(["body", field.name], field.kind, value))
    if problems:
        raise refuse(problems)
    return body
