"""Lesson 05's Realtime server under 100 concurrent sessions, against bare websockets.

Each session adds a user message and asks for a response at the same moment as all the
others; the figures are the first delta's latency (from ``response.create`` sent to the
first ``response.output_text.delta`` received, p50 and p99), the whole response's time,
and the server process's CPU per delta. The bare server is plain ``websockets`` replaying
the very frames the lesson's server sent for one such exchange (recorded in this process
before the run: the same bytes, as many frames, in the same order, with the same pause after
each delta); it reads each client message as JSON for its type and does nothing else: the
difference is what the lesson's protocol costs (parsing, checking, building and encoding).

    python bench/realtime_stream.py                    # text and tools, 100 sessions, 5 repeats
    python bench/realtime_stream.py --only text --repeats 9
    python bench/realtime_stream.py --sessions 300 --delay 0.01

p50 and p99 are over every session of every repeat pooled (500 samples by default: the
p99 of one 100-session round is its second-slowest session), with the spread of the
repeats' own p99s beside them, and the median of the p99 ratios repeat by repeat (each
workshop round against the bare round taken next to it). The servers run at once in child
processes of this script, each idle while another is measured, their rounds taken in turn
(the order reversed every repeat), so that a busy spell on a shared machine falls on both
sides; the load average is printed at the start and the end. "threaded" is the lesson
again with a responder that does not declare ``runs_on_loop``, as a learner's own function:
each chunk is fetched on a thread.

The tool-calling run (lesson 07): each session declares a tool, asks a question the course's
model answers with a function call (its arguments streamed), sends the call's output and
asks again; the figures are the first ``response.function_call_arguments.delta``'s latency
and the server's CPU per event. Its bare server replays that exchange's frames likewise.

    python bench/realtime_stream.py --only tools
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
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(__file__))

from _common import (
    HOST,
    Child,
    child,
    cpu_seconds,
    percentile,
    print_header,
    run_main,
    serve_lesson,
)
from websockets.asyncio.client import connect

WORDS = 25  # the question's length; the default responder answers in WORDS + 4 deltas
QUESTION = " ".join(f"word{i}" for i in range(WORDS))
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}
TOOL_QUESTION = "What is the weather in Paris today, in celsius?"
TOOL_OUTPUT = json.dumps({"city": "Paris", "temperature": 18, "unit": "celsius", "sky": "clear"})


# -- the servers (child processes) ---------------------------------------------------------------


def serve_workshop(delay: float, threaded: bool, tools: bool = False) -> None:
    from workshop_lib.realtime.model import local_model
    from workshop_lib.realtime.responder import echo_responder
    from workshop_lib.realtime.server import RealtimeLesson

    def learners_responder(text: str):  # the same answer, without runs_on_loop: on threads
        yield from echo_responder(text)

    responder = learners_responder if threaded else local_model if tools else echo_responder
    serve_lesson(RealtimeLesson(responder, delay=delay, burst=1000, rate=1000))


def record_exchange(tools: bool) -> dict[str, list[list[str]]]:
    """The frames the lesson's server sends for one exchange, per client event, in order.

    Recorded from a session in this process (no pause between deltas), ``session.created``
    under "hello": the bare server replays them, so both servers send the same frames, byte
    for byte, and as many (an item is answered with two events, a response opens with
    four before its first delta).
    """
    from concurrent.futures import ThreadPoolExecutor

    from workshop_lib.realtime.model import local_model
    from workshop_lib.realtime.responder import echo_responder
    from workshop_lib.realtime.session import Counts, RealtimeSession

    frames: list[str] = []

    async def send(event: dict) -> None:
        frames.append(json.dumps(event, ensure_ascii=False))

    async def main() -> dict[str, list[list[str]]]:
        recorded: dict[str, list[list[str]]] = {}
        responder = local_model if tools else echo_responder
        with ThreadPoolExecutor(1) as pool:
            session = RealtimeSession(send, responder, pool, Counts(), delay=0)
            await session.open()
            recorded["hello"] = [list(frames)]
            for name, message in _tool_messages("CALL_ID") if tools else _text_messages():
                frames.clear()
                await session.handle(message.replace("CALL_ID", _last_call_id(session)))
                if session.response is not None and session.response.task is not None:
                    await session.response.task
                recorded.setdefault(name, []).append(list(frames))
        return recorded

    return asyncio.run(main())


# A text client asks for text first: the service (and the lesson's server) answers in audio.
TEXT_UPDATE = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"]},
}


def _text_messages() -> list[tuple[str, str]]:
    """A client's side of one text exchange: the session in text, a user message, then
    ``response.create``."""
    item = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": QUESTION}],
        },
    }
    return [
        ("update", json.dumps(TEXT_UPDATE)),
        ("item", json.dumps(item)),
        ("response", '{"type": "response.create"}'),
    ]


def _last_call_id(session) -> str:
    calls = [i for i in session.items if i.get("type") == "function_call"]
    return calls[-1]["call_id"] if calls else "none"


def _tool_messages(call_id: str) -> list[tuple[str, str]]:
    """A client's side of one tool exchange: (kind, message), in order."""
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "output_modalities": ["text"], "tools": [WEATHER]},
    }
    question = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": TOOL_QUESTION}],
        },
    }
    output = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": TOOL_OUTPUT},
    }
    ask = '{"type": "response.create"}'
    return [
        ("update", json.dumps(update)),
        ("item", json.dumps(question)),
        ("response", ask),
        ("item", json.dumps(output)),
        ("response", ask),
    ]


def serve_bare(delay: float, frames_file: str) -> None:
    """Plain websockets replaying the lesson's recorded frames, with the same pauses.

    It reads each client message as JSON for its type, as any server must; it builds,
    checks and encodes nothing else: the difference is what the lesson's protocol costs.
    """
    from websockets.asyncio.server import serve

    with open(frames_file, encoding="utf-8") as file:
        recorded = json.load(file)
    kinds = {"session.update": "update", "response.create": "response"}

    async def handler(websocket) -> None:
        for frame in recorded["hello"][0]:
            await websocket.send(frame)
        turns = {kind: iter(replies) for kind, replies in recorded.items()}
        async for message in websocket:
            kind = kinds.get(json.loads(message).get("type"), "item")
            for frame in next(turns[kind], []):
                await websocket.send(frame)
                if '.delta"' in frame[:60]:  # a delta: the same pause as the lesson's
                    await asyncio.sleep(delay)

    async def main() -> None:
        async with serve(handler, HOST, 0, compression=None, ping_interval=None) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            await asyncio.to_thread(sys.stdin.read)

    asyncio.run(main())


# -- the clients (this process) ------------------------------------------------------------------


@dataclass
class Run:
    first_delta_ms: list[float]
    response_ms: list[float]
    deltas: int
    cpu_s: float


async def one_session(
    port: int, ready: asyncio.Queue[None], start: asyncio.Event, path: str
) -> tuple[float, float, int]:
    (_, update), (_, item), _ = _text_messages()
    async with connect(
        f"ws://{HOST}:{port}{path}", proxy=None, compression=None, max_size=None, ping_interval=None
    ) as websocket:
        await websocket.recv()  # session.created
        await websocket.send(update)
        while json.loads(await websocket.recv())["type"] != "session.updated":
            pass
        ready.put_nowait(None)
        await start.wait()
        await websocket.send(item)
        await websocket.send('{"type": "response.create"}')
        sent = time.perf_counter()
        first, deltas = None, 0
        async for message in websocket:
            kind = json.loads(message)["type"]
            if kind == "response.output_text.delta":
                deltas += 1
                first = first or time.perf_counter()
            elif kind == "response.done":
                return (first - sent) * 1000, (time.perf_counter() - sent) * 1000, deltas
    raise RuntimeError("closed before response.done")


async def one_tool_session(
    port: int, ready: asyncio.Queue[None], start: asyncio.Event, path: str
) -> tuple[float, float, int]:
    """One tool exchange: (first arguments delta ms, whole exchange ms, events received)."""
    messages = _tool_messages("")
    async with connect(
        f"ws://{HOST}:{port}{path}", proxy=None, compression=None, max_size=None, ping_interval=None
    ) as websocket:
        await websocket.recv()  # session.created
        await websocket.send(messages[0][1])
        while json.loads(await websocket.recv())["type"] != "session.updated":
            pass
        ready.put_nowait(None)
        await start.wait()
        await websocket.send(messages[1][1])
        await websocket.send(messages[2][1])
        sent = time.perf_counter()
        first, events, call_id = None, 0, None
        async for message in websocket:
            event = json.loads(message)
            events += 1
            kind = event["type"]
            if kind == "response.function_call_arguments.delta":
                first = first or time.perf_counter()
            elif kind == "response.function_call_arguments.done":
                call_id = event["call_id"]
            elif kind == "response.done" and call_id is not None:
                break
        output = json.loads(messages[3][1])
        output["item"]["call_id"] = call_id
        await websocket.send(json.dumps(output))
        await websocket.send(messages[4][1])
        async for message in websocket:
            events += 1
            if json.loads(message)["type"] == "response.done":
                break
        if first is None:
            raise RuntimeError("no function_call_arguments.delta")
        return (first - sent) * 1000, (time.perf_counter() - sent) * 1000, events
    raise RuntimeError("closed before response.done")


async def run_sessions(server: Child, port: int, sessions: int, tools: bool = False) -> Run:
    start, ready = asyncio.Event(), asyncio.Queue()
    client = one_tool_session if tools else one_session
    tasks = [
        asyncio.create_task(client(port, ready, start, "/v1/realtime?model=bench"))
        for _ in range(sessions)
    ]
    for _ in range(sessions):  # every session connected and greeted before the clock starts
        await asyncio.wait_for(ready.get(), 30)
    before = cpu_seconds(server.pid)
    start.set()
    results = await asyncio.gather(*tasks)
    cpu = cpu_seconds(server.pid) - before
    return Run([r[0] for r in results], [r[1] for r in results], sum(r[2] for r in results), cpu)


def measure(kinds: list[str], args: argparse.Namespace, frames_file: str) -> dict[str, list[Run]]:
    """``args.repeats`` rounds of each server in ``kinds``, taken in turn, not one after another.

    The machine is shared: its load drifts over a minute. All the servers run at once (each
    idle while another is measured) and their rounds alternate, the order reversed on every
    repeat, so that a busy spell falls on both sides alike.
    """
    runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
    with contextlib.ExitStack() as stack:
        servers = {}
        for kind in kinds:
            command = ["--serve", kind, "--delay", str(args.delay), "--frames", frames_file]
            c = stack.enter_context(child(__file__, command, f"{kind} server"))
            servers[kind] = (c, int(c.expect("PORT ", 20)))
        for kind, (c, port) in servers.items():
            # A first, unmeasured round: imports and caches a first request fills.
            asyncio.run(run_sessions(c, port, min(10, args.sessions), kind.endswith("-tools")))
        for repeat in range(args.repeats):
            for kind in kinds if repeat % 2 == 0 else kinds[::-1]:
                c, port = servers[kind]
                tools = kind.endswith("-tools")
                runs[kind].append(asyncio.run(run_sessions(c, port, args.sessions, tools)))
    return runs


def summarize(runs: list[Run], sessions: int) -> dict[str, float]:
    """Percentiles over every session of every repeat pooled (a p99 of 100 samples is the
    second-slowest session: noise), with the spread of the repeats' own p99s."""
    first = [ms for r in runs for ms in r.first_delta_ms]
    each = [percentile(r.first_delta_ms, 0.99) for r in runs]
    return {
        "p50": percentile(first, 0.50),
        "p99": percentile(first, 0.99),
        "p99_lo": min(each),
        "p99_hi": max(each),
        "whole": statistics.median(ms for r in runs for ms in r.response_ms),
        "cpu_us": statistics.median(r.cpu_s / r.deltas * 1e6 for r in runs),
        "events": runs[0].deltas / sessions,
    }


def paired_p99(ours: list[Run], bare: list[Run]) -> tuple[float, float, float]:
    """The p99 ratio of each repeat's two rounds, taken seconds apart: (median, low, high).

    The pooled p99 of one side can hang on a single bad round (a busy spell, a collection);
    pairing each workshop round with the bare round next to it, and taking the median over
    the repeats, leaves out a spell that hit only one round.
    """
    ratios = [
        percentile(o.first_delta_ms, 0.99) / percentile(b.first_delta_ms, 0.99)
        for o, b in zip(ours, bare, strict=True)
    ]
    return statistics.median(ratios), min(ratios), max(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between deltas")
    parser.add_argument("--only", choices=["text", "tools"], help="one of the two runs")
    parser.add_argument(
        "--serve",
        choices=["workshop", "threaded", "bare", "workshop-tools", "bare-tools"],
        help="(child) run a server",
    )
    parser.add_argument("--frames", help="(child) the recorded frames the bare server replays")
    args = parser.parse_args(argv)
    if args.serve in ("workshop", "threaded", "workshop-tools"):
        serve_workshop(args.delay, args.serve == "threaded", args.serve == "workshop-tools")
        return 0
    if args.serve in ("bare", "bare-tools"):
        serve_bare(args.delay, args.frames)
        return 0
    print_header("Realtime streaming: concurrent sessions, first-delta latency, CPU per delta")
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (2-core machine)")
    status = 0 if args.only == "tools" else text_run(args)
    if status == 0 and args.only != "text":
        status = tools_run(args)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return status


def _with_frames(tools: bool, kinds: list[str], args: argparse.Namespace) -> dict[str, list[Run]]:
    """Record the lesson's frames for the bare server, then measure ``kinds``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(record_exchange(tools), file)
    try:
        return measure(kinds, args, file.name)
    finally:
        os.unlink(file.name)


def _row(kind: str, f: dict[str, float], unit: str) -> str:
    spread = f"{f['p99_lo']:.0f}–{f['p99_hi']:.0f} ms"
    return (
        f"{kind:<15} {f['p50']:>8.1f} ms {f['p99']:>7.1f} ms {spread:>15} "
        f"{f['whole']:>8.0f} ms {f['cpu_us']:>7.1f} µs/{unit}"
    )


def _header(first: str, whole: str) -> str:
    return (
        f"{'server':<15} {first + ' p50':>11} {'p99':>10} {'p99 by repeat':>15} "
        f"{whole:>11} {'CPU':>10}"
    )


def tools_run(args: argparse.Namespace) -> int:
    """Lesson 07's exchange: a call with streamed arguments, its output, the answer."""
    print(
        f"\nTool calling: {args.sessions} sessions at once, each a call, an output and an "
        f"answer, {args.delay * 1000:g} ms between deltas, {args.repeats} repeats"
    )
    runs = _with_frames(True, ["bare-tools", "workshop-tools"], args)
    figures = {kind: summarize(r, args.sessions) for kind, r in runs.items()}
    print(_header("1st args", "exchange"))
    for kind, f in figures.items():
        print(_row(kind, f, "event"))
    bare, ours = figures["bare-tools"], figures["workshop-tools"]
    if bare["events"] != ours["events"]:
        print(f"the servers sent {bare['events']:.0f} and {ours['events']:.0f} events a session")
        return 1
    print(
        f"\nworkshop / bare (tools): first arguments delta p99 {ours['p99'] / bare['p99']:.2f}x, "
        f"p50 {ours['p50'] / bare['p50']:.2f}x, "
        f"CPU per event {ours['cpu_us'] / bare['cpu_us']:.2f}x"
    )
    mid, low, high = paired_p99(runs["workshop-tools"], runs["bare-tools"])
    print(f"p99 ratio repeat by repeat: median {mid:.2f}x ({low:.2f}–{high:.2f})")
    return 0


def text_run(args: argparse.Namespace) -> int:
    """Lesson 05's text path: the figures the issue's goal is about."""
    print(
        f"{args.sessions} sessions at once, {WORDS + 4} deltas each, {args.delay * 1000:g} ms "
        f"between deltas, {args.repeats} repeats (percentiles over all {args.repeats} pooled)\n"
    )
    # "threaded": the same answers from a responder without runs_on_loop, as a learner's
    # own function runs: each chunk is fetched on a thread.
    runs = _with_frames(False, ["bare", "workshop", "threaded"], args)
    expected = args.sessions * (WORDS + 4)
    for kind, rs in runs.items():
        if any(run.deltas != expected for run in rs):
            print(f"{kind}: got {[r.deltas for r in rs]} deltas, expected {expected}")
            return 1
    figures = {kind: summarize(r, args.sessions) for kind, r in runs.items()}
    print(_header("1st delta", "response"))
    for kind, f in figures.items():
        print(_row(kind, f, "delta"))
    bare, ours = figures["bare"], figures["workshop"]
    print(
        f"\nworkshop / bare: first delta p99 {ours['p99'] / bare['p99']:.2f}x, "
        f"p50 {ours['p50'] / bare['p50']:.2f}x, "
        f"CPU per delta {ours['cpu_us'] / bare['cpu_us']:.2f}x"
    )
    mid, low, high = paired_p99(runs["workshop"], runs["bare"])
    print(f"p99 ratio repeat by repeat: median {mid:.2f}x ({low:.2f}–{high:.2f})")
    return 0


if __name__ == "__main__":
    run_main(main)
