"""Notebook 07's exercises as a learner meets them: in a real Jupyter kernel, after the
notebook's own set-up cell, on ipykernel's running loop (top-level await).

For each exercise: the cell as the notebook ships it (its ``____`` is caught), the shipped
solution passes, and two typical wrong answers (the notebook's own cell with the blanks
filled wrongly) fail with the words meant for them. One kernel for the whole notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "07-function-calling.ipynb"
SOLUTIONS = ROOT / "workshop_lib" / "checks" / "solutions"


def exercise_cell(label: str) -> str:
    """The notebook's code cell that ends with ``{label}.check(...)``."""
    cells = nbformat.read(NOTEBOOK, 4).cells
    return next(
        c.source
        for c in cells
        if c.cell_type == "code" and re.search(rf"^{label}\.check\(", c.source, re.M)
    )


def blanks(cell: str) -> int:
    """How many ``____`` the learner fills (an import of the name itself is not one)."""
    return sum(line.count("____") for line in cell.splitlines() if not line.startswith("from "))


def fill(cell: str, *values: str) -> str:
    """The cell with its blanks replaced, in order, by ``values``."""
    assert len(values) == blanks(cell), cell
    pending = list(values)
    lines = []
    for line in cell.splitlines():
        while not line.startswith("from ") and "____" in line:
            line = line.replace("____", pending.pop(0), 1)
        lines.append(line)
    return "\n".join(lines)


# (label, the solution file, [(a wrong cell, the words its message must have), ...])
CASES = [
    (
        "q1",
        "07_tool_loop.py",
        [
            (
                ('call["call_id"]', "json.dumps(result)", "pass"),
                ("did not finish", "starts no response by itself"),
            ),
            (
                (
                    'call["call_id"]',
                    "str(result)",
                    'await websocket.send(\'{"type": "response.create"}\')',
                ),
                ("is not JSON", "json.dumps(result)"),
            ),
        ],
    ),
    (
        "q2",
        "07_two_calls.py",
        [
            (('done["response"]["output"][:1]',), ("1 output for its 2 calls",)),
            (
                ('[c for c in done["response"]["output"] if c["name"] == "nothing"]',),
                ("without a function_call_output",),
            ),
        ],
    ),
    (
        "q3",
        "07_failing_tool.py",
        [
            (("str(exc)",), ('send {"error": str(exc)}',)),
            (("get_weather(**json.loads(call['arguments']))",), ("so did your loop",)),
        ],
    ),
]


def run_cells(sources: list[str]) -> list[str]:
    """Run ``sources`` in one fresh kernel, in order; each cell's text output."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = NotebookClient(
        notebook,
        timeout=60,
        allow_errors=True,  # a cell's error is recorded and the next cells still run
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    texts = []
    for cell in notebook.cells:
        parts = []
        for output in cell.outputs:
            if output.get("output_type") == "error":
                parts.append(f"ERROR {output['ename']}: {output['evalue']}")
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
        texts.append("".join(parts))
    return texts


def test_each_exercise_its_blank_its_solution_and_two_wrong_answers() -> None:
    cells = nbformat.read(NOTEBOOK, 4).cells
    setup = next(c.source for c in cells if c.cell_type == "code")
    sources = [setup]
    expected: list[tuple[str, tuple[str, ...]]] = [("setup", ())]
    for label, solution, wrongs in CASES:
        shipped = exercise_cell(label)
        sources.append(shipped)
        expected.append((f"{label} as shipped", ("Not yet", "replace every ____")))
        sources.append((SOLUTIONS / solution).read_text(encoding="utf-8"))
        expected.append((f"{label} solution", ("Correct",)))
        for index, (values, says) in enumerate(wrongs):
            sources.append(fill(shipped, *values))
            expected.append((f"{label} wrong {index + 1}", ("Not yet", *says)))
    sources.append("server.stop()")
    expected.append(("clean up", ()))
    outputs = run_cells(sources)
    for (name, says), output in zip(expected, outputs, strict=True):
        assert "ERROR" not in output, (name, output)
        for words in says:
            assert words in output, (name, words, output)


@pytest.mark.parametrize("label", ["q1", "q2", "q3"])
def test_the_shipped_cells_blanks_are_where_the_wrong_answers_fill_them(label) -> None:
    shipped = exercise_cell(label)
    wrongs = next(w for lab, _, w in CASES if lab == label)
    assert blanks(shipped) >= 1
    assert all(len(values) == blanks(shipped) for values, _ in wrongs)
