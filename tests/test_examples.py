"""The examples and the notebook run against the emulator (as users would run them)."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


async def test_quick_edit(tmp_path: Path) -> None:
    import quick_edit

    path = await quick_edit.main(["--local", "--out", str(tmp_path)])
    assert path.stat().st_size > 10_000


async def test_batch_renders_one_video_per_clip(tmp_path: Path) -> None:
    import batch

    paths = await batch.main(["--local", "--out", str(tmp_path)])
    assert len(paths) == 3
    assert all(p.exists() for p in paths)
    assert [p.name for p in paths] == [
        f"batch-{n}-{p.name.split('-', 2)[2]}" for n, p in enumerate(paths, 1)
    ]
    assert not any(p.name.endswith(".mp4.mp4") for p in paths)


async def test_iterative(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import iterative

    path = await iterative.main(["--local", "--out", str(tmp_path)])
    assert path.exists()
    printed = capsys.readouterr().out
    assert "Timeline (3 tracks)" in printed


@pytest.mark.slow
def test_the_notebook_runs_in_a_real_kernel_and_shows_its_results(tmp_path: Path) -> None:
    """The example notebook, executed by nbclient in an ipykernel (as Jupyter runs it): no
    error output, a progress display for the uploads and the render without any callback,
    the session's browser link, the reply with the timeline drawn, and the video as a player.
    """
    import nbclient
    import nbformat

    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], outputs
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    text = "".join(str(o.get("text", "")) for o in outputs if o.output_type == "stream")
    # Progress without a callback: tqdm's widget (with ipywidgets), else plain lines.
    assert widgets or "upload 3 files: 100%" in text, outputs
    assert any("<b>Session</b>" in h and "open in the browser" in h for h in html)
    assert any(h.startswith("<p>") and "<svg" in h for h in html)  # the reply, then the timeline
    assert any(h.startswith("<svg") for h in html)  # the draft on its own
    videos = [h for h in html if "<video" in h]
    assert any('src="http' in v for v in videos)  # the render result, from its URL
    assert any("data:video/mp4;base64," in v for v in videos)  # the downloaded file, embedded
