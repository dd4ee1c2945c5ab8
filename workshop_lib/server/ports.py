"""Is a port free, and if not, who holds it? Plain answers for the setup check and errors.

port_is_free("127.0.0.1", 8765)      # True or False
describe_port_holder(8765)           # 'another workshop server (process 4242) ...'
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import urllib.error
import urllib.request

__all__ = ["describe_port_holder", "free_port", "port_is_free"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, picked by the system (for a child server that
    must be told its port before it starts; a server of this process binds port 0 itself)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """True if a server could listen on ``host:port`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # Same option asyncio's servers use, so a port in TIME_WAIT counts as free. (On
        # Windows the option means another thing: it would let a bind steal a port in use.)
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def describe_port_holder(port: int, host: str = "127.0.0.1") -> str:
    """Say what holds ``port`` and how to free it, as far as can be told without privileges."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as reply:
            health = json.loads(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        health = None
    if isinstance(health, dict) and health.get("server") == "workshop_lib":
        if health.get("pid") == os.getpid():
            return (
                f"a server started earlier in this same kernel (this process) holds port "
                f"{port}: `stop_server()` stops every server this process started"
            )
        return (
            f"another workshop server holds port {port} (process {health.get('pid')}), "
            "probably a notebook in another tab or a `python -m workshop_lib serve` in a "
            "terminal: run `stop_server()` in that notebook, restart its kernel, or press "
            "Ctrl-C in that terminal"
        )
    if sys.platform == "win32":
        finder = f"`netstat -ano | findstr :{port}` shows its process id"
    else:
        finder = f"`lsof -i :{port}` (or `ss -ltnp | grep {port}`) shows which program"
    return f"another program holds port {port}: {finder}; stop it or use another port"
