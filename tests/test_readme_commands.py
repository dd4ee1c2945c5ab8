"""The README's learner command, run as written: JupyterLab opens the first notebook, with the
whole course in its file browser (the lessons send learners to docs/ and the library's code)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT
from workshop_lib.server.ports import free_port


def _learner_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("**To take the course**")
    block = re.search(r"```bash\n(.+?)\n```", readme[start:], re.DOTALL)
    assert block, "README.md: no bash block after 'To take the course'"
    return block.group(1).strip()


def test_the_learner_command_installs_the_course_without_the_test_tools():
    steps = [step.strip() for step in _learner_command().split("&&")]
    assert "pip install -e ." in steps, steps
    assert steps[-1].startswith("jupyter lab "), steps


def test_jupyterlab_as_the_readme_starts_it_serves_the_whole_course(tmp_path: Path):
    jupyter = shlex.split(_learner_command().split("&&")[-1])
    assert jupyter[:2] == ["jupyter", "lab"]
    port, token = free_port(), secrets.token_hex(16)
    dirs = {name: tmp_path / name for name in ("config", "data", "runtime", "workspaces")}
    for path in dirs.values():
        path.mkdir()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
    }
    command = [
        sys.executable, "-m", "jupyterlab", *jupyter[2:],
        "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--LabApp.workspaces_dir={dirs['workspaces']}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        lab = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def get(path: str) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/{path}", headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)

    try:
        deadline = time.monotonic() + 60
        while True:
            assert lab.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                get("api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.2)
        # The file browser's root is the repository: what the lessons name can be opened.
        for path in ("docs/protocol.md", "workshop_lib/app/auth.py", "notebooks/01-echo.ipynb"):
            assert get(f"api/contents/{path}?content=0")["path"] == path
        # And the page it opens is the first notebook.
        opened = [p.read_text() for p in dirs["runtime"].glob("jpserver-*-open.html")]
        assert any("lab/tree/notebooks/00-setup-check.ipynb" in page for page in opened), opened
    finally:
        os.killpg(lab.pid, 15)
        lab.wait(30)
