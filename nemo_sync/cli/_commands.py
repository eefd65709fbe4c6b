"""The workflow commands: sync, upload, export, jobs, chat, emulator, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemo_sync._formats import FORMATS, format_of
from nemo_sync._tracker import DEFAULT_SCAN_INTERVAL
from nemo_sync.cli import _workflow as workflow
from nemo_sync.cli._context import Context
from nemo_sync.errors import ConfigurationError, SessionNotFoundError

if TYPE_CHECKING:
    from nemo_sync._jobstore import JobRecord
    from nemo_sync._render_job import RenderJob
    from nemo_sync.local import SampleMedia

Command = Callable[[Context], Awaitable[int]]

# The Redis a `jobs` command shares jobs through, when --redis is not given.
REDIS_URL_ENV = "NEMO_REDIS_URL"

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

    jobs = add("jobs", jobs_command, "list, wait for, download, cancel or track render jobs")
    jobs.add_argument(
        "action",
        nargs="?",
        choices=("list", "wait", "download", "cancel", "track"),
        default="list",
    )
    jobs.add_argument("job_id", nargs="?", help="the render job id (wait, download, cancel)")
    jobs.add_argument("-o", "--out", type=Path, help="where to download (download)")
    _force_option(jobs)
    jobs.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)
    jobs.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_URL_ENV) or None,
        help=f"share jobs with a fleet through this Redis (default: {REDIS_URL_ENV})",
    )
    jobs.add_argument(
        "--scan-interval",
        type=float,
        default=DEFAULT_SCAN_INTERVAL,
        help=f"seconds between the tracker's scans (track; default {DEFAULT_SCAN_INTERVAL:g})",
    )

    chat = add("chat", chat_command, "an interactive session, like talking to the agent")
    chat.add_argument("--session", help="session id (default: the last one used)")
    chat.add_argument("--new", action="store_true", help="start a new session")
    _render_options(chat)

    ask = add("ask", ask_command, "send one message to the session; print the reply and changes")
    ask.add_argument("message", help="what to tell the agent")
    ask.add_argument("--session", help="session id (default: the last one, else a new one)")

    from nemo_sync.emulator._server_options import add_arguments as add_emulator_arguments

    add_emulator_arguments(add("emulator", emulator_command, "run the API emulator as a server"))

    demo = add("demo", demo_command, "the whole quick edit on sample media, offline")
    demo.add_argument("-o", "--out", type=Path, default=Path("synced.mp4"), help="output MP4")
    demo.add_argument("--workdir", type=Path, help="where to put the sample media")
    _render_options(demo)


def _render_options(parser: argparse.ArgumentParser) -> None:
    # No resolution or aspect options: the canvas is part of the draft [V].
    # Polling every 30 s suits the cloud; the emulator renders in seconds.
    parser.add_argument("--poll-interval", type=float, default=None, help=argparse.SUPPRESS)
    _force_option(parser)


def _force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing output file (default: save under the next free name)",
    )


async def sync_command(ctx: Context) -> int:
    """Upload, ask for the beat sync, render and download: the product's quick edit."""
    workflow.check_files(ctx.args.media)
    kinds = _kinds_of(ctx.args.media)
    if ctx.args.session:  # media already in the named session count too
        session = await workflow.open_session(ctx, ctx.args.session, create=True)
        kinds |= {m.kind for m in (await session.state()).media}
        _check_both_kinds(kinds)
    else:
        # Before anything is sent: a sync missing a kind of media would only end in an
        # empty timeline that fails to render.
        _check_both_kinds(kinds)
        session = await workflow.open_session(ctx, None, create=True)
    await workflow.upload_all(ctx, session, ctx.args.media)
    ctx.output.say(f"Asking: {ctx.args.message}")
    reply = await session.send(ctx.args.message, on_still_working=workflow.still_working(ctx))
    workflow.say_reply(ctx, reply, exporting=True)
    state = await session.state()
    ctx.output.say(state.draft.summary())
    report = await workflow.render(ctx, session, ctx.args.out)
    report["summary"] = state.draft.summary()
    ctx.output.result(f"Saved {report['output']}", report)
    return 0


def _kinds_of(paths: list[Path]) -> set[str]:
    """The kinds (video, audio, image) the files' extensions stand for; an unknown extension
    is left for the upload to refuse, with its own message."""
    formats = (format_of(path.name) for path in paths)
    return {f.kind for f in formats if f is not None}


def _check_both_kinds(kinds: set[str]) -> None:
    if "audio" not in kinds:
        raise ValueError(f"sync needs music too: add an audio file ({_extensions('audio')})")
    if not kinds & {"video", "image"}:
        raise ValueError(
            f"sync needs clips too: add a video or an image ({_extensions('video', 'image')})"
        )


def _extensions(*kinds: str) -> str:
    """ "mp3, wav, m4a or aac": the accepted extensions of these kinds, from the format table."""
    names = [f.extension for f in FORMATS.values() if f.kind in kinds]
    return f"{', '.join(names[:-1])} or {names[-1]}"


async def upload_command(ctx: Context) -> int:
    """Upload files into a session (the last one used, else a new one)."""
    workflow.check_files(ctx.args.media)
    try:
        session = await workflow.open_session(ctx, ctx.args.session, create=False)
    except ConfigurationError:  # no session yet: make one, as the skill does
        session = await workflow.open_session(ctx, None, create=True)
    try:
        media = await workflow.upload_all(ctx, session, ctx.args.media)
    except SessionNotFoundError:
        if ctx.args.session:
            raise  # the session the user named: theirs to decide about
        # The remembered session is gone (expired, or a --local database recovered without
        # it): nothing was stored there, so the files go to a new one.
        ctx.output.say(f"The last session ({session.id}) no longer exists: starting a new one")
        session = await workflow.open_session(ctx, None, create=True)
        media = await workflow.upload_all(ctx, session, ctx.args.media)
    ctx.output.result(
        f"Session {session.id}: uploaded {len(media)} file(s)",
        {"session_id": session.id, "media": [m.raw for m in media]},
    )
    return 0


async def export_command(ctx: Context) -> int:
    """Render the timeline; with --wait or -o, wait for it (and download)."""
    session = await workflow.open_session(ctx, ctx.args.session, create=False)
    report = await workflow.render(ctx, session, ctx.args.out, wait=ctx.args.wait)
    ctx.output.result(_finished(ctx, report), report)
    return 0


def _finished(ctx: Context, report: dict[str, Any]) -> str:
    """The human line for a render: where it was saved, else how to get it."""
    if "output" in report:
        return f"Saved {report['output']}"
    job_id = report["job_id"]
    if "download_url" not in report:  # not waited for
        return f"Render job {job_id}: {workflow.command(ctx, 'jobs', 'wait', job_id)}"
    if ctx.args.local:  # the link would die with this process's emulator
        return f"Rendered: {workflow.command(ctx, 'jobs', 'download', job_id)} saves it"
    return f"Rendered: {report['download_url']}"


async def jobs_command(ctx: Context) -> int:
    """List render jobs (kept across crashes), or wait for / download / cancel one."""
    client = await ctx.client()
    if ctx.args.action == "list":
        # Jobs a crash left unconfirmed are looked up first: found, or failed with the reason.
        records = await client.jobs()
        lines = [f"{r.id}  {r.status:<10} session {r.session_id}  {_detail(r)}" for r in records]
        ctx.output.result(
            "\n".join(line.rstrip() for line in lines) or "No render jobs yet.",
            [r.to_json() for r in records],  # as the store holds them, newer fields included
        )
        return 0
    if ctx.args.action == "track":
        return await _track(ctx)
    if not ctx.args.job_id:  # a usage error (exit 2), which argparse cannot see
        ctx.output.error(f"`jobs {ctx.args.action}` needs a job id (see `nemo-sync jobs`)")
        return 2
    job = client.render_job(ctx.args.job_id)
    if ctx.args.action == "cancel":
        return await _cancel(ctx, job)
    out = ctx.args.out
    if ctx.args.action == "download" and out is None:
        out = Path.cwd()
    report = await workflow.finish_job(ctx, job, out, {"job_id": job.id})
    ctx.output.result(_finished(ctx, report), report)
    return 0


async def _track(ctx: Context) -> int:
    """``jobs track``: finish the jobs nobody waits for until SIGINT (Ctrl-C) or SIGTERM,
    which end it cleanly (its leases given back at once), exit 0: stopping is how a
    long-running tracker ends, not a failure."""
    client = await ctx.client()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Where the loop cannot take signals (Windows), Ctrl-C interrupts as elsewhere (130).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with client.tracker(scan_interval=ctx.args.scan_interval) as tracker:
            ctx.output.info(f"tracking unfinished render jobs in {tracker.where}; Ctrl-C stops")
            await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    report = {"adopted": tracker.adopted, "finished": tracker.finished}
    ctx.output.result(
        f"Tracker stopped: adopted {tracker.adopted} job(s), finished {tracker.finished}", report
    )
    return 0


def _detail(record: JobRecord) -> str:
    """Where the video went, else why the job failed."""
    if record.output_path:
        return record.output_path
    return f"({record.error})" if record.error and record.finished else ""


async def _cancel(ctx: Context, job: RenderJob) -> int:
    """``jobs cancel ID`` [R]: 0 once cancelled (or the service is still stopping it), 1 when
    the job had already ended (the service's refusal is an error line, exit 1, as well)."""
    result = await job.cancel()
    report = {"job_id": job.id, "status": result.status}
    if result.cancelled:
        ctx.output.result(f"Cancelled render {job.id}", report)
        return 0
    if result.done:
        ctx.output.error(f"render {job.id} already {result.status}: nothing to cancel")
        return 1
    ctx.output.result(
        f"Cancel requested for render {job.id}; the service still says {result.status}: "
        f"{workflow.command(ctx, 'jobs', 'wait', job.id)} shows when it stops",
        report,
    )
    return 0


async def ask_command(ctx: Context) -> int:
    """One chat turn in the last session (else a new one): the reply and what changed, so
    ``upload -> ask -> export`` chains in a script. Never sent twice."""
    try:
        session = await workflow.open_session(ctx, ctx.args.session, create=False)
    except ConfigurationError:  # no session yet: make one, as upload does
        session = await workflow.open_session(ctx, None, create=True)
    result = await session.send(ctx.args.message, on_still_working=workflow.still_working(ctx))
    if not ctx.output.as_json:
        workflow.say_reply(ctx, result)
    offer = workflow.one_shot_offer(ctx)
    ctx.output.result(
        result.draft_after.summary() if result.draft_after is not None else "",
        {
            "session_id": session.id,
            "reply": result.text,
            "silent": result.silent,
            "changes": [c.sentence for c in result.changes],
            "suggestions": workflow.suggestion_lines(result.suggested_actions, offer),
            "summary": result.draft_after.summary() if result.draft_after is not None else None,
        },
    )
    return 0


async def chat_command(ctx: Context) -> int:
    """An interactive session (see nemo_sync.cli._interactive)."""
    from nemo_sync.cli._interactive import run_chat

    return await run_chat(ctx)


async def emulator_command(ctx: Context) -> int:
    """Serve the emulator until interrupted (the options of ``python -m nemo_sync.emulator``)."""
    from nemo_sync.emulator._server_options import serve

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
    if ctx.args.workdir is not None:  # the user's folder: the samples stay there
        ctx.args.workdir.mkdir(parents=True, exist_ok=True)
        ctx.output.say(f"Making sample media in {ctx.args.workdir} ...")
        return await _demo_in(ctx, ctx.args.workdir, make_sample_media)
    # Else a temporary folder, removed however the demo ends (the upload copied the files).
    with tempfile.TemporaryDirectory(prefix="nemo-demo-") as workdir:
        ctx.output.say("Making sample media ...")
        return await _demo_in(ctx, Path(workdir), make_sample_media)


async def _demo_in(ctx: Context, workdir: Path, make: Callable[[Path], SampleMedia]) -> int:
    samples = await asyncio.to_thread(make, workdir)
    ctx.args.media = [samples.music, *samples.clips]
    return await sync_command(ctx)
