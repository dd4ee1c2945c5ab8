"""The package stands on its own: a wheel, installed non-editable, serves the whole course.

A clone works through its editable install, which can hide a file that never made it into
the wheel (the browser client, the ball's canvas script, the solutions). Here a real wheel
is built and installed into a fresh virtual environment, and run from a folder outside
the repository.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "workshop_lib"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built without network (the build tools are installed)."""
    out = tmp_path_factory.mktemp("wheel")
    # From a copy: pip builds in the source tree (build/, *.egg-info), and two builds of one
    # tree at once (two xdist workers, or a developer's own) break each other.
    source = tmp_path_factory.mktemp("source") / "tree"
    skip = (".venv", ".git", "build", "test-artifacts", "*.egg-info", "__pycache__", "*.pyc")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    built_it = subprocess.run(
        [*build, "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built_it.returncode == 0, built_it.stderr[-3000:]
    (built,) = out.glob("workshop_lib-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed (not editable); its dependencies are borrowed.

    The dependencies (websockets, ipywidgets, ...) come from this test run's environment
    through a path entry, so nothing is downloaded; the test run's own editable
    ``workshop_lib`` is not on that path (editable installs hook in through .pth files,
    which a plain path entry does not run), and the wheel's copy comes first anyway.
    """
    home = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
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


def run_fresh(python: Path, code: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def served(fresh_python: Path, tmp_path: Path) -> Iterator[str]:
    """``python -m workshop_lib serve --port 0`` from the fresh venv; yields its base URL."""
    process = subprocess.Popen(
        [str(fresh_python), "-m", "workshop_lib", "serve", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the banner's first address line names the port
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                yield found.group(1)
                break
        else:
            pytest.fail(f"serve printed no address: {process.stderr and process.stderr.read()}")
    finally:
        process.terminate()
        process.wait(10)


def test_the_wheel_holds_the_browser_client_the_canvas_and_the_solutions(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("static", "*"), ("ball", "*.js"), ("checks/solutions", "*.py")):
        for file in (PACKAGE / folder).glob(pattern):
            assert f"workshop_lib/{folder}/{file.name}" in names, f"{file.name} is not in the wheel"


def test_the_installed_package_is_the_wheel_not_the_clone(fresh_python: Path, tmp_path: Path):
    where = run_fresh(fresh_python, "import workshop_lib; print(workshop_lib.__file__)", tmp_path)
    assert str(ROOT) not in where and "site-packages" in where


def test_the_installed_server_serves_every_static_file(served: str, wheel: Path):
    with urllib.request.urlopen(served + "/") as response:
        assert b'<script type="module" src="static/main.js">' in response.read()
    statics = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("workshop_lib/static/")]
    assert len(statics) >= 10
    for name in statics:
        path = "/static/" + name.removeprefix("workshop_lib/static/")
        with urllib.request.urlopen(served + path) as response:
            assert response.status == 200 and response.read(), path
    with urllib.request.urlopen(served + "/api/pages") as response:
        assert b'"module": "ball.js"' in response.read()


def test_the_installed_checks_show_their_solutions(fresh_python: Path, tmp_path: Path):
    shown = run_fresh(
        fresh_python,
        "from workshop_lib.checks.echo import q1; print(q1.solution())",
        tmp_path,
    )
    assert "%load q1.code" in shown and "async def shout" in shown


def test_the_server_and_its_lessons_load_no_widgets(fresh_python: Path, tmp_path: Path):
    """``serve`` and the benchmarks' child processes must not pay for ipywidgets."""
    loaded = run_fresh(
        fresh_python,
        "import sys\n"
        "from workshop_lib import start_server\n"
        "from workshop_lib.ball import BallClient\n"
        "from workshop_lib.chat import ChatClient\n"
        "with start_server(port=0) as server:\n"
        "    with BallClient(server.links.ws('/ball')) as ball: ball.wait_for_frame()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'anywidget')))",
        tmp_path,
    )
    assert loaded.strip() == "[]"


CORE = [
    "app.py",
    "server.py",
    "handle.py",
    "runner.py",
    "auth.py",
    "fanout.py",
    "protocol.py",
    "links.py",
    "lesson.py",
    "backlog.py",
    "backoff.py",
    "reading_client.py",
    "shared.py",
    "logs.py",
    "ports.py",
    "closing.py",
    "proxies.py",
]
LESSON_PACKAGES = {"echo", "ball", "chat", "realtime", "scale"}


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_lesson(module: str):
    """Adding a lesson must not mean editing the core: the core names no lesson package."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = (node.module or "").split(".")
            named = {alias.name for alias in node.names}
            if node.level:
                package = target[0]
            else:
                package = target[1] if target[0] == "workshop_lib" and len(target) > 1 else ""
            assert package not in LESSON_PACKAGES, f"{module} imports {node.module}"
            if node.level and not node.module:
                assert not named & LESSON_PACKAGES, f"{module} imports {named}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                lesson = parts[1] if parts[0] == "workshop_lib" and len(parts) > 1 else ""
                assert lesson not in LESSON_PACKAGES, f"{module} imports {alias.name}"
