"""Small helpers shared by the benchmarks: the environment header, percentiles, free ports.

print_header("echo latency")         # python, websockets, workshop_lib, CPUs
percentile(samples, 0.99)            # nearest-rank, on any list of numbers
port = free_port()                   # a port nothing listens on right now
raise_fd_limit()                     # as many sockets as the hard limit allows
cpu_seconds(pid), rss_bytes(pid)     # a process's user+sys CPU and resident memory (Linux)
run_main(main)                       # exit with main()'s status; Ctrl-C exits 130, quietly
"""

from __future__ import annotations

import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Sequence

import websockets

import workshop_lib

__all__ = [
    "HOST",
    "cpu_seconds",
    "free_port",
    "percentile",
    "print_header",
    "raise_fd_limit",
    "rss_bytes",
    "run_main",
    "wait_for_port",
]

HOST = "127.0.0.1"


def print_header(title: str) -> None:
    """Print what the figures depend on, so a pasted result says where it came from."""
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


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` in bytes; Linux only."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


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
