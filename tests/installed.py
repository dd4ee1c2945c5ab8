"""Packages installed the way a learner installs them: wheels, a fresh venv, ``serve``.

A clone works through its editable install, which can hide a file that never made it into
the wheel. These helpers build real wheels (without network: the build tools are installed)
and install them, not editable, into a new virtual environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Build products and caches never belong in a copy that is built.
_SKIP = (".venv", ".git", "build", "test-artifacts", "*.egg-info", "__pycache__", "*.pyc")


def build_wheel(tree: Path, scratch: Path) -> Path:
    """A wheel of the project at ``tree``, built from a copy of it in ``scratch``.

    From a copy: pip builds in the source tree (build/, *.egg-info), and two builds of one
    tree at once (two xdist workers, or a developer's own) break each other.
    """
    source = scratch / "tree"
    shutil.copytree(tree, source, ignore=shutil.ignore_patterns(*_SKIP))
    out = scratch / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*build, "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def fresh_venv(home: Path, wheels: list[Path]) -> Path:
    """A new venv with ``wheels`` installed (not editable); its python.

    The dependencies (websockets, ipywidgets, ...) come from this test run's environment
    through a path entry, so nothing is downloaded; the test run's own editable
    ``workshop_lib`` is not on that path (editable installs hook in through .pth files,
    which a plain path entry does not run), and the wheels' copies come first anyway.
    """
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", *map(str, wheels)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def outside_env() -> dict[str, str]:
    """This environment without PYTHONPATH: the fresh venv sees only what is installed in it."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@contextmanager
def serving(python: Path, cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m workshop_lib serve --port 0``, run in ``cwd``: its base URL and process.

    Its log (stderr) is in a file, ``cwd / "serve.log"``, for a test to read.
    """
    log = (cwd / "serve.log").open("w")
    process = subprocess.Popen(
        [str(python), "-m", "workshop_lib", "serve", "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=outside_env(),
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the banner's first address line names the port
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                yield found.group(1), process
                break
        else:
            pytest.fail(f"serve printed no address: {(cwd / 'serve.log').read_text()[-3000:]}")
    finally:
        process.terminate()
        process.wait(10)
        log.close()
