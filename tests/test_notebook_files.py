"""The notebooks as committed: no outputs (a learner's first run is theirs), an opening that
says what you'll do, learn and need, and a clean-up section that is the last code to run."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb")
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    cells = nbformat.read(path, 4).cells
    ran = [
        i for i, c in enumerate(cells) if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert ran == [], f"{path.name}: clear the outputs of cells {ran} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_opens_with_what_you_will_do_learn_and_need(path: Path) -> None:
    first = nbformat.read(path, 4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    for part in ("**What you'll do:**", "**What you'll learn:**", "**What you need:**"):
        assert part in first.source, f"{path.name}'s first cell lacks {part}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ends_with_a_clean_up_cell(path: Path) -> None:
    cells = nbformat.read(path, 4).cells
    headings = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "markdown" and re.match(r"## (\d+\. )?Clean up", c.source)
    ]
    assert headings, f"{path.name} has no '## Clean up' section"
    after = [c for c in cells[headings[-1] + 1 :] if c.cell_type == "code"]
    assert len(after) == 1 and "stop" in after[0].source, (
        f"{path.name}: the clean-up cell should be the last code cell, and stop what it started"
    )
