"""The workflow commands: sync, upload, export, jobs, chat, emulator, demo."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemo_sync.cli._context import Context
from nemo_sync.errors import ConfigurationError, NemoError

if TYPE_CHECKING:
    from nemo_sync._models import Media
    from nemo_sync._render import RenderJob
    from nemo_sync._session import Session

Command = Callable[[Context], Awaitable[int]]

QUICK_EDIT = "sync the background music to my video and adjust the beat drops to match the cuts"


def register(add: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    """Add the workflow commands to the parser."""
    sync = add("sync", sync_command, "the quick edit: upload, sync to the beat, render, download")
    sync.add_argument("media", nargs="+", type=Path, help="music and video files")
    sync.add_argument("-m", "--message", default=QUICK_EDIT, help="the instruction")
    sync.add_argument("-o", "--out", type=Path, default=Path("synced.mp4"), help="output MP4")
    _render_options(sync)
    sync.add_argument("--session", help="use this session instead of a new one")

    upload = add("upload", upload_command, "upload files into the session")
    upload.add_argument("media", nargs="+", type=Path)
    upload.add_argument("--session", help="session id (default: the last one, else a new one)")

    export = add("export", export_command, "render the session's timeline")
    export.add_argument("--session", help="session id (default: the last one used)")
    _render_options(export)
    export.add_argument("--wait", action="store_true", help="wait for the render to finish")
    export.add_argument("-o", "--out", type=Path, help="download the result here (implies --wait)")

    jobs = add("jobs", jobs_command, "list, wait for or download render jobs")
    jobs.add_argument("action", nargs="?", choices=("list", "wait", "download"), default="list")
    jobs.add_argument("job_id", nargs="?", help="the render job id (wait, download)")
    jobs.add_argument("-o", "--out", type=Path, help="where to download (download)")
    jobs.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)

    chat = add("chat", chat_command, "an interactive session, like talking to the agent")
    chat.add_argument("--session", help="continue this session instead of a new one")
    _render_options(chat)

    from nemo_sync.emulator._cli import add_arguments as add_emulator_arguments

    add_emulator_arguments(add("emulator", emulator_command, "run the API emulator as a server"))

    demo = add("demo", demo_command, "the whole quick edit on sample media, offline")
    demo.add_argument("-o", "--out", type=Path, default=Path("synced.mp4"), help="output MP4")
    demo.add_argument("--workdir", type=Path, help="where to put the sample media")
    _render_options(demo)


def _render_options(parser: argparse.ArgumentParser) -> None:
    # No resolution or aspect options: the canvas is part of the draft [V].
    # Polling every 30 s suits the cloud; the emulator renders in seconds.
    parser.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)


def _poll_interval(ctx: Context) -> float | None:
    given: float | None = ctx.args.poll_interval
    if given is not None:
        return given
    # The emulator renders in seconds; the cloud gets the SDK's backing-off schedule.
    return 0.5 if ctx.args.local else None


def _check_files(paths: Sequence[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if not path.is_file():
            raise ValueError(f"{path}: not a regular file")


async def _session(ctx: Context, session_id: str | None, *, create: bool) -> Session:
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
    ctx.output.say(f"Open it in the browser: {link}")


async def _upload_all(ctx: Context, session: Session, paths: Sequence[Path]) -> list[Media]:
    uploaded = []
    for path in paths:
        size = path.stat().st_size
        with ctx.output.progress(f"upload {path.name}", total=size) as bar:
            media = await session.upload(path, on_progress=bar.callback())
        ctx.output.say(f"Uploaded {media.name} ({media.kind})")
        uploaded.append(media)
    return uploaded


async def _render(
    ctx: Context, session: Session, out: Path | None, *, wait: bool = True
) -> dict[str, Any]:
    job = await session.export()
    ctx.output.say(f"Rendering (job {job.id})...")
    report: dict[str, Any] = {"job_id": job.id, "session_id": session.id}
    if wait or out is not None:
        report = await _finish_job(ctx, job, out, report)
    await say_claim_link(ctx, session)
    return report


async def _finish_job(
    ctx: Context, job: RenderJob, out: Path | None, report: dict[str, Any]
) -> dict[str, Any]:
    with ctx.output.progress("render", total=100, unit="%") as bar:
        result = await job.wait(
            poll_interval=_poll_interval(ctx),
            on_progress=lambda r: bar.update_to(r.progress or 0, 100),
        )
        bar.update_to(100, 100)
    report["download_url"] = result.download_url
    if out is not None:
        with ctx.output.progress(f"download {out.name}", total=None) as bar:
            path = await job.download(out, on_progress=bar.callback())
        report["output"] = str(path.resolve())
    return report


async def sync_command(ctx: Context) -> int:
    """Upload, ask for the beat sync, render and download: the product's quick edit."""
    _check_files(ctx.args.media)
    session = await _session(ctx, ctx.args.session, create=True)
    await _upload_all(ctx, session, ctx.args.media)
    ctx.output.say(f"Asking: {ctx.args.message}")
    reply = await session.send(ctx.args.message, on_still_working=_still_working(ctx))
    ctx.output.say(reply.text)
    state = await session.state()
    ctx.output.say(state.draft.summary())
    report = await _render(ctx, session, ctx.args.out)
    report["summary"] = state.draft.summary()
    ctx.output.result(f"Saved {report['output']}", report)
    return 0


def _still_working(ctx: Context) -> Callable[[float], None]:
    return lambda elapsed: ctx.output.say(f"⏳ Still working... ({elapsed:.0f} s)")


async def upload_command(ctx: Context) -> int:
    """Upload files into a session (the last one used, else a new one)."""
    _check_files(ctx.args.media)
    try:
        session = await _session(ctx, ctx.args.session, create=False)
    except ConfigurationError:  # no session yet: make one, as the skill does
        session = await _session(ctx, None, create=True)
    media = await _upload_all(ctx, session, ctx.args.media)
    ctx.output.result(
        f"Session {session.id}: uploaded {len(media)} file(s)",
        {"session_id": session.id, "media": [m.raw for m in media]},
    )
    return 0


async def export_command(ctx: Context) -> int:
    """Render the timeline; with --wait or -o, wait for it (and download)."""
    session = await _session(ctx, ctx.args.session, create=False)
    report = await _render(ctx, session, ctx.args.out, wait=ctx.args.wait)
    human = f"Saved {report['output']}" if "output" in report else f"Render job {report['job_id']}"
    if "output" not in report and "download_url" in report:
        human = f"Rendered: {report['download_url']}"
    ctx.output.result(human, report)
    return 0


async def jobs_command(ctx: Context) -> int:
    """List render jobs (kept across crashes), or wait for / download one."""
    client = await ctx.client()
    if ctx.args.action == "list":
        records = await client.jobs()
        lines = [
            f"{r.id}  {r.status:<10} session {r.session_id}  {r.output_path or ''}".rstrip()
            for r in records
        ]
        ctx.output.result("\n".join(lines) or "No render jobs yet.", list(records))
        return 0
    if not ctx.args.job_id:
        raise ValueError(f"`jobs {ctx.args.action}` needs a job id (see `nemo-sync jobs`)")
    job = client.render_job(ctx.args.job_id)
    out = ctx.args.out
    if ctx.args.action == "download" and out is None:
        out = Path.cwd()
    report = await _finish_job(ctx, job, out, {"job_id": job.id})
    human = f"Saved {report['output']}" if "output" in report else f"Done: {report['download_url']}"
    ctx.output.result(human, report)
    return 0


async def chat_command(ctx: Context) -> int:
    """An interactive session (see nemo_sync.cli._chat)."""
    from nemo_sync.cli._chat import run_chat

    return await run_chat(ctx)


async def emulator_command(ctx: Context) -> int:
    """Serve the emulator until interrupted (the options of ``python -m nemo_sync.emulator``)."""
    from nemo_sync.emulator._cli import serve

    await serve(ctx.args)
    return 0


async def demo_command(ctx: Context) -> int:
    """Sample media -> the quick edit on the embedded emulator -> a real MP4."""
    try:
        from nemo_sync.local import make_sample_media
    except ImportError as exc:
        raise ValueError(
            f"the demo renders locally and needs the extra: pip install 'nemo-sync[local]' ({exc})"
        ) from exc
    ctx.args.local = True
    ctx.args.session = None
    ctx.args.message = QUICK_EDIT
    workdir = ctx.args.workdir or Path(tempfile.mkdtemp(prefix="nemo-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx.output.say(f"Making sample media in {workdir} ...")
    samples = await asyncio.to_thread(make_sample_media, workdir)
    ctx.args.media = [samples.music, *samples.clips]
    return await sync_command(ctx)
