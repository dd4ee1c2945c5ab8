"""The package's shape holds: the core knows no lesson, and every folder says what it holds.

Both rules walk the files on disk, so a module added tomorrow is checked without editing
this test.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "workshop_lib"


def lesson_packages() -> set[str]:
    """The course's own lessons, as pyproject.toml registers them, and their checks."""
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lessons = entry_points["project"]["entry-points"]["workshop_lib.lessons"]
    return {target.split(":")[0].split(".")[1] for target in lessons.values()} | {"checks"}


def core_modules() -> list[Path]:
    """Every module that is not inside a lesson's folder."""
    lessons = lesson_packages()
    return sorted(
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in lessons
    )


def imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """The modules of this package that ``path`` imports, as dotted names after ``workshop_lib``."""
    package = path.relative_to(root).parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
            elif (node.module or "").split(".")[0] == "workshop_lib":
                base = []
            else:
                continue
            module = (node.module or "").split(".")
            if not node.level:
                module = module[1:]
            target = [*base, *[part for part in module if part]]
            names.add(".".join(target))
            if not node.module:  # from . import x: x may be a module
                names |= {".".join([*target, alias.name]) for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "workshop_lib":
                    names.add(".".join(parts[1:]))
    # lazy_names maps name -> ".module" strings: an import too, made later.
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_names":
            for value in getattr(node.args[1], "values", []):
                if isinstance(value, ast.Constant) and value.value.startswith("."):
                    dots = len(value.value) - len(value.value.lstrip("."))
                    base = list(package[: len(package) - (dots - 1)])
                    names.add(".".join([*base, value.value.lstrip(".")]))
    return names


def test_the_lessons_are_the_registered_ones():
    assert lesson_packages() >= {"echo", "ball", "chat", "realtime", "checks"}
    assert len(core_modules()) > 30  # the walk finds the core, not an empty folder


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_no_lesson(path: Path):
    """Adding a lesson must not mean editing the core: nothing outside the lessons' folders
    imports one (the server finds lessons through their entry points)."""
    lessons = lesson_packages()
    bad = sorted(name for name in imported(path) if name.split(".")[0] in lessons)
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_rule_sees_a_lesson_import(tmp_path: Path):
    """The walk above would catch each way of importing a lesson."""
    fake = tmp_path / "workshop_lib"
    (fake / "server").mkdir(parents=True)
    module = fake / "server" / "x.py"
    module.write_text(
        "from ..ball.model import step\n"
        "from .. import chat\n"
        "import workshop_lib.realtime.audio\n"
        "from workshop_lib.echo import EchoPanel\n"
        "lazy_names(__name__, {'Q': '..checks.echo'})\n"
    )
    found = {name.split(".")[0] for name in imported(module, root=fake)}
    assert {"ball", "chat", "realtime", "echo", "checks"} <= found


SUBPACKAGES = sorted(
    path.parent
    for path in PACKAGE.glob("*/__init__.py")
    if path.parent.name not in {"static", "solutions"}
)


@pytest.mark.parametrize("folder", SUBPACKAGES, ids=lambda p: p.name)
def test_each_folder_says_what_it_holds(folder: Path):
    """A folder's docstring names each of its modules: the table of contents a newcomer
    reads, which cannot fall behind the files."""
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
    assert doc, f"{folder.name}/__init__.py has no docstring"
    missing = [
        path.name
        for path in sorted(folder.glob("*.py"))
        if path.name != "__init__.py" and path.name not in doc
    ]
    assert not missing, f"{folder.name}/__init__.py does not mention {missing}"


def test_the_root_holds_only_the_front_door():
    """The package's root: its public face, the command line, and what a lesson is."""
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert root == ["__init__.py", "__main__.py", "course.py", "lazy.py", "lesson.py"]
