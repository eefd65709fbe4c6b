"""Emulator: beat sync through the local engine (analysis, cut planning, a real render)."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import pytest

from nemo_sync.emulator import Emulator
from tests.emulator_raw import Raw, raw_client

QUICK_EDIT = "sync the background music to my video and adjust the beat drops to match the cuts"
RATE = 22050

pytestmark = pytest.mark.nemo_emulator(silent_ratio=0.0, render_seconds=0.0)


def click_track(seconds: float, bpm: float = 120.0) -> bytes:
    """A WAV with a short decaying click on every beat, louder on each bar's first."""
    frames = bytearray()
    period = 60.0 / bpm
    for i in range(int(seconds * RATE)):
        t = i / RATE
        beat, since = divmod(t, period)
        gain = 0.9 if int(beat) % 4 == 0 else 0.5
        value = gain * math.exp(-since * 60) * math.sin(2 * math.pi * 1000 * since)
        frames += struct.pack("<h", int(value * 32000))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return buffer.getvalue()


async def upload_all(raw: Raw, session_id: str, files: dict[str, bytes]) -> dict[str, str]:
    ids = {}
    for name, content in files.items():
        reply = await raw.upload(session_id, name, content)
        assert reply.status == 200, reply.body
        # The reply names media by URL [R]; the emulator's draft refers to its own ids.
        ids[name] = raw.emu.media_record(reply.data["files"][0]["cdn_url"]).id
    return ids


async def test_the_quick_edit_cuts_on_the_analysed_beats(raw: Raw, emu: Emulator) -> None:
    session_id = await raw.new_session()
    ids = await upload_all(
        raw, session_id, {"beat.wav": click_track(6.0), "a.mp4": b"\0" * 64, "b.mp4": b"\0" * 64}
    )
    stream = await raw.chat(session_id, QUICK_EDIT)
    assert [c["name"] for c in stream.calls] == ["beat_sync"]
    result = stream.responses[0]["response"]
    assert result["analysis"] == "audio"
    assert 115 <= result["bpm"] <= 125
    assert "BPM" in stream.texts[0]
    draft = (await raw.state(session_id)).data["state"]["draft"]
    assert draft["d"] == 6000  # the shorter of the music (6 s) and the clips (2 x 10 s)
    video = next(t for t in draft["t"] if t["tt"] == 0)["sg"]
    beats = draft["m"]["beats"]
    assert 10 <= len(beats) <= 13
    assert {s["mid"] for s in video} == {ids["a.mp4"], ids["b.mp4"]}
    for seg in video[1:]:
        assert min(abs(seg["st"] - b) for b in beats) <= 1, "every cut is on a beat"
    assert sum(s["d"] for s in video) == 6000
    assert set(draft["m"]["downbeats"]) <= set(beats)
    [bgm] = next(t for t in draft["t"] if t["tt"] == 1)["sg"]
    assert (bgm["mid"], bgm["st"], bgm["d"]) == (ids["beat.wav"], 0, 6000)
    assert emu.sessions[session_id].media[ids["beat.wav"]].beats is not None  # analysed once


async def test_chinese_sync(raw: Raw) -> None:
    session_id = await raw.new_session()
    await upload_all(raw, session_id, {"歌.wav": click_track(3.0), "a.mp4": b"\0" * 64})
    stream = await raw.chat(session_id, "帮我卡点")
    assert [c["name"] for c in stream.calls] == ["beat_sync"]
    assert "节拍" in stream.texts[0]


async def test_music_that_cannot_be_decoded_is_an_agent_error(raw: Raw) -> None:
    session_id = await raw.new_session()
    await upload_all(raw, session_id, {"song.mp3": b"not audio at all" * 10, "a.mp4": b"\0" * 64})
    before = await raw.credits()
    stream = await raw.chat(session_id, "sync to the beat")
    [event] = stream.events
    assert event["errorCode"] == "TOOL_ERROR"
    assert "song.mp3" in event["errorMessage"]
    assert not stream.turn_complete
    assert await raw.credits() == before
    assert (await raw.state(session_id)).data["version"] == 0


WITHOUT_EXTRA = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["av"] = None  # as if `pip install 'nemo-sync[local]'` had not been run
    sys.modules["numpy"] = None
    sys.path.insert(0, {root!r})
    from nemo_sync.emulator import NO_RENDERER, Emulator
    from tests.emulator_raw import raw_client
    from tests.test_emulator_sync import click_track

    async def main():
        async with Emulator(silent_ratio=0.0, render_seconds=0.0) as emu:
            assert emu.render_backend is None
            async with raw_client(emu) as raw:
                await raw.login()
                sid = await raw.new_session()
                song = await raw.upload(sid, "beat.wav", click_track(3.0))
                [facts] = song.data["files"]
                assert facts["duration"] == 3.0, song.data  # read by the stdlib
                await raw.upload(sid, "a.mp4", b"\\0" * 64)
                stream = await raw.chat(sid, "sync to the beat")
                assert stream.responses[0]["response"]["analysis"] == "grid", stream.raw
                assert "steady 120 BPM grid" in stream.texts[0], stream.texts
                draft = (await raw.state(sid)).data["state"]["draft"]
                assert draft["m"]["beats"][:3] == [0, 500, 1000], draft
                job = (await raw.render(sid)).data
                await emu.wait_for_renders()
                status = (await raw.render_status(job["id"])).payload
                assert status["error"] == NO_RENDERER, status
        print("ok")

    asyncio.run(main())
    """
)


def test_without_the_local_extra(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    script = tmp_path / "no_extra.py"
    script.write_text(WITHOUT_EXTRA.format(root=root))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.slow
async def test_a_real_render_of_the_quick_edit(tmp_path: Path) -> None:
    from nemo_sync.local import LocalRenderBackend, make_sample_media, probe

    samples = make_sample_media(tmp_path / "media", seconds=4.0)
    async with Emulator(silent_ratio=0.0, render_seconds=0.0) as emu, raw_client(emu) as raw:
        assert isinstance(emu.render_backend, LocalRenderBackend)
        await raw.login()
        session_id = await raw.new_session()
        for path in (samples.music, *samples.clips):
            await raw.upload(session_id, path.name, path.read_bytes())
        await raw.chat(session_id, QUICK_EDIT)
        draft = (await raw.state(session_id)).data["state"]["draft"]
        job = (await raw.render(session_id)).data
        await emu.wait_for_renders()
        done = (await raw.render_status(job["id"])).payload
        assert done["status"] == "completed", done
        async with raw.http.get(done["outputUrl"]) as download:  # [R], the default style
            content = await download.read()
    out = tmp_path / "synced.mp4"
    out.write_bytes(content)
    assert content[4:8] == b"ftyp"
    info = probe(out)
    assert (info.width, info.height) == (1080, 1920)  # the draft's canvas
    assert info.has_video
    assert info.has_audio
    assert abs(info.duration_ms - draft["d"]) <= 100
