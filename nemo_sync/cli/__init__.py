"""The ``nemo-sync`` command.

Exit codes: 0 ok, 1 an API or input error (one clear line on stderr), 2 a usage error,
130 interrupted. Tracebacks only with ``-v``, even for an unexpected error (a bug): that prints
one line naming the exception and suggests ``-v``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from nemo_sync._version import __version__
from nemo_sync.cli import _basic
from nemo_sync.cli._context import Context
from nemo_sync.cli._output import Output
from nemo_sync.errors import APIConnectionError, NemoError, SessionNotFoundError

__all__ = ["main"]

Command = Callable[[Context], Awaitable[int]]
_COMMANDS: dict[str, Command] = {}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-sync",
        description="Music-synced videos from a sentence, on the NemoVideo agent API "
        "(or its local emulator with --local).",
    )
    parser.add_argument("--version", action="version", version=f"nemo-sync {__version__}")
    _add_global_options(parser)
    # The same options after the subcommand (`nemo-sync credits --local`). Their default is
    # SUPPRESS: argparse copies a subcommand's values over the main ones, so a default there
    # would undo `nemo-sync --local credits`; now only an option given after it wins.
    after = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _add_global_options(after)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
        _COMMANDS[name] = command
        return sub.add_parser(name, help=help_text, description=help_text, parents=[after])

    add("credits", _basic.credits_command, "show the credit balance")
    add("login", _basic.login_command, "get or reuse an anonymous token (never shown)")
    add("logout", _basic.logout_command, "forget the saved anonymous credentials")
    add("reset", _basic.reset_command, "empty the local backend (with --local; asks nothing)")
    state = add("state", _basic.state_command, "show the session's timeline")
    state.add_argument("--session", help="session id (default: the last one used)")
    _add_more_commands(add)
    return parser


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="API URL (default: NEMO_API_URL, else production)")
    parser.add_argument(
        "--local",
        action="store_true",
        help="use the local backend: an embedded emulator whose state is kept under the home",
    )
    parser.add_argument("--home", help="folder for credentials and jobs (default: NEMO_HOME)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="request logs, details and tracebacks"
    )


def _add_more_commands(
    add: Callable[[str, Command, str], argparse.ArgumentParser],
) -> None:
    """Commands whose modules need optional parts of the SDK are registered here."""
    from nemo_sync.cli import _commands

    _commands.register(add)


async def _run(args: argparse.Namespace, output: Output) -> int:
    async with AsyncExitStack() as stack:
        ctx = Context(args, output, stack)
        return await _COMMANDS[args.command](ctx)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    output = Output(as_json=args.json, verbose=args.verbose)
    if args.verbose:
        _show_request_logs()
    try:
        return asyncio.run(_run(args, output))
    except KeyboardInterrupt:
        # asyncio.run has cancelled the command, which stopped its renders and removed its
        # partial files; one line says so, and what goes on without us.
        note = output.on_interrupt
        output.error(f"interrupted; {note}" if note else "interrupted")
        return 130
    except APIConnectionError as exc:
        output.error(str(exc))
        if not args.local:
            output.hint("no network? `nemo-sync --local ...` runs on the embedded emulator")
        _trace(args, output)
        return 1
    except SessionNotFoundError as exc:
        output.error(str(exc))
        output.hint(
            "a new session: `nemo-sync upload FILES...`, `nemo-sync chat --new` or "
            "`nemo-sync sync FILES...`"
        )
        _trace(args, output)
        return 1
    except (NemoError, OSError, ValueError) as exc:
        output.error(str(exc) or type(exc).__name__)
        _trace(args, output)
        return 1
    except Exception as exc:  # a bug, or input nothing above anticipated: still one line
        output.error(f"unexpected {_first_line(exc)} (run with -v for the traceback)")
        _trace(args, output)
        return 1


def _show_request_logs() -> None:
    """-v: the SDK's requests, replies and retry waits (its DEBUG logs) on stderr.

    Only the ``nemo_sync`` logger at DEBUG: other libraries' debug output (asyncio, aiohttp)
    would bury the lines a person is looking for.
    """
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    logging.getLogger("nemo_sync").setLevel(logging.DEBUG)


def _first_line(exc: Exception) -> str:
    """ "KeyError: 'x'", cut to one short line (the message may hold a whole reply)."""
    lines = str(exc).splitlines()
    message = lines[0] if lines else ""
    if len(message) > _MESSAGE_MAX:
        message = message[: _MESSAGE_MAX - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


_MESSAGE_MAX = 200


def _trace(args: argparse.Namespace, output: Output) -> None:
    if args.verbose:
        output.traceback()
