"""`nemo-sync chat`: an interactive session that behaves like the skill itself.

Each line is routed (``nemo_sync.route``): export, credits, status and upload run directly;
everything else (``undo`` too) is a chat turn whose text streams as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nemo_sync._events import TextEvent, ToolCallEvent, ToolResultEvent
from nemo_sync._gui import SuggestedAction, SuggestedKind
from nemo_sync._routing import Action, route
from nemo_sync.cli import _workflow as workflow
from nemo_sync.cli._context import Context
from nemo_sync.errors import ConfigurationError, NemoError

if TYPE_CHECKING:
    from nemo_sync._session import Session

GREETING = (
    "Connected. Share your audio files and I'll sync them to your video: type `upload FILE`,\n"
    "then something like 'sync my audio to the video'. `status`, `credits`, `export`, `undo`,\n"
    "`quit`."
)
_QUIT = {"quit", "exit", "bye", "退出"}

# The agent talks as if its web editor were open ("click Export", "preview in timeline"): each
# such suggestion is offered as the word this loop runs for it, which ``route`` sends to a
# direct action. A drag or another click has no command: the user says the edit instead.
OFFERED: dict[SuggestedKind, str] = {
    SuggestedKind.EXPORT: "export",
    SuggestedKind.STATE: "status",
    SuggestedKind.SUMMARY: "status",  # the timeline summary is what `status` shows
}


def _offer(kind: SuggestedKind) -> str | None:
    command = OFFERED.get(kind)
    return f"(the agent suggests `{command}`: type it to run it)" if command else None


def suggestion_lines(actions: Sequence[SuggestedAction]) -> list[str]:
    """What to print for the agent's GUI suggestions: only commands this loop can run."""
    return workflow.suggestion_lines(actions, _offer)


async def _read_line(prompt: str) -> str | None:
    """The next line typed (``None`` at end of input).

    ``input`` blocks until Enter and cannot be interrupted from another thread, so it runs on
    a daemon thread: on Ctrl-C the command ends at once instead of waiting, at exit, for a
    line nobody will type (an executor thread would be waited for).
    """
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str | None] = loop.create_future()

    def settle(text: str | None, error: BaseException | None) -> None:
        if line.done():  # the wait was cancelled
            return
        if error is not None:
            line.set_exception(error)
        else:
            line.set_result(text)

    def read() -> None:
        text: str | None = None
        error: BaseException | None = None
        try:
            text = input(prompt)
        except EOFError:
            pass
        except BaseException as exc:  # handed to the loop, which raises it in the command
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, text, error)

    threading.Thread(target=read, name="nemo-sync-input", daemon=True).start()
    return await line


def _attached_files(line: str) -> list[Path]:
    """Files named on the line (`upload a.mp3 b.mp4`, or a dropped path)."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    return [Path(w).expanduser() for w in words if Path(w).expanduser().is_file()]


async def run_chat(ctx: Context) -> int:
    """The read-route-act loop."""
    out = ctx.output
    out.say("Setting things up...")
    session = await _chat_session(ctx)
    out.say(GREETING)
    while True:
        line = await _read_line("> ")
        if line is None or line.strip().lower() in _QUIT:
            break
        line = line.strip()
        if not line:
            continue
        files = _attached_files(line)
        try:
            action = route(line, has_attachment=bool(files))
            if action is Action.UPLOAD:
                if not files:
                    out.say("Which file? Type `upload PATH`.")
                    continue
                await workflow.upload_all(ctx, session, files)
            elif action is Action.CREDITS:
                credits = await (await ctx.client()).credits()
                out.say(f"Credits: {credits.available} available ({credits.frozen} frozen)")
            elif action is Action.STATE:
                out.say((await session.state()).draft.summary())
            elif action is Action.EXPORT:
                # Never over an existing file (unless --force): the next free name, said.
                report = await workflow.render(ctx, session, Path("synced.mp4"))
                out.say(f"Saved {report['output']}")
            else:
                await _turn(ctx, session, line)
        except NemoError as exc:
            out.error(str(exc))
    again = workflow.command(ctx, "chat", "--session", session.id)
    out.say(f"Bye. Session {session.id} keeps your timeline: `{again}`")
    return 0


async def _chat_session(ctx: Context) -> Session:
    """The session to chat in: ``--session``, else a new one with ``--new``, else the last one
    used (as ``upload``, ``ask`` and ``export`` do, so they chain), else a new one."""
    if ctx.args.session or ctx.args.new:
        return await workflow.open_session(ctx, ctx.args.session, create=True)
    try:
        session = await workflow.open_session(ctx, None, create=False)
    except ConfigurationError:  # no session yet
        return await workflow.open_session(ctx, None, create=True)
    ctx.output.say(f"Continuing session {session.id} (--new starts a fresh one)")
    return session


async def _turn(ctx: Context, session: Session, line: str) -> None:
    out = ctx.output
    streamed = False
    async with session.chat(
        line, on_still_working=lambda _elapsed: out.say("⏳ Still working...")
    ) as turn:
        async for event in turn:
            if isinstance(event, TextEvent) and event.partial:
                out.say(event.text, end="")
                streamed = True
            elif isinstance(event, TextEvent) and not streamed:
                out.say(event.text, end="")
            elif isinstance(event, ToolCallEvent):
                out.info(f"[tool] {event.name}({event.args})")
            elif isinstance(event, ToolResultEvent):
                out.info(f"[tool result] {event.name}")
        result = await turn.result()
    if result.silent:
        out.say(result.text)
        if result.draft_after is not None:
            out.say(result.draft_after.summary())
    else:
        out.say("")
    for suggestion in suggestion_lines(result.suggested_actions):
        out.say(suggestion)
