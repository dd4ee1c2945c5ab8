"""The instructor's live room under a class: 100 learners' checks, a watcher, a restart.

python bench/progress_room.py                  # about 70 s: 100 learners x 30 checks in 60 s
python bench/progress_room.py --seconds 20     # the same events, faster
python bench/progress_room.py --no-page        # without Chromium showing the room page

What it measures (issue 24's figures):

* each check event's delay from the learner's ``report()`` to the instructor's view: the
  ``progress.learner`` update on a ``/progress/watch`` socket (what the room page draws from,
  the same frame), p50/p99/max, for events sent while the room's server was up;
* the room server's CPU (% of one core over the run, both processes of the restart);
* nothing lost across a restart of ``serve`` in the middle: every learner's 30 checks are on
  the board at the end, each counted once.

The learners are the course's own ``Reporter`` (the code every notebook's checks run: a
thread, a queue, acknowledgements, a resend to a new server), 100 of them in this process,
not kernels. The room is ``python -m workshop_lib serve`` in a child process; the room page
(``/#room&key=KEY``) is open in headless Chromium during the run unless ``--no-page``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HOST, cpu_seconds, free_port, percentile, print_header, run_main, wait_for_port

TOKEN = "bench-learners-token"
KEY = "bench-instructor-key"


class Room:
    """``serve`` on a fixed port, restartable."""

    def __init__(self, port: int, redis: str | None = None) -> None:
        self.port = port
        self.redis = redis
        self.process: subprocess.Popen[bytes] | None = None
        self.cpu = 0.0  # CPU seconds of the processes stopped so far

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workshop_lib",
                "serve",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--instructor-key",
                KEY,
                "--exit-with-parent",
                *(["--redis", self.redis] if self.redis else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        if self.process is None:
            return
        self.cpu += cpu_seconds(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        self.process.wait(20)
        self.process = None

    def cpu_now(self) -> float:
        return self.cpu + (cpu_seconds(self.process.pid) if self.process else 0.0)

    def get(self, path: str) -> dict:
        request = urllib.request.Request(
            f"http://{HOST}:{self.port}{path}", headers={"Authorization": f"Bearer {KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)


class Watcher:
    """The instructor's view from Python: when each (learner, exercise, attempt) shows up."""

    def __init__(self, port: int) -> None:
        self.url = f"ws://{HOST}:{port}/progress/watch"
        self.sent: dict[tuple[str, str, int], float] = {}
        self.offline: set[tuple[str, str, int]] = set()  # sent while its learner was cut off
        self.arrived: dict[tuple[str, str, int], float] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)
        self.thread.start()

    def note_sent(self, name: str, exercise: str, attempt: int, connected: bool) -> None:
        with self.lock:
            self.sent[(name, exercise, attempt)] = time.monotonic()
            if not connected:
                self.offline.add((name, exercise, attempt))

    def _saw(self, learner: dict) -> None:
        now = time.monotonic()
        with self.lock:
            for exercise, entry in learner["exercises"].items():
                for attempt in range(1, entry["attempts"] + 1):
                    self.arrived.setdefault((learner["name"], exercise, attempt), now)

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        while not self.stopping:
            try:
                async with connect(
                    self.url, additional_headers={"Authorization": f"Bearer {KEY}"}
                ) as websocket:
                    async for message in websocket:
                        event = json.loads(message)
                        if event["type"] == "progress.snapshot":
                            for learner in event["learners"]:
                                self._saw(learner)
                        elif event["type"] == "progress.learner":
                            self._saw(event["learner"])
            except Exception:  # the restart: connect again
                await asyncio.sleep(0.2)


def schedule(learners: int, checks: int, seconds: float, seed: int) -> list[tuple[float, int]]:
    """(when, learner) for every check: each learner's checks spread over ``seconds``."""
    rng = random.Random(seed)
    return sorted(
        (rng.uniform(0, seconds), learner) for learner in range(learners) for _ in range(checks)
    )


def open_page(port: int):
    """Headless Chromium with the room page and its key; None without Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=os.environ.get("WORKSHOP_CHROMIUM", "/usr/bin/chromium"),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    page = browser.new_page()
    page.goto(f"http://{HOST}:{port}/#room&key={KEY}")
    page.wait_for_selector('#progress-status[data-state="open"]', timeout=15000)
    return playwright, browser, page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--checks", type=int, default=30, help="per learner")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-page", action="store_true")
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="serve --redis with a Redis of the bench's own: the board survives the restart "
        "in Redis, and the reporters' resends are all duplicates",
    )
    args = parser.parse_args()
    print_header("progress room: learners' checks to the instructor's view")

    from workshop_lib.progress.reporter import Reporter

    exercises = ["01.q1", "01.q2", "02.q1", "02.q2", "02.q3", "03.q1", "03.q2", "03.q3"]
    local_redis = None
    if args.redis:
        from workshop_lib.redis.local import LocalRedis

        local_redis = LocalRedis().start()
    room = Room(free_port(), local_redis.url if local_redis else None)
    room.start()
    browser = None if args.no_page else open_page(room.port)
    watcher = Watcher(room.port)
    names = [f"learner-{n:03d}" for n in range(args.learners)]
    reporters = [Reporter(f"http://{HOST}:{room.port}", TOKEN, name) for name in names]
    progress = [0] * args.learners  # each learner's current exercise
    rng = random.Random(args.seed)
    plan = schedule(args.learners, args.checks, args.seconds, args.seed)
    restart_at = None if args.no_restart else args.seconds / 2
    outage: tuple[float, float] | None = None
    started = time.monotonic()
    cpu_before = room.cpu_now()
    for when, learner in plan:
        if restart_at is not None and when >= restart_at:
            restart_at = None
            down = time.monotonic()
            room.stop()
            room.start()
            outage = (down, time.monotonic())
        delay = started + when - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        exercise = exercises[progress[learner] % len(exercises)]
        passed = rng.random() < 0.4
        connected = reporters[learner].connected.is_set()
        event = reporters[learner].report(
            "echo", exercise, "check", "passed" if passed else "failed"
        )
        watcher.note_sent(names[learner], exercise, event["attempt"], connected)
        if passed:
            progress[learner] += 1
    sending = time.monotonic() - started
    # Every event acknowledged, and on the watcher.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        any(r.pending for r in reporters) or len(watcher.arrived) < len(watcher.sent)
    ):
        time.sleep(0.1)
    total = time.monotonic() - started
    cpu = room.cpu_now() - cpu_before
    board = room.get("/api/progress")
    stats = room.get("/api/stats")["progress"]

    with watcher.lock:
        # Three kinds of event: sent while the learner was connected, before the restart
        # (steady state) or after it (while the new server gets the session back), and sent
        # while the learner was cut off (they wait for the new server and the backoff).
        delays_up: list[float] = []
        delays_after: list[float] = []
        delays_outage: list[float] = []
        for key, sent in watcher.sent.items():
            arrived = watcher.arrived.get(key)
            if arrived is None:
                continue
            if key in watcher.offline:
                bucket = delays_outage
            elif outage is not None and sent >= outage[0]:
                bucket = delays_after
            else:
                bucket = delays_up
            bucket.append((arrived - sent) * 1000)
        missing = len(watcher.sent) - len(watcher.arrived.keys() & watcher.sent.keys())
    on_board = sum(
        entry["attempts"]
        for learner in board["learners"]
        for entry in learner["exercises"].values()
    )
    expected = args.learners * args.checks
    restarted = (
        ""
        if outage is None
        else f", serve restarted at {outage[0] - started:.1f} s "
        f"(down {outage[1] - outage[0]:.2f} s)"
    )
    if local_redis is not None:
        print(f"serve --redis {local_redis.url}")
    print(
        f"{args.learners} learners x {args.checks} checks = {expected} events over {sending:.1f} s"
        f"{restarted}{'' if browser else ' (no room page in Chromium)'}"
    )
    print(
        "report() to the instructor's view, events sent while connected, before the restart "
        f"({len(delays_up)}): p50 {percentile(delays_up, 0.5):.1f} ms, "
        f"p99 {percentile(delays_up, 0.99):.1f} ms, max {max(delays_up):.1f} ms"
    )
    if delays_after:
        print(
            f"  ...after the restart ({len(delays_after)}): p50 "
            f"{percentile(delays_after, 0.5):.1f} ms, p99 {percentile(delays_after, 0.99):.1f} ms, "
            f"max {max(delays_after):.1f} ms (a count shows once the checks before it are back)"
        )
    if delays_outage:
        print(
            f"  events sent while their learner was cut off by the restart ({len(delays_outage)}): "
            f"p50 {percentile(delays_outage, 0.5):.0f} ms, max {max(delays_outage):.0f} ms "
            "(they waited for the new server and the reporter's backoff)"
        )
    print(
        f"room server CPU: {cpu:.2f} s over {total:.1f} s = {100 * cpu / total:.1f} % of one core"
    )
    print(
        f"on the board at the end: {on_board} checks of {expected}; server counted "
        f"{stats['events']} events, {len(board['learners'])} learners; "
        f"never on the view: {missing}; "
        f"dropped by full queues: {sum(r.dropped for r in reporters)}"
    )
    for reporter in reporters:
        reporter.stop()
    watcher.stopping = True
    if browser is not None:
        playwright, chromium, _ = browser
        chromium.close()
        playwright.stop()
    room.stop()
    if local_redis is not None:
        local_redis.stop()
    ok = on_board == expected and missing == 0 and percentile(delays_up, 0.99) < 1000
    print("OK" if ok else "FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
