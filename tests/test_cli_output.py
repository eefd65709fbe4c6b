"""What the CLI writes to a terminal: server text with control characters escaped, and one
line (no traceback) for an error unless -v."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from nemo_sync._session_state import SessionState
from nemo_sync.cli import _basic, main
from nemo_sync.cli._context import Context
from nemo_sync.cli._output import Output, terminal_safe
from nemo_sync.errors import APIResponseError
from tests.scripted import ScriptedServer, envelope

# ESC (clear screen), BEL, NUL, CR, DEL, CSI as one C1 byte, a backspace: all terminal controls.
HOSTILE = "clip\x1b[2J\x07\x00\x0d\x7f\x9b31m\x08"
CONTROLS = ["\x1b", "\x07", "\x00", "\r", "\x7f", "\x9b", "\x08"]


def _output(
    *, as_json: bool = False, verbose: bool = True
) -> tuple[Output, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Output(as_json=as_json, verbose=verbose, out=out, err=err), out, err


def test_terminal_safe_escapes_controls_and_keeps_text() -> None:
    assert terminal_safe(HOSTILE) == r"clip\x1b[2J\x07\x00\x0d\x7f\x9b31m\x08"
    kept = "two\nlines\tand 中文, ⏳, é, emoji 🎵"
    assert terminal_safe(kept) == kept
    assert terminal_safe("windows\r\nline") == "windows\nline"


def test_every_output_channel_escapes_controls() -> None:
    output, out, err = _output()
    output.result(HOSTILE)
    output.say(HOSTILE)
    output.say(HOSTILE, end="")
    output.info(HOSTILE)
    output.error(HOSTILE)
    output.hint(HOSTILE)
    with output.progress(HOSTILE, total=10) as bar:
        bar.update_to(10)
    written = out.getvalue() + err.getvalue()
    assert written.count(r"clip\x1b[2J") == 7
    assert not any(c in written for c in CONTROLS)


def test_json_output_escapes_del_and_c1_and_still_parses_to_the_same_text() -> None:
    output, out, err = _output(as_json=True)
    output.result("ignored", {"name": HOSTILE})
    output.say(HOSTILE)
    text = out.getvalue()
    assert not any(c in text + err.getvalue() for c in CONTROLS)
    assert json.loads(text) == {"name": HOSTILE}


def _hostile_state(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = {
        "state": {
            "draft": {
                "t": [
                    {"tt": 0, "sg": [{"n": HOSTILE, "st": 0, "d": 1000}]},
                    {"tt": 9, "n": "track\x1b]0;owned\x07", "sg": []},
                ]
            }
        }
    }

    class FakeSession:
        id = "s\x1b[1m1"

        async def state(self) -> SessionState:
            return SessionState.from_data(reply, "GET /state")

    async def session(self: Context, session_id: str | None) -> FakeSession:
        return FakeSession()

    monkeypatch.setattr(Context, "session", session)


@pytest.mark.parametrize("as_json", [False, True])
def test_state_escapes_server_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    _hostile_state(monkeypatch)
    code = main(["--json", "state"] if as_json else ["state"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert not any(c in captured.out + captured.err for c in CONTROLS)
    if as_json:
        assert json.loads(captured.out)["draft"]["t"][0]["sg"][0]["n"] == HOSTILE
    else:
        assert r"clip\x1b[2J\x07\x00\x0d\x7f\x9b31m\x08" in captured.out
        assert r"track\x1b]0;owned\x07" in captured.out


def _failing_command(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    async def credits_command(ctx: Context) -> int:
        raise exc

    monkeypatch.setattr(_basic, "credits_command", credits_command)


def test_an_error_message_from_the_server_is_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_command(monkeypatch, APIResponseError(f"bad reply: {HOSTILE}", endpoint="GET /x"))
    assert main(["credits"]) == 1
    err = capsys.readouterr().err
    assert r"bad reply: clip\x1b[2J" in err
    assert not any(c in err for c in CONTROLS)


@pytest.mark.parametrize(
    "exc",
    [RecursionError("maximum recursion depth exceeded"), KeyError("x\x1b[2J"), TypeError("t")],
    ids=["RecursionError", "KeyError", "TypeError"],
)
def test_an_unexpected_error_is_one_line_without_v(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: Exception
) -> None:
    _failing_command(monkeypatch, exc)
    assert main(["credits"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: unexpected {type(exc).__name__}")
    assert lines[0].endswith("(run with -v for the traceback)")
    assert "\x1b" not in err


def test_an_unexpected_error_with_v_shows_the_traceback_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_command(monkeypatch, RuntimeError("boom \x1b[2J"))
    assert main(["-v", "credits"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert r"RuntimeError: boom \x1b[2J" in err
    assert "\x1b" not in err


def test_a_huge_unexpected_message_is_cut(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_command(monkeypatch, LookupError("x" * 1_000_000 + "\nsecond line"))
    assert main(["credits"]) == 1
    err = capsys.readouterr().err
    assert len(err) < 1_000
    assert "second line" not in err


async def test_an_anonymous_users_2001_prints_the_registration_link(
    api: ScriptedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """[V 1.9][R]: an anonymous user out of credits is shown <web>/register?bind=<user_id>."""
    api.clear("POST", "/api/auth/anonymous-token")
    api.reply(
        "POST",
        "/api/auth/anonymous-token",
        lambda: envelope({"token": "nmv_usr_x", "user_id": "anon_abc123", "credits": 100}),
    )
    api.reply(
        "GET",
        "/api/credits/balance/simple",
        lambda: envelope(None, code=2001, message="Insufficient credits"),
    )
    monkeypatch.setenv("NEMO_API_URL", api.url)
    monkeypatch.setenv("NEMO_WEB_URL", "https://web.example")
    assert await asyncio.to_thread(main, ["credits"]) == 1
    err = capsys.readouterr().err
    assert "https://web.example/register?bind=anon_abc123" in err
    assert "nmv_usr_x" not in err
