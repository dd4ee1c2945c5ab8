"""Small helpers several test modules share."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``condition`` (a thread-safe read) until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Like :func:`wait_until`, but fail the test if ``condition`` never holds."""
    assert wait_until(condition, timeout), "condition not met in time"


def spy_on_writes(server: Any, member: str) -> list[bytes]:
    """Every write the server's chat makes to ``member``'s transport from now on, in a list
    that fills as it goes: a spy on the real transport, installed on the server's loop."""
    writes: list[bytes] = []

    async def install() -> None:
        transport = server.lesson("chat").members[member].transport
        real = transport.write

        def counted(data: bytes) -> None:
            writes.append(bytes(data))
            real(data)

        transport.write = counted

    server.run(install(), timeout=5)
    return writes


def stall_loop(server: Any, seconds: float) -> Future[None]:
    """Block the server's loop for ``seconds``, on purpose (what a busy process does to it);
    returns at once, ``.result()`` waits for the end."""

    async def stall() -> None:
        time.sleep(seconds)

    return server.submit(stall())


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, waiting to be reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
