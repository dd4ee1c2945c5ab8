"""The course's maps list every notebook: the README's lesson table, 00's "what comes next",
and each notebook's "Next:" link. Derived from notebooks/*.ipynb, so a new lesson that is
missing from a map fails here with the line to add."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = markdown.index(heading + "\n") + len(heading) + 1
    following = re.search(rf"^#{{1,{len(level)}}} ", markdown[start:], re.MULTILINE)
    return markdown[start : start + following.start()] if following else markdown[start:]


def _one_table(text: str) -> list[str]:
    """The rows of the one Markdown table in ``text``; fails if a blank line splits it."""
    lines = text.strip("\n").splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert rows, "no table"
    assert rows == list(range(rows[0], rows[-1] + 1)), (
        "the table is broken in two by a blank or other line"
    )
    return [lines[i] for i in rows[2:]]  # without the header and the --- line


def test_the_notebooks_are_found():
    assert NOTEBOOKS[:5] == [
        "00-setup-check",
        "01-echo",
        "02-bouncing-ball",
        "03-chat-room",
        "04-auth-and-errors",
    ]


def test_the_readme_lists_every_notebook_in_one_table_in_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = _one_table(_section(readme, "## The lessons"))
    listed = [re.search(r"\(notebooks/([^)]+)\.ipynb\)", row).group(1) for row in rows]
    assert listed == NOTEBOOKS, (
        "README.md's lesson table must list every notebook, in order; add a row "
        "| [`NAME`](notebooks/NAME.ipynb) | you will ... | N min | "
        f"for {set(NOTEBOOKS) - set(listed)}"
    )


def test_the_setup_check_maps_every_later_notebook():
    cells = nbformat.read(ROOT / "notebooks" / "00-setup-check.ipynb", 4).cells
    (section,) = [c.source for c in cells if c.source.startswith("## What comes next")]
    rows = _one_table(section.removeprefix("## What comes next"))
    listed = [re.search(r"\]\(([^)]+)\.ipynb\)", row).group(1) for row in rows]
    assert listed == NOTEBOOKS[1:], (
        "00-setup-check's 'What comes next' table must list every later notebook, in order; "
        f"missing: {set(NOTEBOOKS[1:]) - set(listed)}"
    )
    # Nothing promises a lesson "later" that the map already has, or does not have.
    assert not re.search(r"later notebook|coming in the next", "".join(c.source for c in cells))


@pytest.mark.parametrize(("notebook", "following"), list(itertools.pairwise(NOTEBOOKS[1:])))
def test_each_lesson_ends_with_a_link_to_the_next(notebook, following):
    cells = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", 4).cells
    text = "".join(c.source for c in cells if c.cell_type == "markdown")
    assert f"]({following}.ipynb)" in text.split("Next:")[-1], (
        f"{notebook} should end with 'Next: [`{following}.ipynb`]({following}.ipynb): ...'"
    )
    assert not re.search(r"later notebook|coming in the next", text), notebook


def test_each_lesson_says_how_long_it_takes_as_the_readme_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = _one_table(_section(readme, "## The lessons"))
    listed = {
        re.search(r"\(notebooks/([^)]+)\.ipynb\)", row).group(1): re.search(
            r"\| (\d+) min \|$", row.strip()
        ).group(1)
        for row in rows
    }
    for name in NOTEBOOKS:
        opening = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", 4).cells[0].source
        said = re.findall(r"About (\d+) min", opening)
        assert said == [listed[name]], (
            f"{name}: its first cell says {said} minutes, README.md's table {listed[name]}"
        )


# A course file named in a lesson's text: docs/..., workshop_lib/..., tests/..., bench/...
_COURSE_PATH = re.compile(r"`((?:docs|workshop_lib|tests|bench|binder)/[^`\s]*)`")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_files_a_lesson_names_are_links_that_open(notebook):
    """JupyterLab opens at the course's root (README), so a link from notebooks/ to
    ../docs/protocol.md opens that file; a path in backticks alone is one to go and find."""
    text = "\n".join(
        cell.source
        for cell in nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", 4).cells
        if cell.cell_type == "markdown"
    )
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:|#", target):
            continue  # a web address or a place in this notebook
        path = (ROOT / "notebooks" / target.split("#")[0]).resolve()
        assert path.exists() and ROOT in path.parents, f"{notebook}: {target} leads nowhere"
    linked = re.sub(r"\[`[^`]+`\]\([^)]+\)", "", text)
    bare = _COURSE_PATH.findall(linked)
    assert not bare, f"{notebook}: make these links, [`x`](../x): {bare}"
