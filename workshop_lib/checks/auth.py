"""Exercises of notebook 04 (auth, errors, lifecycle): log in like a browser; survive a restart.

from workshop_lib.checks.auth import q1, q2, ____
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..auth import new_token
from ..ball.server import BallLesson
from ..echo.server import EchoLesson
from ._base import CheckResult, Exercise, Failed, ____, scratch_server

__all__ = ["____", "q1", "q2"]


class FirstMessageLogin(Exercise):
    """q1: ``echo_as_browser(url, origin, token, text)`` authenticates with a first message."""

    hint_text = (
        'after connecting, `await websocket.send(json.dumps({"type": "auth", "token": token}))`, '
        'then `await websocket.recv()` must be {"type": "auth.ok"} (a wrong token gets an '
        '{"type": "error", ..., "close": 4001} instead: raise); only then send `text` and '
        "return the next message."
    )
    solution_file = "04_login.py"
    answer_name = "echo_as_browser"

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        token = new_token()  # a fresh one, so no token typed into the cell can pass
        with scratch_server(token=token, lessons=[EchoLesson()]) as server:
            url, origin = server.links.ws("/echo"), server.http_url
            echoed = self.run(answer, url, origin, token, "it's me", timeout=4)
            if echoed != "it's me":
                return CheckResult(
                    False,
                    f"expected the echo 'it's me', got {echoed!r}"
                    + (": read the auth.ok first, then send" if "auth.ok" in str(echoed) else ""),
                )
            try:
                wrong = self.run(answer, url, origin, "not-the-token", "hello", timeout=4)
            except Failed:
                return CheckResult(
                    False,
                    "with a wrong token the server closed the connection with 4001, but "
                    "echo_as_browser was still running after 4 s: let the ConnectionClosed "
                    "out instead of catching it and waiting",
                )
            except InvalidStatus:
                return CheckResult(
                    False,
                    "a wrong token was refused at the handshake (HTTP 401): you sent a header, "
                    "which a browser cannot do. Log in with the first message instead.",
                )
            except ConnectionClosed as exc:  # closed with 4001: the right outcome
                if exc.rcvd is not None and exc.rcvd.code == 4001:
                    return CheckResult(
                        True, "the right token gets the echo; a wrong one is closed with 4001"
                    )
                raise
            except Exception as exc:
                # The server says "wrong token" in band before its 4001 (a proxy may drop
                # the code): an answer that refuses to go on after reading it is right too.
                if "unauthorized" in str(exc) or "4001" in str(exc):
                    return CheckResult(
                        True,
                        "the right token gets the echo; a wrong one gets the server's error "
                        "event, then the close with 4001",
                    )
                raise
        return CheckResult(False, f"with a wrong token it returned {wrong!r} instead of failing")


class SurviveRestart(Exercise):
    """q2: ``collect_ticks(url, count)`` keeps reading ball frames across a server restart."""

    hint_text = (
        "wrap the connection in `while len(ticks) < count:`; inside, `try: async with "
        "connect(url) as websocket: async for message in websocket: ...`; on OSError or "
        "ConnectionClosed, `await asyncio.sleep(next(delays))` with `delays = backoff_delays()`, "
        "and start a fresh `backoff_delays()` after each successful connect."
    )
    solution_file = "04_reconnect.py"
    answer_name = "collect_ticks"
    count = 150  # 2.5 s at 60 Hz: the restart comes in the middle
    down_at = 0.8  # seconds after the start, the server stops ...
    down_for = 0.5  # ... and is back this much later, on the same port

    def _check(self, answer: Callable[..., Any]) -> CheckResult:
        servers = [scratch_server(lessons=[BallLesson()])]
        port = servers[0].port
        restarted = threading.Event()

        def restart() -> None:
            time.sleep(self.down_at)
            servers[0].stop()  # every client gets 1001; the port is closed for a moment
            time.sleep(self.down_for)
            servers.append(scratch_server(port, lessons=[BallLesson()]))
            restarted.set()

        threading.Thread(target=restart, daemon=True).start()
        what = (
            f"the check's server restarted {self.down_at:g} s after the start (every client "
            f"got close code 1001) and listened again {self.down_for:g} s later"
        )
        try:
            ticks = self.run(answer, servers[0].links.ws("/ball"), self.count, timeout=8)
        except Failed:
            restarted.wait(5)
            came_back = len(servers) == 2 and servers[1].app.served["/ball"] > 0
            raise Failed(
                f"{what}; "
                + (
                    "your client came back but collect_ticks did not return within 8 s: "
                    f"stop once you have {self.count} ticks"
                    if came_back
                    else "your client never came back, and collect_ticks was still running "
                    "after 8 s: catch the ConnectionClosed (and OSError while the server "
                    "is down), wait next(delays), and connect again"
                )
            ) from None
        finally:
            restarted.wait(5)
            reconnected = len(servers) == 2 and servers[1].app.served["/ball"] > 0
            for server in servers:
                server.stop()
        if not isinstance(ticks, list) or len(ticks) != self.count:
            got = len(ticks) if isinstance(ticks, list) else repr(ticks)
            return CheckResult(False, f"{what}; return a list of {self.count} ticks, not {got}")
        if not reconnected:
            return CheckResult(
                False, f"{what}, and it never saw your client come back: reconnect after the drop"
            )
        return CheckResult(True, f"{self.count} frames across a server restart ({what})")


q1 = FirstMessageLogin("q1")
q2 = SurviveRestart("q2")
