"""Lesson 02's exercise 2 (steer into a corner): the skeleton a learner fills in, its shipped
solution and its check tell the same story.

The skeleton hides only a few small pieces (when to stop, the pause, the kick); every other
line is the solution's. The numbers the exercise's text gives (the kick's range, how close
is close enough, what the check accepts) are the server's and the check's.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from workshop_lib.ball.model import MAX_KICK
from workshop_lib.checks.ball import q2

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02-bouncing-ball.ipynb"
SOLUTION = ROOT / "workshop_lib" / "checks" / "solutions" / "02_steer.py"


def _cells() -> list[tuple[str, str]]:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [(cell["cell_type"], "".join(cell["source"])) for cell in cells]


def _exercise() -> tuple[str, str]:
    """The exercise's text and its code cell (the one right after it)."""
    cells = _cells()
    for index, (kind, source) in enumerate(cells):
        if kind == "markdown" and re.match(r"## \d+\. Exercise 2: steer", source):
            return source, cells[index + 1][1]
    raise AssertionError("02 has no 'Exercise 2: steer' section")


def _functions(source: str) -> list[str]:
    """Each function of ``source`` as normalised code (docstrings, comments and line breaks
    inside statements gone), one line per statement."""
    tree = ast.parse(source)
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if ast.get_docstring(node) is not None:
                node.body = node.body[1:]
            found.append(ast.unparse(node))
    return found


def test_the_skeleton_is_the_solution_with_blanks() -> None:
    """Line for line, the skeleton's functions are the solution's, where each ``____`` stands
    for a piece of it; and the blanks are small (no more than a line's expression each)."""
    _, skeleton = _exercise()
    ours, theirs = _functions(skeleton), _functions(SOLUTION.read_text())
    assert len(ours) == len(theirs) == 2, (ours, theirs)  # clamp() and steer_to_corner()
    blanks = 0
    for skeleton_function, solution_function in zip(ours, theirs, strict=True):
        skeleton_lines = skeleton_function.splitlines()
        solution_lines = solution_function.splitlines()
        assert len(skeleton_lines) == len(solution_lines), (skeleton_function, solution_function)
        for line, answer in zip(skeleton_lines, solution_lines, strict=True):
            pattern = "(.+?)".join(re.escape(part) for part in line.split("____"))
            match = re.fullmatch(pattern, answer)
            assert match, f"the skeleton's\n  {line}\ndoes not fit the solution's\n  {answer}"
            blanks += len(match.groups())
            assert all(len(piece) <= 60 for piece in match.groups()), match.groups()
    assert blanks == 4, blanks  # when to stop, the pause, the kick's dx and dy


def test_the_text_gives_the_kick_and_the_tolerance() -> None:
    """What a kick is and how close counts are in the exercise's text, not only in the hint,
    with the server's and the check's own numbers."""
    text, skeleton = _exercise()
    assert "adds" in text and "velocity" in text  # a kick changes the velocity
    assert f"−{MAX_KICK:g} to {MAX_KICK:g}" in text
    assert f"within {q2.tolerance:g} of a corner" in text
    assert f"limit={MAX_KICK}" in skeleton  # the skeleton's clamp() keeps kicks in range
    assert "1 - radius" in text
