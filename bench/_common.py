"""Small helpers shared by the benchmarks: the environment header, percentiles, free ports.

print_header("echo latency")         # python, websockets, workshop_lib, CPUs
percentile(samples, 0.99)            # nearest-rank, on any list of numbers
port = free_port()                   # a port nothing listens on right now
raise_fd_limit()                     # as many sockets as the hard limit allows
cpu_seconds(pid), rss_bytes(pid)     # a process's user+sys CPU and resident memory (Linux)
run_queue_seconds(pid)               # how long its threads waited for a CPU (Linux)
with child(__file__, args, label) as c: c.expect("PORT ", 15)   # this script as a child process
check_health(port, pid)              # that port is our workshop server (its /healthz pid)
run_main(main)                       # exit with main()'s status; Ctrl-C exits 130, quietly
"""

from __future__ import annotations

import json
import math
import os
import platform
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import websockets

__all__ = [
    "HOST",
    "Child",
    "check_health",
    "child",
    "cpu_seconds",
    "free_port",
    "percentile",
    "print_header",
    "raise_fd_limit",
    "rss_bytes",
    "run_main",
    "run_queue_seconds",
    "wait_for_port",
]

HOST = "127.0.0.1"


def print_header(title: str) -> None:
    """Print what the figures depend on, so a pasted result says where it came from."""
    # Imported here, not at the top: the benchmarks' bare servers import this module and
    # must not load the workshop code they are compared against.
    import workshop_lib

    print(f"# {title}")
    print(
        f"python {platform.python_version()} ({sys.executable}), "
        f"websockets {websockets.__version__}, workshop_lib {workshop_lib.__version__}"
    )
    # The CPUs this process may run on, which a container can make fewer than the machine's.
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({usable} usable)"
    )
    if hasattr(os, "getloadavg"):
        # Other work on the machine shows up in p99 first: say how busy it was.
        one, five, _ = os.getloadavg()
        print(f"load average {one:.2f} (1 min), {five:.2f} (5 min)")
    print()


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q ≤ 1): a value that was actually measured."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (the OS picks it, as for ``port=0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = HOST, timeout: float = 10.0) -> None:
    """Return once something accepts TCP connections on ``host:port``; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.02)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit.

    Every socket is a file descriptor: a thousand connections need more than the usual
    default of 1024. Returns 0 where the platform has no such limit (Windows).
    """
    try:
        import resource
    except ImportError:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (OSError, ValueError):
            pass  # keep the old limit; the caller sees it in the return value
    return soft


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads); Linux only."""
    with open(f"/proc/{pid}/stat") as file:
        # The command name (field 2) may contain spaces: count fields after its ')'.
        fields = file.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_seconds(pid: int) -> float:
    """Seconds the threads of process ``pid`` spent runnable but waiting for a CPU; Linux only.

    High while the process's own CPU is low means the machine was busy with other work:
    the process was not slow, it was not scheduled.
    """
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as file:
                total += int(file.read().split()[1])  # ns on a run queue
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass  # a thread that ended, or a kernel without schedstats
    return total / 1e9


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` in bytes; Linux only."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Child:
    """``python script *args`` as a child process, talking in lines on stdin and stdout.

    ``expect(prefix)`` returns its next line with that prefix; lines ``STATS {json}`` are
    collected in ``stats`` as they come; closing its stdin (``stop()``) tells it to finish.
    """

    def __init__(self, script: str, args: list[str], label: str) -> None:
        self.label = label
        # stderr goes to a file, summarised when the child stops: a struggling server can
        # write the same warning thousands of times.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _show_stderr)
        # A session of its own: Ctrl-C reaches only the parent, whose `finally` then stops
        # the child in order. If the parent dies outright, the child's stdin reaches EOF and
        # it exits by itself.
        self.proc = subprocess.Popen(
            [sys.executable, script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stats: list[dict[str, Any]] = []  # the servers' STATS lines, as they come
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("STATS "):
                self.stats.append(json.loads(line[6:]))
            else:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        """The rest of the next line that starts with ``prefix``; raise if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(
                    f"{self.label} said no {prefix.strip()} within {timeout:.0f} s"
                ) from None
            if line is None:
                raise RuntimeError(
                    f"{self.label} exited (code {self.proc.wait()}) before {prefix.strip()}"
                    "; its stderr is below"
                )
            if line.startswith(prefix):
                return line[len(prefix) :]
            print(f"  [{self.label}] {line}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self, timeout: float = 20.0) -> None:
        """Close stdin (the child's signal to finish), then wait, terminate, kill."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._show_stderr()

    def _show_stderr(self) -> None:
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").splitlines()
        self.stderr.close()
        if not lines:
            return
        # Runs of the same line become one line with a count.
        runs: list[list[Any]] = []
        for line in lines:
            if runs and runs[-1][0] == line:
                runs[-1][1] += 1
            else:
                runs.append([line, 1])
        print(f"  [{self.label}, exit code {self.proc.returncode}] wrote to stderr:")
        for line, count in runs[:40]:
            print(f"  | {line}" + (f"  (x {count:,})" if count > 1 else ""))
        if len(runs) > 40:
            print(f"  | ... and {len(runs) - 40} more")


@contextmanager
def child(script: str, args: list[str], label: str) -> Iterator[Child]:
    """``Child(script, args, label)``, stopped on the way out of the ``with`` block."""
    process = Child(script, args, label)
    try:
        yield process
    finally:
        process.stop()


def check_health(port: int, pid: int) -> None:
    """Make sure the figures are our workshop server's, not another program's on that port."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=10) as reply:
        health = json.loads(reply.read())
    if health.get("server") != "workshop_lib" or health.get("pid") != pid:
        raise RuntimeError(f"port {port} is not our workshop server: /healthz said {health}")


def serve_lesson(lesson: Any) -> None:
    """Child mode: serve ``lesson`` on :data:`HOST` as the course's App does, with the
    per-address cap lifted (every bench client is 127.0.0.1); print ``PORT n``, and stop
    when the parent closes our stdin."""
    import asyncio

    from workshop_lib.app.app import App
    from workshop_lib.server.options import ServerOptions

    async def main() -> None:
        options = ServerOptions(
            ping_interval=None, max_connections=100_000, max_per_address=100_000
        )
        app = App([lesson], options)
        server = await app.serve(HOST, 0)
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.to_thread(sys.stdin.read)
        server.close()
        await server.wait_closed()
        await app.shutdown()

    asyncio.run(main())


def run_main(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; on Ctrl-C say so and exit 130, without a traceback.

    Each script starts its child processes in ``with`` blocks, which stop them on the way
    out of ``main()``, Ctrl-C included.
    """
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
