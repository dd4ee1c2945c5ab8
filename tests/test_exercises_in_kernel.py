"""Every exercise of notebooks 01-08 as a learner meets it: in a real Jupyter kernel, as
cells after the notebook's own set-up (its first cell and the imports above the exercise),
on ipykernel's running event loop.

For each exercise: the cell as the notebook ships it (its ``____`` is caught), the shipped
solution (the text ``%load qN.code`` puts in a cell) passes, and typical wrong answers (a
cell of their own, or the notebook's cell with its blanks filled wrongly) fail with the words
meant for them. One kernel per notebook, one test per notebook, so a
notebook's attempts share a worker and run one after another.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.kernel import NOTEBOOKS, CellRun, Kernel, assert_ok, code_cells, setup_cells

SOLUTIONS = ROOT / "workshop_lib" / "checks" / "solutions"


@dataclass(frozen=True)
class Wrong:
    """A typical wrong answer, and the words the check's message must have for it: a cell
    that defines it and runs the check, or ``fills`` for the ``____`` of the notebook's own
    exercise cell, in order."""

    cell: str
    says: tuple[str, ...]
    fills: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exercise:
    label: str  # q1, q2, ...
    solution: str  # its file in workshop_lib/checks/solutions
    wrongs: tuple[Wrong, ...]


def wrong(cell: str, *says: str) -> Wrong:
    return Wrong(textwrap.dedent(cell).strip(), says)


def filled(fills: tuple[str, ...], *says: str) -> Wrong:
    return Wrong("", says, fills)


def blanks(cell: str) -> int:
    """How many ``____`` the learner fills (an import of the name itself is not one)."""
    return sum(line.count("____") for line in cell.splitlines() if not line.startswith("from "))


def fill(cell: str, *values: str) -> str:
    """The cell with its blanks replaced, in order, by ``values``."""
    assert len(values) == blanks(cell), cell
    pending = list(values)
    lines = []
    for line in cell.splitlines():
        while not line.startswith("from ") and "____" in line:
            line = line.replace("____", pending.pop(0), 1)
        lines.append(line)
    return "\n".join(lines)


EXERCISES: dict[str, list[Exercise]] = {
    "01-echo.ipynb": [
        Exercise(
            "q1",
            "01_shout.py",
            (
                wrong(
                    """
                    async def shout(websocket):
                        async for message in websocket:
                            await websocket.send(message)

                    q1.check(shout)
                    """,
                    "expected 'HELLO!', got 'hello'",
                ),
                wrong(
                    """
                    async def shout(websocket):
                        async for message in websocket:
                            await websocket.send(message.upper() + 1)

                    q1.check(shout)
                    """,
                    "your handler raised TypeError",
                    'can only concatenate str (not "int") to str',
                ),
                wrong(
                    """
                    async def shout(websocket):
                        message = await websocket.recv()
                        await websocket.send(message.upper() + "!")

                    q1.check(shout)
                    """,
                    "your handler returned after one message",
                    "loop with `async for message in websocket:`",
                ),
            ),
        ),
        Exercise(
            "q2",
            "01_round_trips.py",
            (
                wrong(
                    """
                    async def measure_round_trips(url, n):
                        times = []
                        async with connect(url) as websocket:
                            for i in range(n):
                                start = time.perf_counter()
                                await websocket.send(f"ping {i}")
                                times.append((time.perf_counter() - start) * 1000)
                            for i in range(n):
                                await websocket.recv()
                        return times

                    q2.check(measure_round_trips)
                    """,
                    "wait for each echo before the next send",
                ),
                wrong(
                    """
                    async def measure_round_trips(url, n):
                        times = []
                        async with connect(url) as websocket:
                            for i in range(n):
                                start = time.perf_counter()
                                await websocket.send(f"ping {i}")
                                await websocket.recv()
                                times.append(time.perf_counter() - start)
                        return times

                    q2.check(measure_round_trips)
                    """,
                    "these look like seconds",
                ),
            ),
        ),
    ],
    "02-bouncing-ball.ipynb": [
        Exercise(
            "q1",
            "02_count_frames.py",
            (
                wrong(
                    """
                    async def count_frames(url, seconds):
                        return 60

                    q1.check(count_frames)
                    """,
                    "the check's server sends 25 frames a second, you measured 60.0",
                ),
                wrong(
                    """
                    async def count_frames(url, seconds):
                        frames = 0
                        async with connect(url) as websocket:
                            start = time.perf_counter()
                            async for message in websocket:
                                frames += 1
                                if time.perf_counter() - start >= seconds:
                                    break
                        return frames

                    q1.check(count_frames)
                    """,
                    "frames a second, you measured",  # about 50: the frames of 2 s
                    "divide by the seconds you really listened",
                ),
            ),
        ),
        Exercise(
            "q2",
            "02_steer.py",
            (
                wrong(
                    """
                    async def steer_to_corner(url):
                        async with connect(url) as websocket:
                            await websocket.recv()
                            pause = {"type": "ball.control", "paused": True}
                            await websocket.send(json.dumps(pause))

                    q2.check(steer_to_corner)
                    """,
                    "from the nearest corner",
                ),
                wrong(
                    """
                    async def steer_to_corner(url):
                        async with connect(url) as websocket:
                            await websocket.recv()
                            kick = {"type": "ball.kick", "dx": 1, "dy": 1}
                            await websocket.send(json.dumps(kick))

                    q2.check(steer_to_corner)
                    """,
                    "still moving: pause it when it is there",
                ),
            ),
        ),
        Exercise(
            "q3",
            "02_ticker.py",
            (
                wrong(
                    """
                    async def ticker(clients, step, rate, seconds):
                        for n in range(1, int(rate * seconds) + 1):
                            step()
                            broadcast(clients, json.dumps({"type": "tick", "n": n}))
                            await asyncio.sleep(1 / rate)

                    q3.check(ticker)
                    """,
                    "the ticker drifts",
                ),
                wrong(
                    """
                    async def ticker(clients, step, rate, seconds):
                        start = time.monotonic()
                        for n in range(1, int(rate * seconds) + 1):
                            step()
                            broadcast(clients, json.dumps({"type": "tick", "n": n}))
                            time.sleep(max(0.0, start + n / rate - time.monotonic()))

                    q3.check(ticker)
                    """,
                    "blocks the server",
                    "every client stalls",
                    "await asyncio.sleep",
                ),
            ),
        ),
    ],
    "03-chat-room.ipynb": [
        Exercise(
            "q1",
            "03_bot.py",
            (
                wrong(
                    """
                    def reply(text, sender, users):
                        return "I heard you"

                    q1.check(reply)
                    """,
                    "should be 'hello, ada!', not 'I heard you'",
                ),
                wrong(
                    """
                    def reply(text, sender, users):
                        if text == "!hello":
                            return f"hello, {sender}!"
                        if text == "!users":
                            return ", ".join(users)

                    q1.check(reply)
                    """,
                    '!time should answer like "14:05:09", not None',
                ),
            ),
        ),
        Exercise(
            "q2",
            "03_count_messages.py",
            (
                wrong(
                    # What "recv() with a timeout" suggests: the sync client's recv(timeout=...)
                    """
                    async def count_messages(url, seconds):
                        counts = {}
                        async with connect(url) as websocket:
                            join = {"type": "chat.join", "name": "counter"}
                            await websocket.send(json.dumps(join))
                            start = time.perf_counter()
                            while time.perf_counter() - start < seconds:
                                try:
                                    event = json.loads(await websocket.recv(timeout=0.5))
                                except TimeoutError:
                                    continue
                                if event["type"] == "chat.message":
                                    counts[event["from"]] = counts.get(event["from"], 0) + 1
                        return counts

                    q2.check(count_messages)
                    """,
                    "your code raised TypeError",
                    "timeout",
                    "asyncio.wait_for",
                ),
                wrong(
                    """
                    async def count_messages(url, seconds):
                        counts = {}
                        async with connect(url) as websocket:
                            join = {"type": "chat.join", "name": "counter"}
                            await websocket.send(json.dumps(join))
                            start = time.perf_counter()
                            async for message in websocket:
                                event = json.loads(message)
                                if event["type"] == "chat.message":
                                    counts[event["from"]] = counts.get(event["from"], 0) + 1
                                if time.perf_counter() - start >= seconds:
                                    break
                        return counts

                    q2.check(count_messages)
                    """,
                    "was still waiting for a message: check the clock outside `async for`",
                ),
            ),
        ),
        Exercise(
            "q3",
            "03_chat_handler.py",
            (
                wrong(
                    """
                    members = set()

                    async def chat_handler(websocket):
                        name = await websocket.recv()
                        members.add(websocket)
                        broadcast(members, f"{name} joined")
                        try:
                            async for text in websocket:
                                for member in list(members):
                                    await member.send(f"{name}: {text}")
                        finally:
                            members.discard(websocket)
                            broadcast(members, f"{name} left")

                    q3.check(chat_handler, members)
                    """,
                    "one slow member holds up the room",
                ),
                wrong(
                    """
                    members = set()

                    async def chat_handler(websocket):
                        name = await websocket.recv()
                        members.add(websocket)
                        broadcast(members, f"{name} joined")
                        async for text in websocket:
                            broadcast(members, f"{name}: {text}")
                        members.discard(websocket)
                        broadcast(members, f"{name} left")

                    q3.check(chat_handler, members)
                    """,
                    "'sleepy left' never came",
                ),
            ),
        ),
    ],
    "04-auth-and-errors.ipynb": [
        Exercise(
            "q1",
            "04_login.py",
            (
                wrong(
                    """
                    async def echo_as_browser(url, origin, token, text):
                        async with connect(url, origin=origin) as websocket:
                            await websocket.send(json.dumps({"type": "auth", "token": token}))
                            await websocket.send(text)
                            return await websocket.recv()

                    q1.check(echo_as_browser)
                    """,
                    "read the auth.ok first, then send",
                ),
                wrong(
                    """
                    async def echo_as_browser(url, origin, token, text):
                        headers = {"Authorization": f"Bearer {token}"}
                        async with connect(url, additional_headers=headers) as websocket:
                            await websocket.send(text)
                            return await websocket.recv()

                    q1.check(echo_as_browser)
                    """,
                    "which a browser cannot do",
                ),
            ),
        ),
        Exercise(
            "q2",
            "04_reconnect.py",
            (
                wrong(
                    """
                    async def collect_ticks(url, count):
                        ticks = []
                        async with connect(url) as websocket:
                            async for message in websocket:
                                ticks.append(json.loads(message)["tick"])
                                if len(ticks) == count:
                                    break
                        return ticks

                    q2.check(collect_ticks)
                    """,
                    "reconnect after the drop",
                ),
                wrong(
                    """
                    from websockets.exceptions import ConnectionClosed

                    async def collect_ticks(url, count):
                        ticks = []
                        while len(ticks) < count:
                            try:
                                async with connect(url) as websocket:
                                    async for message in websocket:
                                        ticks.append(json.loads(message)["tick"])
                                        if len(ticks) == count:
                                            break
                            except (OSError, ConnectionClosed):
                                pass
                            if len(ticks) < count:
                                await asyncio.sleep(1)
                        return ticks

                    q2.check(collect_ticks)
                    """,
                    "did not grow",
                    "backoff_delays()",
                ),
            ),
        ),
    ],
    "05-realtime-api.ipynb": [
        Exercise(
            "q1",
            "05_ask.py",
            (
                wrong(
                    """
                    async def ask(url, text):
                        async with connect(url, proxy=None) as websocket:
                            await websocket.send(json.dumps(text_session()))
                            await websocket.send(json.dumps(user_message(text)))
                            await websocket.send(json.dumps({"type": "response.create"}))
                            async for message in websocket:
                                event = json.loads(message)
                                if event["type"] == "response.output_text.delta":
                                    answer = event["delta"]
                                elif event["type"] == "response.done":
                                    return answer

                    q1.check(ask)
                    """,
                    "you returned only the last delta, 'pieces.'",
                ),
                wrong(
                    """
                    async def ask(url, text):
                        deltas = []
                        async with connect(url, proxy=None) as websocket:
                            await websocket.send(json.dumps(text_session()))
                            await websocket.send(json.dumps(user_message(text)))
                            await websocket.send(json.dumps({"type": "response.create"}))
                            async for message in websocket:
                                event = json.loads(message)
                                if event["type"] == "response.output_text.delta":
                                    deltas.append(event["delta"])
                                elif event["type"] == "response.done":
                                    return deltas

                    q1.check(ask)
                    """,
                    "you returned a list",
                    "join the deltas into one string",
                ),
                wrong(
                    # The notebook's answer without its first line: the answer comes in audio.
                    """
                    async def ask(url, text):
                        answer = ""
                        async with connect(url, proxy=None) as websocket:
                            await websocket.send(json.dumps(user_message(text)))
                            await websocket.send(json.dumps({"type": "response.create"}))
                            async for message in websocket:
                                event = json.loads(message)
                                if event["type"] == "response.output_text.delta":
                                    answer += event["delta"]
                                elif event["type"] == "response.done":
                                    return answer

                    q1.check(ask)
                    """,
                    "the answer came in audio",
                    "text_session()",
                ),
            ),
        ),
        Exercise(
            "q2",
            "05_reverse.py",
            (
                wrong(
                    """
                    def reverse_responder(text):
                        yield " ".join(reversed(text.split()))

                    q2.check(reverse_responder)
                    """,
                    "the client got one delta",
                    "yield each word on its own",
                ),
                wrong(
                    """
                    def reverse_responder(text):
                        for word in text.split():
                            yield word + " "

                    q2.check(reverse_responder)
                    """,
                    "they should be ['learner', 'a', 'for', 'step', 'small', 'one']",
                ),
            ),
        ),
    ],
    "06-scaling-out.ipynb": [
        Exercise(
            "q1",
            "06_follow.py",
            (
                wrong(
                    # Rejoins without "since": the welcome's history repeats what it saw.
                    """
                    async def follow_room(urls, want):
                        got = []
                        last_id = None
                        for url in urls:
                            async with connect(url, proxy=None) as websocket:
                                join = {"type": "chat.join", "name": "reader"}
                                await websocket.send(json.dumps(join))
                                welcome = json.loads(await websocket.recv())
                                for message in welcome["history"] if last_id is not None else []:
                                    got.append((message["id"], message["text"]))
                                    last_id = message["id"]
                                async for raw in websocket:
                                    event = json.loads(raw)
                                    if event["type"] == "chat.message":
                                        got.append((event["id"], event["text"]))
                                        last_id = event["id"]
                                    if len(got) >= want:
                                        return got
                        return got

                    q1.check(follow_room)
                    """,
                    "came twice",
                    '"since"',
                ),
                wrong(
                    # Joins with "since" but never reads the welcome's history.
                    """
                    async def follow_room(urls, want):
                        got = []
                        last_id = None
                        for url in urls:
                            async with connect(url, proxy=None) as websocket:
                                join = {"type": "chat.join", "name": "reader"}
                                if last_id is not None:
                                    join["since"] = last_id
                                await websocket.send(json.dumps(join))
                                await websocket.recv()
                                async for raw in websocket:
                                    event = json.loads(raw)
                                    if event["type"] == "chat.message":
                                        got.append((event["id"], event["text"]))
                                        last_id = event["id"]
                                    if len(got) >= want:
                                        return got
                        return got

                    q1.check(follow_room)
                    """,
                    "4 to 6 were said while you moved",
                    "history",
                ),
            ),
        ),
        Exercise(
            "q2",
            "06_relay.py",
            (
                wrong(
                    # Keeps `last` up to date, but asks XREAD for what comes after `after`.
                    """
                    async def relay(redis, stream, after, deliver):
                        last = after
                        while True:
                            reply = await redis.xread({stream: after}, block=1000)
                            for _stream, entries in reply:
                                for entry_id, fields in entries:
                                    deliver(fields["text"])
                                    last = entry_id

                    q2.check(relay)
                    """,
                    "every XREAD asked for what comes after",
                    "the id you started from",
                    "{stream: last}",
                ),
                wrong(
                    """
                    async def relay(redis, stream, after, deliver):
                        while True:
                            reply = await redis.xread({stream: "$"}, block=1000)
                            for _stream, entries in reply:
                                for entry_id, fields in entries:
                                    deliver(fields["text"])

                    q2.check(relay)
                    """,
                    "e3, e4 and e5 were in the stream before you started",
                ),
            ),
        ),
    ],
    "07-function-calling.ipynb": [
        Exercise(
            "q1",
            "07_tool_loop.py",
            (
                filled(
                    ('call["call_id"]', "json.dumps(result)", "pass"),
                    "did not finish",
                    "starts no response by itself",
                ),
                filled(
                    (
                        'call["call_id"]',
                        "str(result)",
                        'await websocket.send(\'{"type": "response.create"}\')',
                    ),
                    "is not JSON",
                    "json.dumps(result)",
                ),
            ),
        ),
        Exercise(
            "q2",
            "07_two_calls.py",
            (
                filled(('done["response"]["output"][:1]',), "1 output for its 2 calls"),
                filled(
                    ('[c for c in done["response"]["output"] if c["name"] == "nothing"]',),
                    "without a function_call_output",
                ),
            ),
        ),
        Exercise(
            "q3",
            "07_failing_tool.py",
            (
                filled(("str(exc)",), 'send {"error": str(exc)}'),
                filled(("get_weather(**json.loads(call['arguments']))",), "so did your loop"),
            ),
        ),
    ],
    "08-voice.ipynb": [
        Exercise(
            "q1",
            "08_player.py",
            (
                filled(
                    ("samples_to_ms(len(frame))", "received_ms"),
                    "that is the audio you received",
                    "count the milliseconds the speaker has played",
                ),
                filled(
                    ("len(frame)", "played_ms"),
                    "the server refused your truncate",
                    "a 24 kHz sample is 1/24 ms",
                ),
            ),
        ),
        Exercise(
            "q2",
            "08_push_to_talk.py",
            (
                filled(
                    ("0", '"input_audio_buffer.commit"', '"response.create"'),
                    "buffer too small",
                    "commit only a press of at least 100 ms",
                ),
                filled(
                    ("100", '"response.create"', '"input_audio_buffer.commit"'),
                    "before committing the press",
                ),
            ),
        ),
        Exercise(
            "q3",
            "08_vad_settings.py",
            (
                filled(("500",), "3 turns", "must be longer than that pause"),
                filled(("2000",), "1 turn", "must be shorter than that pause"),
            ),
        ),
    ],
}

COUNT = sum(len(exercises) for exercises in EXERCISES.values())


def test_every_exercise_of_the_notebooks_is_tried_here() -> None:
    """All 20, and each with its solution and at least two wrong answers: an exercise added
    to a notebook must be added here too."""
    assert sorted(EXERCISES) == sorted(
        path.name for path in NOTEBOOKS.glob("0*.ipynb") if "q1.check(" in path.read_text()
    )
    for notebook, exercises in EXERCISES.items():
        shipped = [
            label
            for cell in code_cells(NOTEBOOKS / notebook)
            for label in ("q1", "q2", "q3")
            if f"{label}.check(" in cell
        ]
        assert [e.label for e in exercises] == shipped, notebook
        for exercise in exercises:
            assert (SOLUTIONS / exercise.solution).is_file()
            assert len(exercise.wrongs) >= 2, (notebook, exercise.label)
    assert COUNT == 20


@pytest.mark.parametrize(
    ("name", "label"),
    [
        (name, exercise.label)
        for name, exercises in EXERCISES.items()
        for exercise in exercises
        if any(w.fills for w in exercise.wrongs)
    ],
)
def test_the_shipped_cells_blanks_are_where_the_wrong_answers_fill_them(name, label) -> None:
    shipped = exercise_cell(NOTEBOOKS / name, label)
    exercise = next(e for e in EXERCISES[name] if e.label == label)
    assert blanks(shipped) >= 1
    assert all(len(w.fills) == blanks(shipped) for w in exercise.wrongs)


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """A copy of notebooks/ for the kernel to run in (a lesson may write files)."""
    copy = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return copy


@pytest.fixture
def kernel_env() -> dict[str, str | None]:
    """The learner alone: no room's server to join, so each lesson starts its own."""
    return dict.fromkeys(("WORKSHOP_SERVER", "WORKSHOP_TOKEN", "JUPYTERHUB_SERVICE_PREFIX"))


@pytest.fixture
def needs_redis(request: pytest.FixtureRequest) -> None:
    """06's checks start their own Redis: skip without redis-server (fail in CI)."""
    if "06-" in request.node.name:
        request.getfixturevalue("redis_url")


def exercise_cell(notebook: Path, label: str) -> str:
    return next(cell for cell in code_cells(notebook) if f"{label}.check(" in cell)


def verdict(ran: CellRun) -> tuple[bool | None, str]:
    """The check's result as the cell's Out[] shows it: True ("Correct") or False ("Not
    yet") and its message; None and what it showed instead, if it raised or showed no result."""
    word, _, message = (ran.result or "").partition(": ")
    if ran.error is not None or word not in {"Correct", "Not yet"}:
        return None, f"the cell showed no result but:\n{ran}"
    return word == "Correct", message


def attempts(notebook: Path) -> Iterator[tuple[str, str, str, tuple[str, ...] | None]]:
    """(what, label, cell, words): the shipped cell, the solution, then the wrong answers.
    ``words`` None means it must pass."""
    for exercise in EXERCISES[notebook.name]:
        q = exercise.label
        shipped = exercise_cell(notebook, q)
        yield "as shipped", q, shipped, ("replace every ____",)
        yield "the solution", q, (SOLUTIONS / exercise.solution).read_text(), None
        for n, wrong_answer in enumerate(exercise.wrongs, start=1):
            cell = fill(shipped, *wrong_answer.fills) if wrong_answer.fills else wrong_answer.cell
            yield f"wrong answer {n}", q, cell, wrong_answer.says


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_exercises_in_a_kernel(name: str, notebooks: Path, kernel_env, needs_redis) -> None:
    notebook = notebooks / name
    failures = []
    setup = setup_cells(notebook, before="from workshop_lib.checks")
    with Kernel(notebooks, kernel_env) as kernel:
        for cell in setup:
            ran = kernel.run(cell, timeout=120)
            assert ran.error is None, f"{name}'s set-up failed:\n{ran}"
        for what, label, cell, says in attempts(notebook):
            ran = kernel.run(cell, timeout=60)
            ok, message = verdict(ran)
            if ok is None:
                failures.append(f"{label} {what}: {message}")
            elif says is None and not ok:
                failures.append(f"{label} {what} did not pass: {message}")
            elif says is not None and (ok or not all(words in message for words in says)):
                failures.append(f"{label} {what}: wanted 'Not yet' with {says}, got {ran.result}")
        if re.search(r"^server = .*start_server\(", setup[0], re.MULTILINE):
            assert_ok(kernel.run("server.stop()"))  # the lesson's server stops cleanly after
    assert not failures, "\n".join(failures)
