"""Record what a real google-adk API server sends on ``POST /run_sse``, byte for byte.

The SDK's tests replay these recordings (``tests/test_adk_replay.py``) so the chat path is
checked against bytes this project did not write. Not part of the test run: it needs the
optional extra ``adk`` (``pip install -e '.[adk]'``), which the test suite never installs.

What it does: builds google-adk's own ``get_fast_api_app(...)`` (the app behind
``adk api_server``), with an agent loader that serves one scripted ``BaseAgent`` as
``nemo_agent``. The agent calls no model and no network: it reads the scenario's name from
the user's message and yields the ADK ``Event`` objects that scenario needs. The app runs
under uvicorn on a free loopback port; for each scenario the script creates a session
through ADK's session API, POSTs the body the SDK sends, and writes the response body as
received (transfer encoding removed, nothing else touched) to
``tests/adk_recordings/<scenario>.sse``. ``manifest.json`` says what each file is, plus the
ADK version, the status and headers, and the expected values the tests check against.

Run from the repository root::

    python scripts/record_adk_streams.py            # writes tests/adk_recordings/
    python scripts/record_adk_streams.py --out DIR  # somewhere else

ADK makes event ids, invocation ids and timestamps itself; they differ on every run and
are recorded as they come. Everything the agent decides (texts, tool ids, args, deltas,
the exception) is fixed, so two runs differ only in those ADK-made fields.

The two crash scenarios make ADK log the agent's traceback on stderr: that is ADK's normal
reaction (``logger.exception``), not a failure of the script.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import uvicorn
from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.invocation_context import InvocationContext
from google.adk.cli.fast_api import get_fast_api_app
from google.adk.cli.utils.base_agent_loader import BaseAgentLoader
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

APP = "nemo_agent"
USER = "me"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "adk_recordings"


def big_reply() -> str:
    """About 300 KB of text, the same on every run, mixing ASCII, CJK and an emoji.

    Numbered lines make a lost or repeated slice visible in a diff, and the multi-byte
    characters land on every alignment relative to the decoder's chunk boundaries.
    """
    lines = [
        f"{i:05d} cut at {i * 0.25:.2f}s, beat {i % 4 + 1}/4, 节拍对齐 🎬 keep the rhythm steady."
        for i in range(4000)
    ]
    return "\n".join(lines)


NON_ASCII = "已把背景音乐对齐到剪辑点 🎵✨ — 标题「城市之梦」现在 0–3 秒。👍🏽"

TOOL_ARGS: dict[str, Any] = {"track": 1, "volume": 0.35, "label": "Lo-fi 低保真"}
TOOL_RESPONSE: dict[str, Any] = {"ok": True, "track": 1, "volume": 0.35}


def _text(ctx: InvocationContext, author: str, text: str, *, partial: bool = False) -> Event:
    return Event(
        invocation_id=ctx.invocation_id,
        author=author,
        content=types.Content(role="model", parts=[types.Part(text=text)]),
        partial=partial or None,
    )


def _call(ctx: InvocationContext, author: str, call_id: str) -> Event:
    return Event(
        invocation_id=ctx.invocation_id,
        author=author,
        content=types.Content(
            role="model",
            parts=[
                types.Part(
                    function_call=types.FunctionCall(
                        id=call_id, name="set_volume", args=dict(TOOL_ARGS)
                    )
                )
            ],
        ),
    )


def _result(ctx: InvocationContext, author: str, call_id: str) -> Event:
    return Event(
        invocation_id=ctx.invocation_id,
        author=author,
        content=types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=call_id, name="set_volume", response=dict(TOOL_RESPONSE)
                    )
                )
            ],
        ),
    )


Script = Callable[[InvocationContext, str], list[Event]]


def plain_text(ctx: InvocationContext, me: str) -> list[Event]:
    return [_text(ctx, me, "Synced the music to your cuts.")]


def partial_then_final(ctx: InvocationContext, me: str) -> list[Event]:
    chunks = ["Synced ", "the music ", "to your cuts."]
    return [_text(ctx, me, c, partial=True) for c in chunks] + [_text(ctx, me, "".join(chunks))]


def tool_call(ctx: InvocationContext, me: str) -> list[Event]:
    return [
        _call(ctx, me, "call-1"),
        _result(ctx, me, "call-1"),
        _text(ctx, me, "Set the music to 35%."),
    ]


def tool_only(ctx: InvocationContext, me: str) -> list[Event]:
    return [_call(ctx, me, "call-1"), _result(ctx, me, "call-1")]


def non_ascii(ctx: InvocationContext, me: str) -> list[Event]:
    return [_text(ctx, me, NON_ASCII[:9], partial=True), _text(ctx, me, NON_ASCII)]


def large_reply(ctx: InvocationContext, me: str) -> list[Event]:
    return [_text(ctx, me, big_reply())]


def error_code(ctx: InvocationContext, me: str) -> list[Event]:
    # How an LlmAgent reports a model failure (a blocked or failed generation): an event
    # with errorCode/errorMessage and no content, the stream still ending normally.
    return [
        Event(
            invocation_id=ctx.invocation_id,
            author=me,
            error_code="MALFORMED_FUNCTION_CALL",
            error_message="The model produced a malformed tool call.",
        )
    ]


def state_delta(ctx: InvocationContext, me: str) -> list[Event]:
    # An event that carries only actions: the agent's bookkeeping, no words.
    return [
        Event(
            invocation_id=ctx.invocation_id,
            author=me,
            actions=EventActions(state_delta={"draft_version": 7, "last_edit": "set_volume"}),
        ),
        _text(ctx, me, "Saved."),
    ]


class AgentCrashError(RuntimeError):
    """What the scripted agent raises: a named type, so the recording shows ADK's format."""


SCENARIOS: dict[str, tuple[Script, str]] = {
    "plain_text": (plain_text, "one final text event"),
    "partial_then_final": (
        partial_then_final,
        "three partial text chunks, then the final event repeating the whole reply",
    ),
    "tool_call": (tool_call, "a functionCall, its functionResponse, then a final text"),
    "tool_only": (tool_only, "a functionCall and its functionResponse, no text (a silent turn)"),
    "non_ascii": (non_ascii, "Chinese and emoji text: a partial chunk, then the final text"),
    "large_reply": (large_reply, "one final text event of about 300 KB (see expected.sha256)"),
    "error_code": (error_code, "an event with errorCode/errorMessage and no content"),
    "state_delta": (state_delta, "an event with only actions.stateDelta, then a final text"),
    "agent_raises": (
        lambda ctx, me: [],
        "the agent raises before yielding anything: ADK's own error event",
    ),
    "agent_raises_after_tool": (
        tool_only,
        "a functionCall and its functionResponse, then the agent raises: ADK's error event",
    ),
}

CRASHES = {"agent_raises", "agent_raises_after_tool"}


class ScriptedAgent(BaseAgent):
    """Yields the events of the scenario named by the user's message; raises in the crashes."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        content = ctx.user_content
        name = content.parts[0].text if content and content.parts else None
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}")
        for event in SCENARIOS[name][0](ctx, self.name):
            yield event
        if name in CRASHES:
            raise AgentCrashError("the scripted agent crashed on purpose")


class Loader(BaseAgentLoader):
    """Serves the one scripted agent as ``nemo_agent``; anything else is ADK's 404."""

    def __init__(self) -> None:
        self.agent = ScriptedAgent(name=APP)

    def load_agent(self, agent_name: str) -> BaseAgent:
        if agent_name != APP:
            raise ValueError(f"no agent {agent_name!r}")
        return self.agent

    def list_agents(self) -> list[str]:
        return [APP]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """uvicorn in a thread, so the recording client below can be plain blocking stdlib."""

    def __init__(self, agents_dir: str) -> None:
        self.port = _free_port()
        app = get_fast_api_app(
            agents_dir=agents_dir,
            agent_loader=Loader(),
            session_service_uri="memory://",
            artifact_service_uri="memory://",
            memory_service_uri="memory://",
            use_local_storage=False,
            web=False,
            host="127.0.0.1",
            port=self.port,
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()))

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            # http.client removes the chunked transfer encoding and nothing else: these are
            # the bytes an SSE client's body reader sees.
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


def sdk_body(sid: str, text: str) -> dict[str, Any]:
    """The body nemo-sync sends (contract v2): snake_case, no role, no streaming flag."""
    return {
        "app_name": APP,
        "user_id": USER,
        "session_id": sid,
        "new_message": {"parts": [{"text": text}]},
    }


def create_session(server: Server, sid: str) -> None:
    status, _, body = server.request("POST", f"/apps/{APP}/users/{USER}/sessions/{sid}", {})
    if status != 200:
        raise RuntimeError(f"creating session {sid} answered {status}: {body[:300]!r}")


def expected(name: str) -> dict[str, Any]:
    """What the agent was told to say, from the script itself (not from the recording)."""
    if name == "large_reply":
        text = big_reply()
        return {
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text_chars": len(text),
        }
    if name == "non_ascii":
        return {"text": NON_ASCII}
    return {}


def record(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    probes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as agents_dir, Server(agents_dir) as server:
        for name, (_, what) in SCENARIOS.items():
            sid = f"rec-{name}"
            create_session(server, sid)
            status, headers, body = server.request(
                "POST", "/run_sse", sdk_body(sid, name), {"Accept": "text/event-stream"}
            )
            (out / f"{name}.sse").write_bytes(body)
            files[f"{name}.sse"] = {
                "what": what,
                "session_id": sid,
                "message": name,
                "status": status,
                "headers": {
                    k.lower(): v
                    for k, v in headers
                    if k.lower() in {"content-type", "cache-control"}
                },
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "expected": expected(name),
            }
            print(f"{name}: HTTP {status}, {len(body)} bytes", file=sys.stderr)
        # What ADK does with the body variants the SDK has sent or might send. Not replayed;
        # recorded so the answers are facts, not guesses.
        create_session(server, "probe-role")
        body_with_role = sdk_body("probe-role", "plain_text")
        body_with_role["new_message"]["role"] = "user"
        body_with_role["streaming"] = True
        for label, body_sent in [
            ("v1 body (role user, streaming true)", body_with_role),
            ("unknown session", sdk_body("no-such-session", "plain_text")),
        ]:
            status, _, reply = server.request("POST", "/run_sse", body_sent)
            probes[label] = {"status": status, "reply_starts": reply[:200].decode("utf-8")}
    return {"files": files, "probes": probes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    result = record(args.out)
    manifest = {
        "google_adk": metadata.version("google-adk"),
        "python": sys.version.split()[0],
        "command": "python scripts/record_adk_streams.py",
        "server": "google.adk.cli.fast_api.get_fast_api_app(...) under uvicorn, memory:// services",
        "request": "POST /run_sse with " + json.dumps(sdk_body("<session_id>", "<scenario>")),
        "note": (
            "Each .sse file is the exact response body (chunked transfer encoding removed). "
            "Event ids, invocationId and timestamps are made by ADK and change per run."
        ),
        **result,
    }
    (args.out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
