"""The examples and the notebook run against the emulator (as users would run them)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

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


async def test_the_notebook_runs_and_draws_the_timeline() -> None:
    notebook = json.loads((EXAMPLES / "notebook.ipynb").read_text())
    namespace: dict[str, Any] = {}
    results = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # Jupyter runs cells with top-level await; so does this.
        code = compile(source, "<notebook>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        outcome = eval(code, namespace)
        if outcome is not None:
            await outcome
        tree = ast.parse(source)
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = compile(
                ast.Expression(tree.body[-1].value),
                "<notebook>",
                "eval",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            value = eval(last, namespace)
            results.append(await value if hasattr(value, "__await__") else value)
    drafts = [r for r in results if hasattr(r, "_repr_html_")]
    assert drafts
    assert drafts[0]._repr_html_().startswith("<svg")
    videos = [r for r in results if isinstance(r, Path) and r.suffix == ".mp4"]
    assert videos
    assert not namespace["workdir"].exists()  # the last cell removes everything it made
    assert sys.modules.get("nemo_sync") is not None
