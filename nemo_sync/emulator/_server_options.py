"""``python -m nemo_sync.emulator`` / ``nemo-sync emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from nemo_sync.emulator._emulator import Emulator

DESCRIPTION = "Serve the NemoVideo API emulator (for other languages, curl, manual tests)."


def build_parser(prog: str = "python -m nemo_sync.emulator") -> argparse.ArgumentParser:
    """The command line options."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options, shared with ``nemo-sync emulator``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8787, help="port (0: any free one)")
    parser.add_argument("--cdn-host", help="host name to put in download links")
    parser.add_argument("--render-seconds", type=float, default=2.0, help="minimum render time")
    parser.add_argument("--chat-latency", type=float, default=0.5, help="agent thinking time")
    parser.add_argument("--heartbeat-interval", type=float, default=0.5)
    parser.add_argument("--silent-ratio", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reply-style",
        choices=("reference", "skill"),
        default="reference",
        help="answer in the vendor's API reference's shapes (default) or SKILL.md 1.9's",
    )
    parser.add_argument(
        "--chat-events",
        choices=("adk", "simple"),
        default="adk",
        help="stream chat as Google ADK events (default) or the reference's simple events",
    )
    parser.add_argument(
        "--export-requires-plan", action="store_true", help="anonymous accounts get 402 on export"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the state (SQLite) and files in DIR, across restarts and shared by every "
        "emulator on it; default: in memory, gone when it stops",
    )
    parser.add_argument(
        "--reissue-anonymous-tokens",
        action="store_true",
        help="give a known client id a fresh token for the same account within 7 days, "
        "instead of the service's 429 (for a shared dev server whose clients lose their "
        "credentials)",
    )


async def serve(args: argparse.Namespace) -> None:
    """Serve with the parsed options until cancelled (Ctrl-C)."""
    emulator = Emulator(
        host=args.host,
        port=args.port,
        cdn_host=args.cdn_host,
        render_seconds=args.render_seconds,
        chat_latency=args.chat_latency,
        heartbeat_interval=args.heartbeat_interval,
        silent_ratio=args.silent_ratio,
        seed=args.seed,
        export_requires_plan=args.export_requires_plan,
        reply_style=args.reply_style,
        chat_events=args.chat_events,
        data_dir=args.data_dir,
        reissue_anonymous_tokens=args.reissue_anonymous_tokens,
    )
    async with emulator as emu:
        renderer = emu.render_backend.name if emu.render_backend else "none (renders fail)"
        print(f"NemoVideo API emulator at {emu.url}", flush=True)
        print(f"renderer: {renderer}; Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted.

    Args:
        argv: The arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"nemo-sync emulator: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
