"""Emulator: `undo` in chat reverts the last edit, one turn at a time, and persists."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.emulator._edits import HISTORY_DEPTH
from nemo_sync.emulator._intent import Intent, parse
from tests.emulator_raw import Raw

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0, gui_phrase_ratio=0.0)


@pytest.mark.parametrize(
    "text", ["undo", "Undo that", "revert the last change", "undo the title", "撤销", "撤回上一步"]
)
def test_undo_is_read_as_an_undo_only(text: str) -> None:
    intent = parse(text)
    assert intent.undo
    assert intent.edits  # a turn that changes the draft, paid as any edit
    # "undo the title" names what to undo; it asks for no new title.
    assert intent == Intent(undo=True, chinese=intent.chinese)


@pytest.mark.parametrize("text", ["sync the music", "add the title 'Undone'", "make it 9:16"])
def test_other_instructions_are_not_undo(text: str) -> None:
    assert not parse(text).undo


async def test_undo_reverts_edit_by_edit_and_then_says_there_is_nothing(raw: Raw) -> None:
    session_id = await raw.new_session()
    assert (await raw.upload(session_id, "city.mp4", b"\x00" * 64)).status == 200
    empty = (await raw.state(session_id)).data["state"]["draft"]
    await raw.chat(session_id, "make it 16:9")
    laid_out = (await raw.state(session_id)).data["state"]["draft"]
    await raw.chat(session_id, 'add the title "Hello"')
    assert any(t["tt"] == 7 for t in (await raw.state(session_id)).data["state"]["draft"]["t"])

    stream = await raw.chat(session_id, "undo")
    assert [c["name"] for c in stream.calls] == ["undo"]
    assert "Undid the last edit" in stream.texts[0]
    assert [e["actions"]["stateDelta"] for e in stream.events if e["actions"]["stateDelta"]] == [
        {"draft_version": 3}
    ]
    state = (await raw.state(session_id)).data
    assert state["state"]["draft"] == laid_out
    assert state["version"] == 3  # an undo is a change: clients see the version move on

    await raw.chat(session_id, "撤销")
    assert (await raw.state(session_id)).data["state"]["draft"] == empty
    stream = await raw.chat(session_id, "undo")
    assert stream.calls == []
    assert "no edit to undo" in stream.texts[0]
    assert (await raw.state(session_id)).data["version"] == 4  # nothing changed


async def test_an_edit_after_an_undo_is_undone_back_to_the_undone_draft(raw: Raw) -> None:
    session_id = await raw.new_session()
    await raw.upload(session_id, "city.mp4", b"\x00" * 64)
    await raw.chat(session_id, "make it 16:9")
    await raw.chat(session_id, 'add the title "A"')
    await raw.chat(session_id, "undo")
    after_undo = (await raw.state(session_id)).data["state"]["draft"]
    await raw.chat(session_id, "make it 1:1")
    await raw.chat(session_id, "undo")
    assert (await raw.state(session_id)).data["state"]["draft"] == after_undo


async def test_undo_history_is_bounded(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    await raw.upload(session_id, "city.mp4", b"\x00" * 64)
    for index in range(HISTORY_DEPTH + 5):
        await raw.chat(session_id, f'add the title "T{index}"')
    assert len(emu.sessions[session_id].history) == HISTORY_DEPTH


async def test_undo_works_after_a_restart_of_a_persistent_emulator(tmp_path: Path) -> None:
    folder = tmp_path / "backend"
    clip = tmp_path / "city.png"
    clip.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    async with Emulator(data_dir=folder, silent_ratio=0, gui_phrase_ratio=0) as first:
        async with NemoClient(base_url=first.url, home=tmp_path / "h") as nemo:
            session = await nemo.create_session()
            await session.upload(clip)
            await session.send("make it 16:9")
            before = (await session.state()).draft_wire
            await session.send('add the title "Gone soon"')
    async with Emulator(data_dir=folder, silent_ratio=0, gui_phrase_ratio=0) as second:
        async with NemoClient(base_url=second.url, home=tmp_path / "h") as nemo:
            again = nemo.session(session.id, task_id=session.task_id)
            reply = await again.send("undo")
            assert "Undid the last edit" in reply.text
            assert (await again.state()).draft_wire == before
