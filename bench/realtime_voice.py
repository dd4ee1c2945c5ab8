"""Lesson 08's voice server under 50 concurrent voice sessions, against bare websockets.

Each session streams real speech in real time: eSpeak NG's "What is the weather like in Paris
today?" (the course's speech engine, made once, 24 kHz PCM16) between silences, cut into
``--chunk-ms`` appends paced on the clock, through ``server_vad``; every turn is answered in
audio. The figures:

- ``speech_stopped`` -> first ``response.output_audio.delta``, as the client reads them,
  p50 and p99 over every turn of every session (the issue's goal: p99 <= 200 ms);
- the server process's CPU (read from the OS for that process) per session-second of audio
  streamed, and how busy it was; events a second, in and out;
- the same for the anchor: plain ``websockets`` relaying the same frames. It takes the same
  appends (same sizes, same pacing) and answers each with the very frames the lesson's server
  sends for it (recorded in this process before the run: same bytes, as many, in the same
  order, with the same pauses), reading each message as JSON and doing nothing else. No turn
  detection, no speech synthesis, no base64: the ratio is what the course's server costs.

The clients run in this process, the servers each in a child process of their own, so that
neither side's CPU is counted for the other; the output says how busy the client process was
and how late its sends went out (a client that cannot keep up would make the server look
slow). The sessions start spread over one turn, as people who do not speak in chorus
(``--aligned``: all at once, the worst case).

    python bench/realtime_voice.py              # 50 sessions, 20 ms chunks, 3 turns, 2 repeats
    python bench/realtime_voice.py --sessions 100 --chunk-ms 100
    python bench/realtime_voice.py --quick      # a small run (the tests call it)
    python bench/realtime_voice.py --costs      # CPU per append, step by step, no network

The servers' rounds alternate (the order reversed each repeat) so that a busy spell on a
shared machine falls on both; the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(__file__))

from _common import (
    HOST,
    Child,
    check_health,
    child,
    cpu_seconds,
    percentile,
    print_header,
    run_main,
    run_queue_seconds,
    serve_lesson,
)
from websockets.asyncio.client import connect

SENTENCE = "What is the weather like in Paris today?"
LEAD_MS = 500  # silence before the sentence
# Silence after it: room for speech_stopped (500 ms of silence after the voice) and the whole
# answer (its audio deltas, paced by the lesson's delay) before the next turn starts.
TRAIL_MS = 2500
GOAL_MS = 200.0  # the goal for the p99
PAUSE = None  # in a recording: the server waited its delay here
UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
        },
    }
)


# -- the audio and the recording (this process, before the run) ---------------------------------


def turn_appends(chunk_ms: int) -> list[str]:
    """One turn's ``input_audio_buffer.append`` events: silence, the sentence, silence."""
    import numpy as np

    from workshop_lib.realtime.audio import RATE, pcm_to_b64
    from workshop_lib.realtime.speech import synthesize

    speech = synthesize(SENTENCE).samples  # the course's TTS, at 24 kHz
    clip = np.concatenate(
        [
            np.zeros(LEAD_MS * RATE // 1000, np.int16),
            speech,
            np.zeros(TRAIL_MS * RATE // 1000, np.int16),
        ]
    )
    n = chunk_ms * RATE // 1000
    clip = clip[: len(clip) // n * n]  # whole chunks: every append the same size
    return [
        json.dumps({"type": "input_audio_buffer.append", "audio": pcm_to_b64(clip[i : i + n])})
        for i in range(0, len(clip), n)
    ]


def record(appends: list[str], turns: int, delay: float) -> dict[str, list]:
    """The frames the lesson's server sends for each client event of a session, in order.

    ``{"hello": [...], "update": [...], "appends": [[...], ...]}``: one list per append (most
    empty), ``None`` where the server waits its ``delay`` (between audio deltas). A session
    in this process, with the server's responder; a response's frames are the append's
    that started it (it is awaited before the next append: the bare server replays them
    on a task, as the lesson streams them while the appends go on).
    """
    from concurrent.futures import ThreadPoolExecutor
    from unittest import mock

    from workshop_lib.realtime import session as session_module
    from workshop_lib.realtime.model import local_model
    from workshop_lib.realtime.session import Counts, RealtimeSession

    frames: list[str | None] = []

    async def send(event: dict) -> None:
        frames.append(json.dumps(event, ensure_ascii=False))

    class Pauses:
        """The session module's ``asyncio`` while recording: a sleep is a marker, not a wait."""

        def __getattr__(self, name: str) -> object:
            return getattr(asyncio, name)

        async def sleep(self, seconds: float, result: object = None) -> object:
            if seconds:
                frames.append(PAUSE)
            await asyncio.sleep(0)
            return result

    async def main() -> dict[str, list]:
        recorded: dict[str, list] = {"appends": []}
        with ThreadPoolExecutor(2) as pool, mock.patch.object(session_module, "asyncio", Pauses()):
            session = RealtimeSession(send, local_model, pool, Counts(), delay=delay)
            await session.open()
            recorded["hello"], frames[:] = list(frames), []
            await session.handle(UPDATE)
            recorded["update"], frames[:] = list(frames), []
            for message in appends * turns:
                await session.handle(message)
                if session.response is not None and session.response.task is not None:
                    await session.response.task
                recorded["appends"].append(list(frames))
                frames.clear()
        return recorded

    return asyncio.run(main())


def kind_of(frame: str) -> str:
    """An event's type, read from the start of its JSON (every server event begins with it)."""
    return frame[10 : frame.index('"', 10)]


# -- the servers (child processes) ---------------------------------------------------------------


def serve_workshop(delay: float) -> None:
    """The lesson's server as ``start_server`` runs it, with the default responder; only the
    per-address and per-connection rate caps are lifted (every session is 127.0.0.1, and
    20 ms chunks are 50 events a second)."""
    from workshop_lib.realtime.server import RealtimeLesson

    serve_lesson(RealtimeLesson(delay=delay, burst=1000, rate=1000))


def serve_bare(delay: float, frames_file: str) -> None:
    """Plain websockets relaying the lesson's recorded frames for each client event.

    It reads each client message as JSON (for its type, as any server must) and answers the
    n-th append with what the lesson sent for it: inline up to the first pause, the rest on
    a task, waiting ``delay`` at each pause, while it goes on reading the appends.
    """
    from websockets.asyncio.server import serve

    with open(frames_file, encoding="utf-8") as file:
        recorded = json.load(file)
    appends = recorded["appends"]

    async def paced(websocket, frames: list[str | None]) -> None:
        for frame in frames:
            if frame is None:
                await asyncio.sleep(delay)
            else:
                await websocket.send(frame)

    async def handler(websocket) -> None:
        for frame in recorded["hello"]:
            await websocket.send(frame)
        tasks, n = set(), 0
        try:
            async for message in websocket:
                kind = json.loads(message).get("type")
                if kind == "session.update":
                    frames = recorded["update"]
                elif kind == "input_audio_buffer.append" and n < len(appends):
                    frames, n = appends[n], n + 1
                else:
                    continue
                first = frames.index(PAUSE) if PAUSE in frames else len(frames)
                for frame in frames[:first]:
                    await websocket.send(frame)
                if first < len(frames):
                    task = asyncio.create_task(paced(websocket, frames[first:]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    async def main() -> None:
        async with serve(
            handler, HOST, 0, compression=None, ping_interval=None, max_size=None
        ) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            await asyncio.to_thread(sys.stdin.read)

    asyncio.run(main())


# -- the clients (this process) ------------------------------------------------------------------


@dataclass
class Session:
    """What one client saw."""

    latencies_ms: list[float] = field(default_factory=list)  # speech_stopped -> first audio
    kinds: dict[str, int] = field(default_factory=dict)  # events received, by type
    statuses: list[str] = field(default_factory=list)  # each response.done's status
    received: int = 0  # events after session.updated
    late_ms: list[float] = field(default_factory=list)  # how late each append went out


async def one_session(
    port: int,
    appends: list[bytes],
    turns: int,
    offset: float,
    period: float,
    ready: asyncio.Queue[None],
    start: asyncio.Event,
    clock: list[float],
) -> Session:
    """Stream ``turns`` turns in real time from ``offset`` s after the start; read everything."""
    seen = Session()
    async with connect(
        f"ws://{HOST}:{port}/v1/realtime?model=bench",
        proxy=None,
        compression=None,
        max_size=None,
        ping_interval=None,
    ) as websocket:
        await websocket.recv()  # session.created
        await websocket.send(UPDATE)
        while kind_of(await websocket.recv()) != "session.updated":
            pass
        ready.put_nowait(None)
        await start.wait()

        async def read() -> None:
            stopped = None
            async for message in websocket:
                now = time.perf_counter()
                kind = kind_of(message)
                seen.received += 1
                seen.kinds[kind] = seen.kinds.get(kind, 0) + 1
                if kind == "input_audio_buffer.speech_stopped":
                    stopped = now
                elif kind == "response.output_audio.delta" and stopped is not None:
                    seen.latencies_ms.append((now - stopped) * 1000)
                    stopped = None
                elif kind == "response.done":
                    seen.statuses.append(json.loads(message)["response"]["status"])
                    if len(seen.statuses) == turns:
                        return

        reader = asyncio.create_task(read())
        loop = asyncio.get_running_loop()
        t0 = clock[0] + offset
        for k, message in enumerate(appends * turns):
            due = t0 + k * period
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            seen.late_ms.append(max(0.0, loop.time() - due) * 1000)
            await websocket.send(message, text=True)
        # The last answer may still be speaking: wait for it, within reason.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 30)
    return seen


def chunk_seconds(appends: list[bytes]) -> float:
    """How much audio one append carries (all are the same size)."""
    audio = json.loads(appends[0])["audio"]
    return len(audio) * 3 // 4 / 2 / 24000


@dataclass
class Round:
    """One server's round: every session's view, and what the processes spent."""

    sessions: list[Session]
    seconds: float  # wall time from the first append to the last answer
    server_cpu: float
    server_waited: float  # its threads' time runnable but not running (the machine was busy)
    client_cpu: float
    client_waited: float


async def run_round(
    server: Child, port: int, appends: list[bytes], args: argparse.Namespace
) -> Round:
    start, ready = asyncio.Event(), asyncio.Queue()
    clock: list[float] = [0.0]
    period = chunk_seconds(appends)
    turn_s = len(appends) * period
    offsets = [0.0 if args.aligned else i * turn_s / args.sessions for i in range(args.sessions)]
    tasks = [
        asyncio.create_task(one_session(port, appends, args.turns, o, period, ready, start, clock))
        for o in offsets
    ]
    for _ in tasks:  # every session connected and set up before the clock starts
        await asyncio.wait_for(ready.get(), 60)
    me = os.getpid()
    cpu, waited = cpu_seconds(server.pid), run_queue_seconds(server.pid)
    mine, mine_waited = cpu_seconds(me), run_queue_seconds(me)
    began = time.perf_counter()
    clock[0] = asyncio.get_running_loop().time() + 0.05
    start.set()
    sessions = await asyncio.gather(*tasks)
    return Round(
        sessions,
        time.perf_counter() - began,
        cpu_seconds(server.pid) - cpu,
        run_queue_seconds(server.pid) - waited,
        cpu_seconds(me) - mine,
        run_queue_seconds(me) - mine_waited,
    )


def measure(args: argparse.Namespace, appends: list[bytes], frames_file: str) -> dict:
    """``args.repeats`` rounds of each server, taken in turn (the order reversed each repeat)."""
    kinds = ["bare", "workshop"]
    rounds: dict[str, list[Round]] = {kind: [] for kind in kinds}
    with contextlib.ExitStack() as stack:
        servers = {}
        for kind in kinds:
            command = ["--serve", kind, "--delay", str(args.delay), "--frames", frames_file]
            c = stack.enter_context(child(__file__, command, f"{kind} server"))
            servers[kind] = (c, int(c.expect("PORT ", 30)))
        check_health(servers["workshop"][1], servers["workshop"][0].pid)
        for repeat in range(args.repeats):
            for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
                c, port = servers[kind]
                rounds[kind].append(asyncio.run(run_round(c, port, appends, args)))
    return rounds


def costs(chunk_ms: int) -> None:
    """Where the server's CPU goes per append, in CPU time, with no network: each step alone
    on one session's appends (four turns), best of three."""
    import base64

    import numpy as np

    from workshop_lib.realtime.events import parse_client_event
    from workshop_lib.realtime.turns import TurnDetector

    texts = turn_appends(chunk_ms) * 4
    audios = [json.loads(m)["audio"] for m in texts]
    pcms = [np.frombuffer(base64.b64decode(a), "<i2") for a in audios]

    def vad() -> None:
        detector = TurnDetector()
        for pcm in pcms:
            detector.feed(pcm)

    steps = {
        "json.loads": lambda: [json.loads(m) for m in texts],
        "parse_client_event (json, shapes, base64 check)": lambda: [
            parse_client_event(m) for m in texts
        ],
        "base64.b64decode (again, in _append)": lambda: [base64.b64decode(a) for a in audios],
        "TurnDetector.feed (resample, VAD)": vad,
    }
    print(f"CPU per {chunk_ms} ms append, {len(texts)} appends, best of 3:")
    for name, step in steps.items():
        best = min(_cpu(step) for _ in range(3))
        print(f"  {name:<50} {best * 1e6 / len(texts):6.1f} µs")
    frames = record(texts, 1, 0.05)["appends"]
    answers = sum(f is not PAUSE and kind_of(f) == "response.done" for a in frames for f in a)
    cpu = min(_cpu(lambda: record(texts, 1, 0)) for _ in range(3))
    print(
        f"  {'RealtimeSession.handle, all of it':<50} {cpu * 1e6 / len(texts):6.1f} µs "
        f"(its {answers} answers' synthesis included)"
    )


def _cpu(step) -> float:
    """CPU seconds (all threads of this process) that ``step()`` takes."""
    start = time.process_time()
    step()
    return time.process_time() - start


# -- the figures ---------------------------------------------------------------------------------


def summarize(rounds: list[Round], audio_s: float) -> dict[str, float]:
    """Pooled percentiles (every turn of every round), CPU per session-second, events/s."""
    latencies = [ms for r in rounds for s in r.sessions for ms in s.latencies_ms]
    by_round = [percentile([m for s in r.sessions for m in s.latencies_ms], 0.99) for r in rounds]
    late = [ms for r in rounds for s in r.sessions for ms in s.late_ms]
    session_seconds = sum(len(r.sessions) * audio_s for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    sent = sum(s.received for r in rounds for s in r.sessions)
    appended = sum(len(s.late_ms) for r in rounds for s in r.sessions)
    return {
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "p99_lo": min(by_round),
        "p99_hi": max(by_round),
        "turns": len(latencies),
        "cpu_ms": sum(r.server_cpu for r in rounds) * 1000 / session_seconds,
        "busy": sum(r.server_cpu for r in rounds) / seconds,
        "waited": sum(r.server_waited for r in rounds) / seconds,
        "client": sum(r.client_cpu for r in rounds) / seconds,
        "client_waited": sum(r.client_waited for r in rounds) / seconds,
        "late_p99": percentile(late, 0.99),
        "late_max": max(late),
        "out_s": sent / seconds,
        "in_s": appended / seconds,
        "events": statistics.mean(s.received for r in rounds for s in r.sessions),
        "answers": sum(len(s.statuses) for r in rounds for s in r.sessions),
        "cut": sum(
            status != "completed" for r in rounds for s in r.sessions for status in s.statuses
        ),
        "silent": sum(len(s.statuses) - len(s.latencies_ms) for r in rounds for s in r.sessions),
    }


def check(kind: str, rounds: list[Round], turns: int) -> str | None:
    """What went wrong in a round, if anything: every turn heard and answered, no errors.

    An answer cut by the speaker's next turn (barge-in) is not an error: the server fell
    behind the audio's clock; it is counted and reported.
    """
    for r in rounds:
        for i, s in enumerate(r.sessions):
            stopped = s.kinds.get("input_audio_buffer.speech_stopped", 0)
            if stopped != turns or len(s.statuses) != turns:
                return (
                    f"{kind}: session {i} had {stopped} speech_stopped and "
                    f"{len(s.statuses)} responses for {turns} turns ({s.kinds})"
                )
            if "error" in s.kinds:
                return f"{kind}: session {i} got {s.kinds['error']} error events"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--turns", type=int, default=3, help="turns each session speaks")
    parser.add_argument("--chunk-ms", type=int, default=20, help="audio in each append")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of each server")
    parser.add_argument(
        "--delay", type=float, default=0.05, help="the lesson's delay (its default)"
    )
    parser.add_argument("--aligned", action="store_true", help="all sessions start at once")
    parser.add_argument("--quick", action="store_true", help="4 sessions, 1 turn, 1 repeat")
    parser.add_argument("--costs", action="store_true", help="CPU per append, step by step")
    parser.add_argument("--serve", choices=["workshop", "bare"], help="(child) run a server")
    parser.add_argument("--frames", help="(child) the recorded frames the bare server relays")
    args = parser.parse_args(argv)
    if args.serve == "workshop":
        serve_workshop(args.delay)
        return 0
    if args.serve == "bare":
        serve_bare(args.delay, args.frames)
        return 0
    if args.costs:
        costs(args.chunk_ms)
        return 0
    if args.quick:
        args.sessions, args.turns, args.repeats = 4, 1, 1
    print_header("Realtime voice: concurrent sessions streaming speech through server_vad")
    texts = turn_appends(args.chunk_ms)
    appends = [t.encode() for t in texts]
    turn_s = len(appends) * chunk_seconds(appends)
    print(
        f"{args.sessions} sessions, each {args.turns} turns of {turn_s:.2f} s (eSpeak NG: "
        f'"{SENTENCE}" between {LEAD_MS} and {TRAIL_MS} ms of silence), in {args.chunk_ms} ms '
        f"appends paced in real time, server_vad, answers in audio; the lesson's delay "
        f"{args.delay * 1000:g} ms; {args.repeats} rounds of each server; sessions start "
        + ("all at once" if args.aligned else f"spread over {turn_s:.1f} s")
    )
    recorded = record(texts, args.turns, args.delay)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(recorded, file)
    try:
        rounds = measure(args, appends, file.name)
    finally:
        os.unlink(file.name)
    for kind, rs in rounds.items():
        problem = check(kind, rs, args.turns)
        if problem:
            print(problem)
            return 1
    audio_s = args.turns * turn_s
    figures = {kind: summarize(rs, audio_s) for kind, rs in rounds.items()}
    bare, ours = figures["bare"], figures["workshop"]
    if not bare["cut"] + ours["cut"] and round(bare["events"]) != round(ours["events"]):
        print(f"the servers sent {bare['events']:.1f} and {ours['events']:.1f} events a session")
        return 1
    print(
        f"\n{'server':<9} {'stopped->audio p50':>18} {'p99':>9} {'p99 by round':>14} {'max':>9} "
        f"{'CPU/session-s':>14} {'server busy':>12} {'waited':>8} {'events out/s':>13} {'in/s':>7}"
    )
    for kind, f in figures.items():
        spread = f"{f['p99_lo']:.0f}–{f['p99_hi']:.0f} ms"
        print(
            f"{kind:<9} {f['p50']:>15.1f} ms {f['p99']:>6.1f} ms {spread:>14} {f['max']:>6.1f} ms "
            f"{f['cpu_ms']:>11.2f} ms {f['busy'] * 100:>10.1f} % {f['waited'] * 100:>6.1f} % "
            f"{f['out_s']:>13,.0f} {f['in_s']:>7,.0f}"
        )
    print(
        f"\nturns answered in audio: workshop {ours['turns']}, bare {bare['turns']}; "
        f"events a session: {ours['events']:.0f}, {bare['events']:.0f}. "
        "CPU/session-s: the server process's CPU per second of one session's audio streamed; "
        "busy: its CPU over the rounds' wall time (100 % = one core); waited: its threads' "
        "time runnable but not running (the machine was busy elsewhere)."
    )
    for kind, f in figures.items():
        if f["cut"]:
            print(
                f"{kind}: {f['cut']} of {f['answers']} answers were cut by the speaker's next "
                f"turn (barge-in), {f['silent']} of them before any audio (left out of the "
                "percentiles): the server had fallen seconds behind the audio's clock"
            )
    for kind, f in figures.items():
        print(
            f"client process during the {kind} rounds: {f['client'] * 100:.1f} % of a core "
            f"(waited for one {f['client_waited'] * 100:.1f} %); "
            f"appends sent late by p99 {f['late_p99']:.1f} ms, at most {f['late_max']:.1f} ms"
        )
    verdict = "met" if ours["p99"] <= GOAL_MS else "MISSED"
    print(
        f"\nworkshop / bare: stopped->audio p50 {ours['p50'] / bare['p50']:.2f}x, "
        f"p99 {ours['p99'] / bare['p99']:.2f}x (+{ours['p50'] - bare['p50']:.1f} ms and "
        f"+{ours['p99'] - bare['p99']:.1f} ms); CPU per session-second "
        f"{ours['cpu_ms'] / bare['cpu_ms']:.2f}x"
    )
    print(f"goal p99 <= {GOAL_MS:.0f} ms: {verdict} ({ours['p99']:.1f} ms)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    run_main(main)
