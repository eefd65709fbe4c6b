"""The steps the CLI's workflows share: sessions, uploads, renders, progress, browser links.

``sync``, ``export``, ``jobs`` and the interactive ``chat`` all use these, so they live below
both command modules and every import arrow points one way.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemo_sync._gui import SuggestedAction, SuggestedKind
from nemo_sync._render_job import video_file_name
from nemo_sync.cli._context import Context
from nemo_sync.errors import NemoError

if TYPE_CHECKING:
    from nemo_sync._chat_turn import ChatResult
    from nemo_sync._models import Media
    from nemo_sync._render_job import RenderJob
    from nemo_sync._session import Session


def poll_interval(ctx: Context) -> float | None:
    given: float | None = ctx.args.poll_interval
    if given is not None:
        return given
    # The emulator renders in seconds; the cloud gets the SDK's backing-off schedule.
    return 0.5 if ctx.args.local else None


def check_files(paths: Sequence[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if not path.is_file():
            raise ValueError(f"{path}: not a regular file")


async def open_session(ctx: Context, session_id: str | None, *, create: bool) -> Session:
    """The named session, else (create=True) a new one, else the last one used."""
    client = await ctx.client()
    if session_id:
        session = client.session(session_id)
    elif create:
        session = await client.create_session()
        ctx.output.info(f"new session {session.id}")
        await say_claim_link(ctx, session)
    else:
        return await ctx.session(None)
    ctx.remember_session(session)
    return session


async def say_claim_link(ctx: Context, session: Session) -> None:
    """Print the browser link to the project, as the vendor's clients do; never fatal."""
    if not session.task_id:
        return
    try:
        link = await session.claim_url()
    except NemoError as exc:
        ctx.output.info(f"no browser link for this project ({exc})")
        return
    if ctx.args.local:
        # The embedded emulator serves the page only while this command runs: a link printed
        # for later would be dead. Shown with -v for a look during the command.
        ctx.output.info(f"browser page (only while this command runs): {link}")
        return
    ctx.output.say(f"Open it in the browser: {link}")


async def upload_all(ctx: Context, session: Session, paths: Sequence[Path]) -> list[Media]:
    uploaded = []
    for path in paths:
        size = path.stat().st_size
        with ctx.output.progress(f"upload {path.name}", total=size) as bar:
            media = await session.upload(path, on_progress=bar.callback())
        ctx.output.say(f"Uploaded {media.name} ({media.kind})")
        uploaded.append(media)
    return uploaded


async def render(
    ctx: Context, session: Session, out: Path | None, *, wait: bool = True
) -> dict[str, Any]:
    job = await session.export()
    ctx.output.say(f"Rendering (job {job.id})...")
    report: dict[str, Any] = {"job_id": job.id, "session_id": session.id}
    if wait or out is not None:
        report = await finish_job(ctx, job, out, report)
    await say_claim_link(ctx, session)
    return report


async def finish_job(
    ctx: Context, job: RenderJob, out: Path | None, report: dict[str, Any]
) -> dict[str, Any]:
    local = "--local " if ctx.args.local else ""
    # The service renders on without us; with --local, the stored job is rendered again by
    # the next process that polls it.
    ctx.output.on_interrupt = (
        f"render {job.id} goes on; resume with `nemo-sync {local}jobs wait {job.id}`"
    )
    try:
        with ctx.output.progress("render", total=100, unit="%") as bar:
            result = await job.wait(
                poll_interval=poll_interval(ctx),
                on_progress=lambda r: bar.update_to(r.progress or 0, 100),
            )
            bar.update_to(100, 100)
    except Exception:  # an interrupt (BaseException) keeps the note for its message
        ctx.output.on_interrupt = None
        raise
    ctx.output.on_interrupt = None
    report["download_url"] = result.download_url
    if out is not None:
        wanted = out / video_file_name(job.id) if out.is_dir() else out
        target = wanted if ctx.args.force else free_path(wanted)
        if target != wanted:
            ctx.output.say(f"{wanted.name} exists: saving as {target.name} (--force overwrites)")
        with ctx.output.progress(f"download {target.name}", total=None) as bar:
            path = await job.download(target, on_progress=bar.callback())
        report["output"] = str(path.resolve())
    return report


def free_path(path: Path) -> Path:
    """``path``, or when a file is there, the first free ``stem-2``, ``stem-3``... beside it:
    an export never replaces a video the user already has."""
    candidate = path
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def command(ctx: Context, *words: str) -> str:
    """A ``nemo-sync`` command line to run later against the same backend (with the global
    options that choose it), for hints a person can paste."""
    line = ["nemo-sync"]
    if ctx.args.local:
        line.append("--local")
    elif ctx.args.base_url:
        line += ["--base-url", ctx.args.base_url]
    if ctx.args.home:
        line += ["--home", ctx.args.home]
    return shlex.join([*line, *words])


def suggestion_lines(
    actions: Sequence[SuggestedAction], offer: Callable[[SuggestedKind], str | None]
) -> list[str]:
    """The agent's GUI phrases, translated: what to run instead of each click (``offer``
    gives the line for a kind, ``None`` when there is no command for it), and for a drag or
    any other click, to say the edit in words. Every command that prints the agent's words
    prints these after them, so no GUI phrase is left unexplained."""
    lines = list(dict.fromkeys(line for a in actions if (line := offer(a.kind)) is not None))
    if any(offer(a.kind) is None for a in actions):
        lines.append("(there is nothing to drag or click here: say the change in words)")
    return lines


def one_shot_offer(
    ctx: Context, *, exporting: bool = False
) -> Callable[[SuggestedKind], str | None]:
    """How a command that ends after the reply offers the agent's suggestions: as the
    ``nemo-sync`` command that does it (``exporting``: the command renders next anyway)."""

    def offer(kind: SuggestedKind) -> str | None:
        if kind is SuggestedKind.EXPORT:
            if exporting:
                return "(the agent suggests exporting: rendering now)"
            return f"(the agent suggests exporting: `{command(ctx, 'export', '--wait')}`)"
        if kind in (SuggestedKind.STATE, SuggestedKind.SUMMARY):
            return f"(the agent suggests a look at the timeline: `{command(ctx, 'state')}`)"
        return None

    return offer


def say_reply(ctx: Context, result: ChatResult, *, exporting: bool = False) -> None:
    """The agent's words, then what changed (a silent turn is told by its changes), then the
    GUI phrases translated for a command line."""
    out = ctx.output
    if result.text:
        out.say(result.text)
    for change in result.changes:
        out.say(f"  - {change.sentence}")
    for line in suggestion_lines(
        result.suggested_actions, one_shot_offer(ctx, exporting=exporting)
    ):
        out.say(line)


def still_working(ctx: Context) -> Callable[[float], None]:
    return lambda elapsed: ctx.output.say(f"⏳ Still working... ({elapsed:.0f} s)")
