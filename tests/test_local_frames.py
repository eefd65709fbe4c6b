"""The render's pictures: centre-crop then scale, titles blended in yuv420p, frames never shared."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from nemo_sync.local._frames import ClipReader, Title, black

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)


@pytest.fixture(scope="module")
def thirds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 640x360 clip: red, green and blue thirds, side by side."""
    path = tmp_path_factory.mktemp("clip") / "thirds.mp4"
    picture = np.zeros((360, 640, 3), np.uint8)
    picture[:, :213], picture[:, 213:427], picture[:, 427:] = RED, GREEN, BLUE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(int)


def test_a_portrait_canvas_shows_the_centre_of_a_landscape_clip(thirds: Path) -> None:
    reader = ClipReader(thirds, 360, 640)
    try:
        frame = reader.frame_at(0.5)
        assert (frame.width, frame.height, frame.format.name) == (360, 640, "yuv420p")
        rgb = _rgb(frame)
        # The centre third is 213 px of 640: the 202 px crop is all green, edge to edge.
        assert np.abs(rgb[:, 8:-8].mean(axis=(0, 1)) - GREEN).max() < 12
        assert reader.frame_at(0.5) is frame  # the same source frame: no second scale
        assert reader.frame_at(2.5).width == 360  # past the end it loops
    finally:
        reader.close()


def test_a_landscape_canvas_shows_all_of_it(thirds: Path) -> None:
    reader = ClipReader(thirds, 1280, 720)
    try:
        rgb = _rgb(reader.frame_at(0.0))
    finally:
        reader.close()
    assert np.abs(rgb[360, 100] - RED).max() < 15
    assert np.abs(rgb[360, 640] - GREEN).max() < 15
    assert np.abs(rgb[360, 1180] - BLUE).max() < 15


def test_a_title_is_drawn_on_a_copy(thirds: Path) -> None:
    canvas = black(360, 640)
    titled = Title("Urban Dreams", 360, 640).draw(canvas)
    before, after = _rgb(canvas), _rgb(titled)
    assert before.max() <= 2  # the shared frame is untouched
    band = after[int(640 * 0.12) : int(640 * 0.12) + 40]
    assert band.max() >= 240  # white letters
    assert after[300:].max() <= 2  # nothing below the title
    gray = np.abs(after - after.mean(axis=2, keepdims=True)).max()
    assert gray <= 12  # white on black stays colourless: chroma blended consistently
