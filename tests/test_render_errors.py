"""Render and analysis errors name the user's file, never where the emulator stored it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_sync import NemoClient
from nemo_sync.emulator import Emulator
from nemo_sync.errors import AgentError, RenderFailedError
from nemo_sync.local import make_sample_media

# Starts like an MP4 (an ``ftyp`` box), so a check of the first bytes lets it through; FFmpeg
# then finds nothing it can decode.
BROKEN_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"junk, not a movie " * 200
BROKEN_MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff" + b"junk, not a song " * 200


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory):
    return make_sample_media(tmp_path_factory.mktemp("media"), seconds=3.0)


def _internal(emu: Emulator) -> list[str]:
    """What must not show: the emulator's folder and the names it stored files under."""
    stored = [m.path.name for s in emu.sessions.values() for m in s.media.values()]
    return [str(emu.data_dir), "/tmp", *stored]


async def test_a_clip_that_cannot_be_decoded_fails_the_render_naming_it(
    media, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(BROKEN_MP4)
    async with Emulator(silent_ratio=0) as emu, NemoClient(base_url=emu.url) as nemo:
        session = await nemo.create_session()
        await session.upload(media.music)
        await session.upload(clip)
        await session.send("sync the background music to my video")
        job = await session.export()
        with pytest.raises(RenderFailedError) as caught:
            await job.wait(poll_interval=0.05)
        internal = _internal(emu)
    message = str(caught.value)
    assert "clip.mp4" in message
    assert not [word for word in internal if word in message], message


async def test_music_that_cannot_be_decoded_fails_the_beat_sync_naming_it(
    media, tmp_path: Path
) -> None:
    song = tmp_path / "song.mp3"
    song.write_bytes(BROKEN_MP3)
    async with Emulator(silent_ratio=0) as emu, NemoClient(base_url=emu.url) as nemo:
        session = await nemo.create_session()
        await session.upload(song)
        await session.upload(media.clips[0])
        with pytest.raises(AgentError) as caught:
            await session.send("sync the background music to my video")
        internal = _internal(emu)
    message = str(caught.value)
    assert "song.mp3" in message
    assert not [word for word in internal if word in message], message
