"""Small commands: credits, login, logout, state, reset."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from nemo_sync._client_id import read_client_id
from nemo_sync._credentials import CredentialStore
from nemo_sync._export_claims import EXPORTS_FILE
from nemo_sync._jobstore import JOBS_FILE
from nemo_sync._safe_file import DAMAGED_SUFFIX
from nemo_sync._settings import resolve_client_id, shared_client_id_path
from nemo_sync.cli._context import CLI_STATE, Context


async def credits_command(ctx: Context) -> int:
    """Show the credit balance."""
    credits = await (await ctx.client()).credits()
    ctx.output.result(
        f"Credits: {credits.available} available, {credits.frozen} frozen, {credits.total} total",
        credits,
    )
    return 0


async def login_command(ctx: Context) -> int:
    """Get (or reuse) the anonymous token and say so, without showing it."""
    client = await ctx.client()
    credits = await client.credits()  # the first authenticated call fetches the token
    where = CredentialStore(client.home).path
    ctx.output.result(
        f"Connected. {credits.available} credits available. Credentials saved in {where}",
        {"credentials": str(where), "credits": credits},
    )
    return 0


async def logout_command(ctx: Context) -> int:
    """Forget the saved anonymous credentials (with --local, the local backend's too),
    whatever the file holds: a damaged one is moved aside whole, never left in the way."""
    store = CredentialStore(ctx.home)
    found = store.read()
    kept_as: Path | None = None
    if found.problem is not None:
        kept_as = store.set_aside(found.problem)  # one line says why and where
        if kept_as is None:
            ctx.output.error(f"could not remove the damaged {store.path}")
            return 1
        removed = True
        message = f"Removed {store.path} (damaged; kept as {kept_as.name})"
    else:
        removed = store.delete()
        message = f"Removed {store.path}" if removed else "No saved credentials to remove."
    if ctx.args.local:
        from nemo_sync.emulator._store_admin import sign_out

        # The local backend's tokens are revoked too, so the next --local command signs in
        # afresh; without a readable file, the client id is the machine's (what it used).
        saved = found.credentials
        client_id = saved.client_id if saved else _machine_client_id()
        if client_id:
            await asyncio.to_thread(sign_out, ctx.local_data_dir, client_id)
    data = {"removed": removed, "path": str(store.path)}
    if kept_as is not None:
        data |= {"damaged": found.problem, "kept_as": str(kept_as)}
    ctx.output.result(message, data)
    return 0


def _machine_client_id() -> str | None:
    """The client id a --local command would use: NEMO_CLIENT_ID, else the machine's file."""
    return resolve_client_id(None) or read_client_id(shared_client_id_path())


async def reset_command(ctx: Context) -> int:
    """Empty the local backend: its sessions, media, renders and accounts, and what this
    machine remembers of them (local credentials, last session, render jobs), whatever state
    they are in: a damaged database, a file where a folder should be, copies set aside."""
    if not ctx.args.local:
        ctx.output.error("reset only empties the local backend: nemo-sync --local reset")
        return 2
    from nemo_sync.emulator._store_admin import Emptied, empty_folder, remove_paths

    home = ctx.home
    if os.path.lexists(home) and (home.is_symlink() or not home.is_dir()):
        # A file where the local folder should be: it is all there is to remove.
        emptied, forgotten = Emptied(), await asyncio.to_thread(remove_paths, [home])
    else:
        emptied = await asyncio.to_thread(empty_folder, ctx.local_data_dir)
        # exports.json holds the idempotency keys of those jobs: a key kept after the reset
        # would answer with a render the reset removed.
        files = [
            CredentialStore(home).path,
            home / CLI_STATE,
            home / JOBS_FILE,
            home / EXPORTS_FILE,
        ]
        # Copies of them set aside as damaged (``<name>.damaged-<time>``) go too.
        files += sorted(p for f in files for p in home.glob(f"{f.name}{DAMAGED_SUFFIX}*"))
        forgotten = await asyncio.to_thread(remove_paths, files)
    removed: dict[str, int] = dict(emptied.records)
    if emptied.files:
        removed["files"] = emptied.files
    paths = [str(path) for path in emptied.removed + forgotten.removed]
    lines = [f"Removed {count} {kind} record(s)" for kind, count in removed.items()]
    lines += [f"Removed {path}" for path in paths]
    problems = emptied.problems + forgotten.problems
    ctx.output.result(
        "\n".join(lines) or "The local backend was already empty.",
        {
            "data_dir": str(ctx.local_data_dir),
            "removed": removed,
            "files": paths,
            "problems": problems,
        },
    )
    for problem in problems:
        ctx.output.error(f"could not remove {problem}")
    return 1 if problems else 0


async def state_command(ctx: Context) -> int:
    """Show the session's timeline."""
    session = await ctx.session(ctx.args.session)
    state = await session.state()
    lines = [state.draft.summary()]
    if state.media:
        lines.append("Media: " + ", ".join(f"{m.name} ({m.kind})" for m in state.media))
    ctx.output.result(
        "\n".join(lines),
        {"session_id": session.id, "draft": state.draft.to_wire(), "media": list(state.media)},
    )
    return 0
