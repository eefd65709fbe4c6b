"""Small commands: credits, login, logout, state."""

from __future__ import annotations

from nemo_sync._credentials import CredentialStore
from nemo_sync.cli._context import Context


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
    """Forget the saved anonymous credentials."""
    store = CredentialStore(ctx.home)
    removed = store.delete()
    message = f"Removed {store.path}" if removed else "No saved credentials to remove."
    ctx.output.result(message, {"removed": removed, "path": str(store.path)})
    return 0


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
