"""A learner's accidents where a learner meets them: the notebooks' own cells in a real
Jupyter kernel, run out of order, twice, or interrupted. Each gets one line that says what
happened and which cell to run, not a traceback through asyncio and websockets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kernel import NOTEBOOKS, Kernel, assert_ok, assert_one_line, cell


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    with Kernel(NOTEBOOKS) as running:
        yield running


def test_01_after_the_clean_up_each_cell_says_which_cell_to_run(kernel: Kernel) -> None:
    nb = "01-echo.ipynb"
    for text in (
        "server = start_server()",
        "print(format_handshake(websocket))",
        "connect_sync(server.links.ws",
        "echo_panel = EchoPanel(",
        "log_view = LogView()",
    ):
        assert_ok(kernel.run(cell(nb, text)))
    assert "came back in" in kernel.run(cell(nb, 'echo_panel.send("sent from a cell")')).shown
    assert_ok(kernel.run(cell(nb, "server.stop()")))  # the clean-up

    # The panel's round trip: the library's own sentence, not NoneType.__format__.
    after = kernel.run(cell(nb, 'echo_panel.send("sent from a cell")'))
    assert_ok(after)
    assert "no server at" in after.shown and "run the cell that starts it" in after.shown

    # websockets' own client, as the lesson uses it: asyncio's refusal, then the sync one.
    for text in ('await websocket.send("text stays text")', "connect_sync(server.links.ws"):
        ran = kernel.run(cell(nb, text))
        assert_one_line(ran, "'workshop' was stopped", "run the cell that starts it")
        assert ran.error == "ConnectionRefusedError"


def test_an_interrupted_wait_is_one_line(kernel: Kernel) -> None:
    assert_ok(kernel.run(cell("01-echo.ipynb", "server = start_server()")))
    assert_ok(kernel.run("from websockets.asyncio.client import connect"))
    waiting = (
        "async with connect(server.links.ws('/echo')) as ws:\n"
        "    print('connected', flush=True)\n"
        "    await ws.recv()"  # the echo says nothing first: this waits until interrupted
    )
    ran = kernel.run(waiting, interrupt_when=lambda ran: "connected" in ran.shown)
    assert_one_line(ran, "Kernel → Interrupt", "run it again")
    sleeping = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"
    blocked = kernel.run(sleeping, interrupt_when=lambda ran: "sleeping" in ran.shown)
    assert_one_line(blocked, "you interrupted this cell")
    assert blocked.seconds < 30
    # An error of the learner's own keeps its traceback.
    assert len(kernel.run("1 / 0").traceback) > 1
    assert_ok(kernel.run("server.stop()"))


def test_06_four_people_run_twice_starts_over(kernel: Kernel, redis_url: str) -> None:
    nb = "06-scaling-out.ipynb"
    try:
        assert_ok(kernel.run(cell(nb, "redis = LocalRedis(persist=True).start()")))
        assert_ok(kernel.run(cell(nb, 'ada = ChatClient(one.ws("/chat"), "ada")')))
        stopped = kernel.run(cell(nb, "ada.close()"))
        assert_ok(stopped)
        assert "(None, None)" not in stopped.shown and stopped.shown.count(" stopped>") == 2
        four = cell(nb, 'names = ["ada", "bob", "grace", "linus"]')
        for run in ("first", "second"):
            ran = kernel.run(four, timeout=60)
            assert_ok(ran)  # the old second run waited 15 s for four people among eight
            assert "one order for all four: True" in ran.shown, (run, ran.shown)
            assert "['ada', 'bob', 'grace', 'linus']" in ran.shown, (run, ran.shown)
            print(f"06's four-people cell, {run} run: {ran.seconds:.1f} s")
    finally:
        kernel.run("ServerProcess.stop_all(); redis.stop()")


def test_03_after_the_clean_up_the_course_clients_name_the_stopped_server(kernel: Kernel) -> None:
    nb = "03-chat-room.ipynb"
    assert_ok(kernel.run(cell(nb, "me = ChatWidget(")))
    assert_ok(kernel.run(cell(nb, "from workshop_lib.chat import ChatClient")))
    assert_ok(kernel.run("me.close(); linus.close(); server.stop()"))  # the clean-up's part
    by_hand = kernel.run(cell(nb, '"can I talk yet?"'))  # server.connect("/chat")
    assert_one_line(by_hand, "the server 'workshop' is stopped", "run the cell that starts it")
    assert by_hand.error == "ServerNotRunning"
    linus = kernel.run(cell(nb, "from workshop_lib.chat import ChatClient"))  # ChatClient(...)
    assert_one_line(linus, "nothing listens at 127.0.0.1:", "'workshop' was stopped")


def test_an_interrupted_server_run_stops_its_coroutine_too(kernel: Kernel, tmp_path) -> None:
    started = tmp_path / "started"
    assert_ok(kernel.run(cell("01-echo.ipynb", "server = start_server()")))
    assert_ok(
        kernel.run(
            "import asyncio, pathlib, threading\n"
            "cancelled = threading.Event()\n"
            "async def forever():\n"
            f"    pathlib.Path({str(started)!r}).touch()\n"
            "    try:\n"
            "        await asyncio.sleep(3600)\n"
            "    except asyncio.CancelledError:\n"
            "        cancelled.set()\n"
            "        raise\n"
        )
    )
    ran = kernel.run(
        "server.run(forever(), timeout=None)", interrupt_when=lambda _ran: started.exists()
    )
    assert_one_line(ran, "you interrupted this cell")
    # Not left running on the server's loop, where nobody waits for it any more.
    stopped = kernel.run("print(cancelled.wait(10))")
    assert stopped.shown.strip() == "True", stopped.shown
    assert_ok(kernel.run("server.stop()"))
