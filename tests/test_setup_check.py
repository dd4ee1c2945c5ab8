"""The setup check says ok where things are fine and exactly what to do where they are not."""

from __future__ import annotations

import os
import socket

from workshop_lib.clients.proxies import PROXY_VARIABLES
from workshop_lib.notebook import setup_check
from workshop_lib.notebook.setup_check import (
    check_links,
    check_package,
    check_port,
    check_proxy,
    check_redis,
    run_checks,
)


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


def test_a_proxy_that_would_catch_loopback_is_reported_as_handled(monkeypatch):
    for name in list(os.environ):
        if name.lower() in (*PROXY_VARIABLES, "no_proxy"):
            monkeypatch.delenv(name)
    assert check_proxy().status == "ok"
    with socket.socket() as sock:  # a port where nothing listens: a dead proxy
        sock.bind(("127.0.0.1", 0))
        dead = f"http://learner:hunter2@127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HTTPS_PROXY", dead)
    report = run_checks()
    checks = by_name(report)
    proxy = checks["proxy"]
    assert proxy.status == "warn" and "HTTPS_PROXY" in proxy.detail and "handled" in proxy.detail
    assert "proxy=None" in proxy.fix and "NO_PROXY" in proxy.fix
    assert "hunter2" not in report.value  # names only: a proxy's address can hold a password
    assert checks["echo"].status == "ok"  # the course's own client went direct
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,::1")
    assert check_proxy().status == "ok"


def test_a_missing_redis_server_is_a_warning_for_lesson_06_only():
    missing = check_redis(find=lambda: None)
    assert missing.status == "warn" and "lesson 06" in missing.detail
    assert "apt-get install redis-server" in missing.fix
    found = check_redis(find=lambda: "/usr/bin/redis-server")
    assert found.status == "ok" and "/usr/bin/redis-server" in found.detail


def test_the_links_line_says_where_pages_open():
    assert check_links({}).status == "ok" and "straight" in check_links({}).detail
    hub = check_links({"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/"})
    assert hub.status == "ok"  # jupyter-server-proxy is a dependency of the course
    assert "/user/ada/proxy/8765/" in hub.detail and "JUPYTERHUB_SERVICE_PREFIX" in hub.detail
    wrong = check_links({"WORKSHOP_PUBLIC_URL": "not an address"})
    assert wrong.status == "fail" and "WORKSHOP_PUBLIC_URL" in wrong.fix


def test_the_table_shows_commands_as_code_not_as_backticks():
    report = setup_check.SetupReport(
        [setup_check.Check("x", "warn", "run `a` <b>", "then `jupyter lab` & reload")]
    )
    assert "`" not in report.value
    assert "<code>jupyter lab</code> &amp; reload" in report.value
    assert "run <code>a</code> &lt;b&gt;" in report.value  # still escaped around the code
