"""Helpers for testing code that uses nemo-sync.

Three ways, from the most faithful to the lightest (docs/testing.md compares them):

- the emulator over real sockets (``nemo_sync.emulator.Emulator``, or the pytest fixtures
  ``nemo_emulator`` and ``nemo_client``);
- no sockets at all, with ``aioresponses`` (the ``aioresponses-ng`` package) and the reply
  builders here, which produce exactly the documented shapes the SDK reads, in both of the
  vendor's styles (its API reference [R] and SKILL.md 1.9 [V]): :func:`mock_happy_path`
  registers a whole session in one call;
- :func:`disable_waits`, so that retries after a 429 or a dropped connection do not sleep.
"""

from __future__ import annotations

from nemo_sync.testing._mock import HappyPath, mock_happy_path
from nemo_sync.testing._replies import (
    ReplyStyle,
    credits_reply,
    error_reply,
    media_item,
    refused_reply,
    render_status_reply,
    render_submitted_reply,
    session_reply,
    state_reply,
    token_reply,
    upload_reply,
)
from nemo_sync.testing._sse_bodies import (
    adk_error,
    adk_text,
    adk_tool_call,
    adk_tool_result,
    heartbeat,
    simple_text,
    simple_tool_call,
    simple_tool_result,
    sse_body,
)
from nemo_sync.testing._waits import disable_waits

__all__ = [
    "HappyPath",
    "ReplyStyle",
    "adk_error",
    "adk_text",
    "adk_tool_call",
    "adk_tool_result",
    "credits_reply",
    "disable_waits",
    "error_reply",
    "heartbeat",
    "media_item",
    "mock_happy_path",
    "refused_reply",
    "render_status_reply",
    "render_submitted_reply",
    "session_reply",
    "simple_text",
    "simple_tool_call",
    "simple_tool_result",
    "sse_body",
    "state_reply",
    "token_reply",
    "upload_reply",
]
