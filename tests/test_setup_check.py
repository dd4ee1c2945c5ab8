"""The setup check says ok where things are fine and exactly what to do where they are not."""

from __future__ import annotations

import socket

from workshop_lib import setup_check
from workshop_lib.setup_check import check_package, check_port, run_checks


def by_name(report) -> dict[str, setup_check.Check]:
    return {c.name: c for c in report.checks}


def test_everything_is_ok_on_a_good_install():
    report = run_checks()
    checks = by_name(report)
    for name in (
        "python",
        "websockets",
        "ipywidgets",
        "jupyterlab",
        "widgets-extension",
        "server-start",
        "browser-client",
        "echo",
    ):
        assert checks[name].status == "ok", (name, checks[name])
    # No front end has rendered this report in a test process: that line must say so.
    assert checks["widgets-frontend"].status == "fail"
    assert "pip install ipywidgets" in checks["widgets-frontend"].fix
    assert 'class="workshop-setup-check"' in report.value
    assert 'data-check="echo"' in report.value


def test_the_frontend_line_turns_ok_when_a_view_renders():
    report = run_checks()
    assert not report.ok
    report._view_count = 1  # what JupyterLab's widget manager sends when it draws the table
    assert by_name(report)["widgets-frontend"].status == "ok"
    assert 'data-check="widgets-frontend"' in report.value
    assert report.value.count('data-status="fail"') == 0
    assert report.ok


def test_a_missing_or_old_package_says_how_to_fix_it():
    missing = check_package("surely-not-installed-package", (1,), "testing")
    assert missing.status == "fail" and "pip install -r requirements.txt" in missing.fix
    old = check_package("websockets", (999,), "testing")
    assert old.status == "fail" and "pip install -U 'websockets>=999'" in old.fix


def test_a_taken_port_is_a_warning_that_names_a_way_to_find_the_holder():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = check_port(port)
    assert result.status == "warn"
    assert "another program holds" in result.fix
    assert check_port(port).status == "ok"  # released
