"""Lesson 06 for real: `python -m workshop_lib serve --redis URL` in several processes, a real
redis-server, and the lesson's own clients. One room, one ball, faults."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers import process_alive, wait_for
from workshop_lib.chat.client import ChatClient
from workshop_lib.redis.local import LocalRedis
from workshop_lib.server.processes import ServerProcess

TIMEOUT = 10


def texts(client: ChatClient) -> list[tuple[int, str]]:
    return [(m["id"], m["text"]) for m in list(client.messages)]


@pytest.fixture
def redis_with_data() -> Iterator[LocalRedis]:
    """A Redis of this test's own that keeps its data over a kill and a start."""
    with LocalRedis(persist=True) as local:
        yield local


def test_without_redis_two_processes_are_two_rooms() -> None:
    with ServerProcess() as one, ServerProcess() as two:
        ada = ChatClient(one.ws("/chat"), "ada")
        bob = ChatClient(two.ws("/chat"), "bob")
        try:
            ada.send("can anyone hear me?")
            wait_for(lambda: texts(ada))  # it reached ada's own room...
            bob.send("and me?")
            wait_for(lambda: texts(bob))
            assert ada.users == ["ada"] and bob.users == ["bob"]  # ...and only that room
            assert [t for _, t in texts(bob)] == ["and me?"]
            assert [t for _, t in texts(ada)] == ["can anyone hear me?"]
        finally:
            ada.close(), bob.close()


def test_with_redis_every_member_sees_one_order_and_one_id_sequence(redis_url) -> None:
    with ServerProcess(redis=redis_url) as one, ServerProcess(redis=redis_url) as two:
        members = [ChatClient((one, two)[i % 2].ws("/chat"), f"m{i}") for i in range(4)]
        try:
            wait_for(lambda: all(len(m.users) >= 4 for m in members), TIMEOUT)
            for round_ in range(5):
                for i, member in enumerate(members):
                    member.send(f"{round_}-{i}")
            wait_for(lambda: all(len(texts(m)) >= 20 for m in members), TIMEOUT)
            first = texts(members[0])
            assert all(texts(m) == first for m in members[1:])  # one order, one id each
            ids = [i for i, _ in first]
            assert ids == sorted(ids) and len(set(ids)) == 20
            assert sorted(members[0].users) == ["m0", "m1", "m2", "m3"]  # the union
        finally:
            for member in members:
                member.close()


def test_a_killed_process_s_members_move_and_catch_up_and_leave_the_list(
    redis_with_data,
) -> None:
    url = redis_with_data.url
    with ServerProcess(redis=url) as one, ServerProcess(redis=url) as two:
        addresses = [one.ws("/chat"), two.ws("/chat")]
        ada = ChatClient(addresses, "ada", reconnect=True)  # on `one`, moves to `two`
        eve = ChatClient(one.ws("/chat"), "eve")  # on `one` only: dies with it
        bob = ChatClient(two.ws("/chat"), "bob")
        try:
            wait_for(lambda: len(bob.users) == 3, TIMEOUT)
            bob.send("before")
            wait_for(lambda: [t for _, t in texts(ada)] == ["before"], TIMEOUT)
            one.kill()  # a crash: no close frames, no goodbye to Redis
            bob.send("while ada was away")
            started = time.monotonic()
            wait_for(lambda: "eve" not in bob.users, TIMEOUT)  # the heartbeat ran out
            left_after = time.monotonic() - started
            wait_for(lambda: ada.reconnects == 1 and ada.connected, TIMEOUT)
            assert ada.url == addresses[1]
            wait_for(lambda: len(texts(ada)) == 2, TIMEOUT)
            bob.send("after")
            wait_for(lambda: len(texts(ada)) == 3, TIMEOUT)
            # Every message once, in bob's order, the one said while away included.
            assert texts(ada) == texts(bob)
            assert [t for _, t in texts(ada)] == ["before", "while ada was away", "after"]
            assert left_after < 6  # "within a few seconds"
            assert sorted(bob.users) == ["ada", "bob"]
        finally:
            ada.close(), eve.close(), bob.close()


def stats(process: ServerProcess) -> dict:
    with urllib.request.urlopen(f"{process.http_url}/api/stats", timeout=5) as reply:
        return json.load(reply)


def test_redis_going_away_is_said_and_mended_and_loses_nothing_accepted(
    redis_with_data,
) -> None:
    with ServerProcess(redis=redis_with_data.url) as one:
        ada = ChatClient(one.ws("/chat"), "ada")
        try:
            ada.send("kept")
            wait_for(lambda: len(texts(ada)) == 1, TIMEOUT)
            redis_with_data.stop()
            wait_for(lambda: stats(one)["chat"].get("redis") == "unreachable", TIMEOUT)
            health = one.health()
            assert health["status"] == "degraded"
            assert health["lessons"]["chat"] == {"redis": "unreachable"}
            ada.send("lost in the outage")
            wait_for(lambda: ada.errors, TIMEOUT)
            assert ada.errors[-1]["code"] == "unavailable"
            assert "nothing was sent" in ada.errors[-1]["message"]
            assert one.running and ada.connected  # the server stayed up, the member too
            redis_with_data.start()
            wait_for(lambda: stats(one)["chat"].get("redis") == "ok", TIMEOUT)
            wait_for(lambda: one.health()["status"] == "ok", TIMEOUT)
            ada.send("after")
            wait_for(lambda: len(texts(ada)) == 2, TIMEOUT)
            assert [t for _, t in texts(ada)] == ["kept", "after"]
            late = ChatClient(one.ws("/chat"), "late")  # the history survived the outage
            assert [m["text"] for m in late.history] == ["kept", "after"]
            late.close()
        finally:
            ada.close()


def test_one_ball_across_processes_steered_from_either(redis_url) -> None:
    from workshop_lib.ball.client import BallClient

    with ServerProcess(redis=redis_url) as one, ServerProcess(redis=redis_url) as two:
        here, there = BallClient(one.ws("/ball")), BallClient(two.ws("/ball"))
        try:
            wait_for(lambda: here.latest and there.latest, TIMEOUT)
            tickers = [stats(p)["ball"]["ticking_here"] for p in (one, two)]
            assert sorted(tickers) == [False, True]  # one ticker for both
            there.send_event({"type": "ball.control", "color": "#00aa00"})
            wait_for(lambda: here.latest["color"] == "#00aa00", TIMEOUT)
            wait_for(lambda: abs(here.latest["tick"] - there.latest["tick"]) <= 2, TIMEOUT)
        finally:
            here.close(), there.close()


def test_a_server_process_behind_a_hub_is_found_and_links_through_the_proxy(monkeypatch) -> None:
    # Under JupyterHub the child inherits the prefix and prints proxied page links; the
    # parent still finds its port, and gives a browser the proxied address of its pages.
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/learner/")
    with ServerProcess() as process:
        assert process.health()["pid"] == process.pid
        page = process.links.page("ball")
        assert page.startswith(f"/user/learner/proxy/{process.port}/") and page.endswith("#ball")
        assert process.links.ws("/ball") == f"ws://127.0.0.1:{process.port}/ball"
        assert "127.0.0.1" not in repr(process)  # a notebook would make a URL a link


def test_a_server_process_does_not_outlive_the_python_that_started_it() -> None:
    # A kernel killed outright (no atexit, no clean-up cell) takes its servers with it.
    import subprocess
    import sys

    script = (
        "import time\n"
        "from workshop_lib.server.processes import ServerProcess\n"
        "print(ServerProcess().start().pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout is not None
        server = int(kernel.stdout.readline())
        assert process_alive(server)
    finally:
        kernel.kill()
        kernel.wait()
    wait_for(lambda: not process_alive(server), TIMEOUT)


def test_stop_all_stops_the_processes_of_a_cell_that_was_run_twice() -> None:
    first_run = ServerProcess().start()  # `one = ServerProcess().start()`, run again:
    forgotten = first_run.pid
    del first_run  # the name now holds the second run's process
    second_run = ServerProcess().start()
    assert forgotten is not None and process_alive(forgotten) and second_run.running
    assert ServerProcess.stop_all() >= 2
    assert not process_alive(forgotten) and not second_run.running
    assert ServerProcess.stop_all() == 0


def test_a_running_server_process_is_not_started_twice() -> None:
    with ServerProcess() as process:
        with pytest.raises(RuntimeError, match="running already"):
            process.start()  # it would leave the first one running, owned by nobody
        assert process.health()["pid"] == process.pid


def test_two_processes_on_one_port_share_its_connections_and_one_room(redis_url) -> None:
    # SO_REUSEPORT: the kernel hands each new connection to one of the listening processes.
    import redis

    with (
        ServerProcess(redis=redis_url, args=["--reuse-port"]) as first,
        ServerProcess(port=first.port, redis=redis_url, args=["--reuse-port"]) as second,
    ):
        assert second.port == first.port and second.pid != first.pid
        names = [f"port-sharer {i}" for i in range(16)]
        members = [ChatClient(first.ws("/chat"), name) for name in names]
        try:
            wait_for(lambda: all(len(m.users) >= 16 for m in members), TIMEOUT)
            # Presence says which process each member joined on: both, on one port
            # (all 16 on one would happen about once in 30,000 runs).
            here = redis.Redis.from_url(redis_url).hmget("workshop:chat:here", names)
            processes = {value.split(b" ", 1)[0] for value in here}
            assert len(processes) == 2, here
            members[0].send("one room on one port")
            wait_for(lambda: all(m.messages for m in members), TIMEOUT)
        finally:
            for member in members:
                member.close()


def test_redis_restarted_under_load_loses_nothing_a_member_was_told_was_accepted(
    redis_with_data,
) -> None:
    # 20 members on two processes post four times a second each while Redis is killed and
    # started again. Every post is either delivered (it has an id) or refused with
    # `unavailable`; every delivered one reaches every member, in one order; nobody is cut off.
    import asyncio
    import concurrent.futures
    from dataclasses import dataclass, field

    from websockets.asyncio.client import connect

    @dataclass
    class Member:
        name: str
        got: list[tuple[int, str]] = field(default_factory=list)  # (id, text) as delivered
        sent: int = 0
        refused: int = 0
        closed: int | None = None  # a close code, if the server cut it off

        def answered(self) -> bool:  # each of its posts delivered or refused
            mine = sum(text.startswith(f"{self.name}#") for _, text in self.got)
            return mine + self.refused >= self.sent

    count, period = 20, 0.25
    people = [Member(f"m{i}") for i in range(count)]

    async def take_part(url: str, me: Member, ready: asyncio.Barrier, posting: asyncio.Event):
        async with connect(url, proxy=None) as ws:
            await ws.send(json.dumps({"type": "chat.join", "name": me.name}))
            while json.loads(await ws.recv())["type"] != "chat.welcome":
                pass
            await ready.wait()  # every member is in before the first post

            async def post() -> None:
                while posting.is_set():
                    me.sent += 1
                    await ws.send(json.dumps({"type": "chat.send", "text": f"{me.name}#{me.sent}"}))
                    await asyncio.sleep(period)

            poster = asyncio.create_task(post())
            try:
                async for raw in ws:
                    event = json.loads(raw)
                    if event["type"] == "chat.message":
                        me.got.append((event["id"], event["text"]))
                    elif event["type"] == "error":
                        assert event["code"] == "unavailable", event
                        me.refused += 1
            finally:
                poster.cancel()
                me.closed = ws.close_code

    async def main(urls: list[str]) -> None:
        ready, posting = asyncio.Barrier(count + 1), asyncio.Event()
        posting.set()
        tasks = [
            asyncio.create_task(take_part(urls[i % 2], me, ready, posting))
            for i, me in enumerate(people)
        ]
        async with asyncio.timeout(20):
            await ready.wait()
        await asyncio.sleep(1.5)  # the load runs: then Redis dies under it
        await asyncio.to_thread(redis_with_data.stop)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(redis_with_data.start)
        await asyncio.sleep(2.0)  # and it carries on after the restart
        posting.clear()
        async with asyncio.timeout(30):
            while not all(me.answered() for me in people):  # the last posts' answers
                await asyncio.sleep(0.05)
            # Accepted: what its own sender got back. Every member must get all of it.
            accepted = {t for me in people for _, t in me.got if t.startswith(f"{me.name}#")}
            while not all(len(me.got) >= len(accepted) for me in people):
                await asyncio.sleep(0.05)
        assert not any(task.done() for task in tasks), [me.closed for me in people]
        for task in tasks:
            task.cancel()

    with (
        ServerProcess(redis=redis_with_data.url) as one,
        ServerProcess(redis=redis_with_data.url) as two,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        pool.submit(asyncio.run, main([one.ws("/chat"), two.ws("/chat")])).result(90)
        assert one.running and two.running  # the servers stayed up
    first = people[0].got
    for me in people[1:]:
        assert me.got == first, me.name  # every accepted post to every member, in one order
    ids = [i for i, _ in first]
    assert ids == sorted(set(ids))  # strictly increasing: none twice
    for me in people:
        mine = sum(t.startswith(f"{me.name}#") for _, t in first)
        assert mine <= me.sent and mine + me.refused >= me.sent, me
    assert sum(me.refused for me in people) > 0, "Redis was down: some posts were refused"
    assert len(first) > count * 4, "posts before and after the outage were delivered"
