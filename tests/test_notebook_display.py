"""What a notebook shows, checked without a kernel (the kernel run is in test_examples)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import nemo_sync
from nemo_sync._notebook import MAX_EMBEDDED_VIDEO, VideoFile, in_notebook, notebook_progress
from nemo_sync._render_job import RenderResult


def test_outside_a_kernel_nothing_is_displayed(capsys: pytest.CaptureFixture[str]) -> None:
    assert not in_notebook()
    with notebook_progress(None, "upload a.mp4", total=10) as shown:
        assert shown is None  # scripts and services print nothing they did not ask for
    assert capsys.readouterr().out == ""


def test_in_a_kernel_without_widgets_progress_is_plain_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setitem(sys.modules, "tqdm.notebook", None)  # no tqdm widget: lines instead
    assert in_notebook()
    with notebook_progress(None, "upload a.mp4", total=100) as shown:
        assert shown is not None
        for done in (0, 5, 10, 55, 100):
            shown(done, 100)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["upload a.mp4: 0%", "upload a.mp4: 10%", "upload a.mp4: 50%",
                     "upload a.mp4: 100%"]  # fmt: skip
    own: list[tuple[int, int | None]] = []
    with notebook_progress(lambda d, t: own.append((d, t)), "x", total=1) as given:
        assert given is not None
        given(1, 1)
    assert own == [(1, 1)]  # a callback of the caller's wins: no display beside it


def test_a_render_result_shows_its_video_or_its_status() -> None:
    done = RenderResult(status="completed", progress=100, download_url='https://c/x".mp4')
    assert '<video src="https://c/x&quot;.mp4"' in done._repr_html_()
    failed = RenderResult(status="failed", error="<codec>")
    assert failed._repr_html_() == "<p>render failed: &lt;codec&gt;</p>"


def test_a_downloaded_video_is_a_path_that_plays(tmp_path: Path) -> None:
    path = tmp_path / "synced.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    video = VideoFile(path)
    assert video == path
    assert isinstance(video, Path)
    assert video.read_bytes() == path.read_bytes()
    assert "data:video/mp4;base64,AAAAGGZ0eXBtcDQy" in video._repr_html_()
    with path.open("r+b") as f:
        f.truncate(MAX_EMBEDDED_VIDEO + 1)
    assert "too large to embed" in VideoFile(path)._repr_html_()


async def test_a_chat_result_and_a_session_show_themselves(
    nemo_client: nemo_sync.NemoClient,
) -> None:
    session = await nemo_client.create_session()
    assert f"<code>{session.id}</code>" in session._repr_html_()
    await session.claim_url()
    assert "open in the browser" in session._repr_html_()
    await session.upload(b"\x00\x00\x00\x18ftypmp42" + bytes(64), filename="c<1>.mp4")
    result = await session.send("make it 16:9")
    shown = result._repr_html_()
    assert "<svg" in shown
    assert "c&lt;1&gt;" in shown or "16:9" in shown
