"""Every notebook top to bottom without a front end, as nbval runs it (``--nbval-lax``: they
are committed without outputs, so every cell must run without an error).

tests/browser/test_jupyterlab*.py run the same notebooks inside JupyterLab, which proves
their widgets; this proves they also run in a plain kernel (``jupyter nbconvert --execute``,
a classic Jupyter, an editor's notebook view). Each notebook runs in a pytest of its own, on
a copy of ``notebooks/``, in one process (nbval's cells share one kernel: spread over
xdist's workers they would not).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_there_are_notebooks_to_run() -> None:
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_notebook_runs_top_to_bottom_in_nbval(notebook: str, tmp_path: Path) -> None:
    copy = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-n", "0", "-q"]
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(copy / notebook)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
