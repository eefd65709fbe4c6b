"""Small result types returned by the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from nemo_sync._envelope import pick, require_object


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
