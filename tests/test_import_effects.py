"""Importing workshop_lib only defines things; the first server started sets up the process.

Each test runs in a fresh interpreter: the test session itself has long imported the package
and started servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT
from workshop_lib import start_server

# What a process looks like from outside: every logger's handlers and level, the warnings
# filters, the atexit callbacks, and what an IPython shell was asked to install.
PROBE = textwrap.dedent(
    """
    import atexit, json, logging, sys, types, warnings

    installed = []  # custom exception handlers set on the (fake) IPython shell

    class Shell:
        custom_exceptions = ()
        def set_custom_exc(self, types_, handler):
            installed.append([t.__name__ for t in types_])
            self.custom_exceptions = types_
        def _get_exc_info(self, *args): pass
        def _showtraceback(self, *args): pass

    shell = Shell()
    sys.modules["IPython"] = types.SimpleNamespace(get_ipython=lambda: shell)

    def state():
        loggers = [logging.getLogger()] + [
            logger for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ]
        return {
            "handlers": sorted(
                f"{logger.name}: {type(handler).__name__}"
                for logger in loggers for handler in logger.handlers
            ),
            "levels": sorted(f"{l.name}: {l.level}" for l in loggers if l.level),
            "filters": [repr(f) for f in warnings.filters],
            "atexit": atexit._ncallbacks(),
            "ipython": list(installed),
        }
    """
)


def run(code: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    """Run ``PROBE`` then ``code`` (which fills ``states``) in a fresh interpreter."""
    script = PROBE + "states = {}\n" + textwrap.dedent(code) + "\nprint(json.dumps(states))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_package_changes_nothing_in_the_process():
    states = run(
        """
        states["before"] = state()
        import workshop_lib
        from workshop_lib import Lesson, Page, start_server  # the plug-in API too
        states["after"] = state()
        """
    )
    before, after = states["before"], states["after"]
    assert after["handlers"] == before["handlers"], "import added a logging handler"
    assert after["levels"] == before["levels"], "import set a logger's level"
    assert after["filters"] == before["filters"], "import added a warnings filter"
    assert after["atexit"] == before["atexit"], "import registered an atexit callback"
    assert after["ipython"] == [], "import installed an IPython exception handler"


def test_the_first_server_sets_the_process_up_once():
    states = run(
        """
        import workshop_lib
        states["imported"] = state()
        for _ in range(2):
            server = workshop_lib.start_server(port=0, lessons=[])
            server.stop()
            states.setdefault("started", []).append(state())
        """
    )
    imported, (first, second) = states["imported"], states["started"]
    assert second == first, "a second start_server() set up the process again"
    added = sorted(set(first["handlers"]) - set(imported["handlers"]))
    assert added == ["workshop_lib: _MemoryHandler"]  # the log widget's
    assert "workshop_lib: 20" in first["levels"]  # INFO: the widget shows the server starting
    # The server's lessons import numpy & co., whose own filters are theirs to keep.
    ours = [f for f in first["filters"] if "workshop_lib" in f and f not in imported["filters"]]
    assert len(ours) == 1 and ours[0].startswith("('always'") and "PortFallbackWarning" in ours[0]
    assert first["atexit"] == imported["atexit"] + 1
    # In a notebook: one line for a refused connection, a cancel, an interrupt.
    assert first["ipython"] == [["ConnectionRefusedError", "CancelledError", "KeyboardInterrupt"]]


def test_the_log_widget_reads_the_log_without_a_server():
    states = run(
        """
        import logging
        from workshop_lib.server import logs
        lines = []
        logs.subscribe(lines.append)
        logging.getLogger("workshop_lib.test").warning("before any server")
        states["seen"] = {"lines": lines, "recent": logs.recent_lines()}
        """
    )
    seen = states["seen"]
    assert len(seen["lines"]) == 1 and seen["lines"][0].endswith("WARNING before any server")
    assert seen["recent"] == seen["lines"]


def test_joining_the_rooms_server_sets_the_process_up_as_starting_one_does():
    # A notebook in a room joins the instructor's server and starts none of its own: its
    # accidents are still one line, its log still kept.
    with start_server(port=0, name="the-room", token="room-token") as room:
        states = run(
            """
            from workshop_lib.server import join_room_server
            states["imported"] = state()
            assert join_room_server() is not None
            states["joined"] = state()
            """,
            env={"WORKSHOP_SERVER": room.links.http, "WORKSHOP_TOKEN": "room-token"},
        )
    imported, joined = states["imported"], states["joined"]
    assert imported["ipython"] == [] and "workshop_lib: _MemoryHandler" not in imported["handlers"]
    assert joined["ipython"] == [["ConnectionRefusedError", "CancelledError", "KeyboardInterrupt"]]
    assert "workshop_lib: _MemoryHandler" in joined["handlers"]
