"""A flooding ChatClient behind the real jupyter-server-proxy, many times: is it told 4029?

    python bench/proxy_flood.py                        # 100 floods, 3 busy loops (~1 min)
    python bench/proxy_flood.py --runs 30 --busy 0     # on a quiet machine
    python bench/proxy_flood.py --source /tmp/before   # workshop_lib from another tree

JupyterLab starts as a hub starts a learner's server (under /user/learner/, with
jupyter-server-proxy; tests/browser/jupyterlab.py), a chat server runs in this process
with the hub test's limits (burst 2, rate 0.01, strikes 3), and each run floods it through
the proxy with ``ChatClient(..., reconnect=True)``, 40 messages or until it is closed, as
tests/browser/test_hub.py does. A run is right when the client reports 4029 and did not
reconnect. ``--busy N`` runs N ``while True: pass`` processes meanwhile (stopped at the
end): a busy machine is what makes the client's reading lag behind its sending.

Printed: each wrong run, the count of wrong runs, and how often the proxy wrote a client's
message to an upstream that was already closed (tornado's ``WebSocketClosedError`` in
JupyterLab's log, after which it aborts the client's connection).
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/user/learner/"
TOKEN = "s3cret-proxy-flood"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--busy", type=int, default=3, help="busy loops meanwhile")
    parser.add_argument("--source", help="a tree whose workshop_lib to use")
    args = parser.parse_args()
    sys.path[:0] = [p for p in (args.source, str(ROOT)) if p]

    from websockets.exceptions import ConnectionClosed

    from tests.browser.jupyterlab import running_lab
    from workshop_lib import start_server
    from workshop_lib.chat import ChatClient
    from workshop_lib.clients import reading as reading_client
    from workshop_lib.server.handle import bearer

    print(f"workshop_lib from {Path(reading_client.__file__).parent}, {args.busy} busy loops")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    wrong = 0
    try:
        base = Path(tempfile.mkdtemp(prefix="proxy-flood-"))
        lab_args = ("--ServerApp.allow_remote_access=True",)
        with running_lab(base, base_url=PREFIX, args=lab_args) as lab:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            with opener.open(lab.url("lab"), timeout=30):
                pass  # the login cookie, as a browser holds it
            cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
            reading_client.bearer = lambda token: {**bearer(token), "Cookie": cookie}
            with start_server(port=0, name="proxy-flood", token=TOKEN) as server:
                chat = server.lesson("chat")
                chat.burst, chat.rate, chat.strikes = 2, 0.01, 3
                url = f"ws://127.0.0.1:{lab.port}{PREFIX}proxy/{server.port}/chat"
                started = time.monotonic()
                for run in range(args.runs):
                    client = ChatClient(url, f"flood-{run}", token=TOKEN, reconnect=True)
                    try:
                        with contextlib.suppress(ConnectionClosed):
                            for i in range(40):
                                if client.close_code is not None:
                                    break
                                client.send(f"spam {i}")
                        assert client._reader is not None
                        client._reader.join(10)  # it ends unless it reconnects
                        told = [e.get("code") for e in client.errors]
                        result = (client.close_code, client.reconnects)
                    finally:
                        client.close()
                    if result != (4029, 0):
                        wrong += 1
                        print(f"run {run}: close code, reconnects {result}; errors {told}")
                log = lab.log_path.read_text(errors="replace")
        aborts = log.count("tornado.websocket.WebSocketClosedError")
        took = time.monotonic() - started
        print(f"{wrong}/{args.runs} wrong in {took:.0f} s; the proxy wrote to a closed upstream")
        print(f"{aborts} times (and then aborted the client's connection)")
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
