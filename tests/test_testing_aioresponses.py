"""A user's own unit test, without sockets: aioresponses plus nemo_sync.testing.

``make_synced_video`` stands for a piece of user code; the test below is the pattern
docs/testing.md shows (under 20 lines), run here so it keeps working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aioresponses import aioresponses

import nemo_sync
from nemo_sync.testing import error_reply, mock_happy_path


async def make_synced_video(nemo: nemo_sync.NemoClient, files: list[Path], out: Path) -> str:
    """User code: upload, ask for a sync, export, download; returns what the agent said."""
    session = await nemo.create_session()
    for path in files:
        await session.upload(path)
    reply = await session.send("sync the music to my cuts")
    job = await session.export()
    await job.wait(poll_interval=0)
    await job.download(out)
    return reply.text


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    (tmp_path / "song.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 64)
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    return [tmp_path / "song.mp3", tmp_path / "clip.mp4"]


@pytest.mark.parametrize("style", ["reference", "skill"])
async def test_make_synced_video_without_a_server(
    files: list[Path], tmp_path: Path, style: str
) -> None:
    with aioresponses() as m:
        mocked = mock_happy_path(m, style=style)  # type: ignore[arg-type]
        async with nemo_sync.NemoClient() as nemo:
            said = await make_synced_video(nemo, files, tmp_path / "out.mp4")
    assert said == mocked.reply_text
    assert (tmp_path / "out.mp4").read_bytes() == mocked.video
    chats = [k for k in m.requests if k[1].path == "/run_sse"]
    assert len(chats) == 1  # a chat message is never sent twice


async def test_out_of_credits_reaches_the_user_code_typed(
    files: list[Path], tmp_path: Path
) -> None:
    with aioresponses() as m:
        mock_happy_path(m, chat=error_reply(2001, "no credits"))
        async with nemo_sync.NemoClient() as nemo:
            with pytest.raises(nemo_sync.InsufficientCreditsError) as caught:
                await make_synced_video(nemo, files, tmp_path / "out.mp4")
    # The anonymous user's registration link, from the token reply's user_id [R].
    assert caught.value.bind_url == "https://nemovideo.com/register?bind=anon_test"
