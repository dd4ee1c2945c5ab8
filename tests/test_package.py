"""The package stands on its own: a wheel, installed non-editable, serves the whole course.

A clone works through its editable install, which can hide a file that never made it into
the wheel (the browser client, the ball's canvas script, the solutions). Here a real wheel
is built and installed into a fresh virtual environment, and run from a folder outside
the repository.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.installed import build_wheel, fresh_venv, outside_env, serving

PACKAGE = ROOT / "workshop_lib"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built without network (the build tools are installed)."""
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed (not editable); its dependencies are borrowed."""
    return fresh_venv(tmp_path_factory.mktemp("fresh") / "venv", [wheel])


def run_fresh(python: Path, code: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=outside_env(),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def served(fresh_python: Path, tmp_path: Path) -> Iterator[str]:
    """``python -m workshop_lib serve --port 0`` from the fresh venv; yields its base URL."""
    with serving(fresh_python, tmp_path) as (url, _):
        yield url


def test_the_wheel_holds_the_browser_client_the_pages_and_the_solutions(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    shell = list((ROOT / "static").glob("*"))
    assert len(shell) >= 10
    for file in shell:  # the top-level static/, inside the package in a wheel (setup.py)
        assert f"workshop_lib/static/{file.name}" in names, f"static/{file.name} is not in it"
    browser_files = [*PACKAGE.glob("*/*.js"), *PACKAGE.glob("*/*.css")]
    assert len(browser_files) >= 8  # the lessons' pages, the canvas, the voice core, view.js
    for file in [*browser_files, *PACKAGE.glob("checks/solutions/*.py")]:
        name = file.relative_to(ROOT).as_posix()
        assert name in names, f"{name} is not in the wheel"


def test_the_installed_package_is_the_wheel_not_the_clone(fresh_python: Path, tmp_path: Path):
    where = run_fresh(fresh_python, "import workshop_lib; print(workshop_lib.__file__)", tmp_path)
    assert str(ROOT) not in where and "site-packages" in where


def get(url: str) -> tuple[str, bytes]:
    """A GET's content type and body (urllib raises on any status but 2xx)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read()


def test_the_installed_server_serves_the_shell_and_every_page(served: str, wheel: Path):
    assert b'<script type="module" src="static/main.js">' in get(served + "/")[1]
    shell = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("workshop_lib/static/")]
    assert len(shell) >= 10
    for name in shell:
        path = "/static/" + name.removeprefix("workshop_lib/static/")
        assert get(served + path)[1], path
    pages = json.loads(get(served + "/api/pages")[1])
    assert [page["name"] for page in pages] == ["echo", "ball", "chat", "realtime", "voice"]
    for page in pages:  # each page's module, served from its lesson's own package
        content_type, body = get(f"{served}/{page['url']}")
        assert content_type.startswith("text/javascript") and b"export default" in body, page
    # ...and what they import from beside them
    for path in ("/lessons/ball/canvas.js", "/lessons/realtime/voice-core.js"):
        assert get(served + path)[0].startswith("text/javascript"), path


def test_the_installed_ball_view_builds_its_module_from_the_wheel(
    fresh_python: Path, tmp_path: Path
):
    """The view's front end is written from files of the installed package (view.js and the
    canvas beside it, the shell's reconnect.js and rules.js inside it), not from a clone."""
    shown = run_fresh(
        fresh_python,
        "from workshop_lib.ball.widgets import view_module\n"
        "module = view_module()\n"
        "print([line for line in module.splitlines() if line.startswith('// ---- ')])",
        tmp_path,
    )
    assert shown.strip() == repr(
        [
            "// ---- /lessons/ball/canvas.js ----",
            "// ---- /static/rules.js ----",
            "// ---- /static/reconnect.js ----",
            "// ---- /lessons/ball/view.js ----",
        ]
    )


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
