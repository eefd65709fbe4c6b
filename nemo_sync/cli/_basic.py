"""Small commands: credits, login, logout, state, reset."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nemo_sync._credentials import CredentialStore
from nemo_sync._jobstore import JOBS_FILE
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
    """Forget the saved anonymous credentials (with --local, the local backend's too)."""
    store = CredentialStore(ctx.home)
    saved = store.load()
    removed = store.delete()
    message = f"Removed {store.path}" if removed else "No saved credentials to remove."
    if ctx.args.local and saved is not None:
        from nemo_sync.emulator._store_admin import sign_out

        # The local backend gives one token per machine a week, as the service does: its
        # token is revoked too, so the next --local command can sign in again at once.
        await asyncio.to_thread(sign_out, ctx.local_data_dir, saved.client_id)
    ctx.output.result(message, {"removed": removed, "path": str(store.path)})
    return 0


async def reset_command(ctx: Context) -> int:
    """Empty the local backend: its sessions, media, renders and accounts, and what this
    machine remembers of them (local credentials, last session, render jobs)."""
    if not ctx.args.local:
        ctx.output.error("reset only empties the local backend: nemo-sync --local reset")
        return 2
    from nemo_sync.emulator._store_admin import empty_folder

    removed = await asyncio.to_thread(empty_folder, ctx.local_data_dir)
    files = [CredentialStore(ctx.home).path, ctx.home / CLI_STATE, ctx.home / JOBS_FILE]
    forgotten = [str(path) for path in files if _unlink(path)]
    lines = [f"Removed {count} {kind} record(s)" for kind, count in removed.items()]
    lines += [f"Removed {path}" for path in forgotten]
    ctx.output.result(
        "\n".join(lines) or "The local backend was already empty.",
        {"data_dir": str(ctx.local_data_dir), "removed": removed, "files": forgotten},
    )
    return 0


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


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
