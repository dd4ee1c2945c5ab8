"""The chat room in Redis (chat/redis_room.py), with a real redis-server: one order and one
id sequence for every process, catch-up with ``since``, presence across processes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.exceptions

from tests.helpers import process_alive, spy_on_writes, stall_loop, wait_for
from workshop_lib.chat.redis_room import RedisRoom
from workshop_lib.redis.local import LocalRedis


def message(sender: str, text: str) -> dict:
    return {"type": "chat.message", "from": sender, "text": text, "ts": time.time()}


async def rooms(url: str, n: int, **options) -> list[RedisRoom]:
    prefix = f"test:{uuid.uuid4().hex[:8]}"  # each test a room of its own
    made = [RedisRoom(url, prefix=prefix, process=f"p{i}", **options) for i in range(n)]
    for room in made:
        await room.connect()
    return made


async def read(room: RedisRoom, after: int, count: int) -> list[dict]:
    got = []
    async with asyncio.timeout(10):
        async for event in room.follow(after):
            got.append(event)
            if len(got) == count:
                return got
    return got


def test_every_process_reads_one_order_and_one_id_sequence(redis_url) -> None:
    async def main() -> tuple[list[list[dict]], list[dict]]:
        a, b, c = await rooms(redis_url, 3)
        readers = [asyncio.create_task(read(room, 0, 60)) for room in (a, b, c)]
        # Three processes post at once, interleaved on the loop.
        posted = await asyncio.gather(
            *(
                room.post(message(f"u{i % 3}", f"m{i}"))
                for i, room in zip(range(60), [a, b, c] * 20, strict=True)
            )
        )
        seen = await asyncio.gather(*readers)
        for room in (a, b, c):
            await room.close()
        return seen, posted

    seen, posted = asyncio.run(main())
    first = [(e["id"], e["text"]) for e in seen[0]]
    assert [e["id"] for e in seen[0]] == list(range(1, 61))  # one sequence, no gaps
    assert all([(e["id"], e["text"]) for e in other] == first for other in seen[1:])
    assert sorted(e["id"] for e in posted) == list(range(1, 61))  # each post told its id


def test_since_gives_exactly_what_came_after(redis_url) -> None:
    async def main() -> tuple[list[dict], list[dict], list[dict]]:
        a, b = await rooms(redis_url, 2, history=5)
        for i in range(12):
            await (a, b)[i % 2].post(message("ada", f"m{i}"))
        after_7 = await b.since(7)
        latest = await b.since(None)
        nothing = await a.since(12)
        await a.close(), await b.close()
        return after_7, latest, nothing

    after_7, latest, nothing = asyncio.run(main())
    assert [e["id"] for e in after_7] == [8, 9, 10, 11, 12]
    assert [e["text"] for e in after_7] == ["m7", "m8", "m9", "m10", "m11"]
    assert [e["id"] for e in latest] == [8, 9, 10, 11, 12]  # the last `history` only
    assert nothing == []


def test_a_stream_read_comes_back_as_one_batch_in_order(redis_url) -> None:
    async def main() -> tuple[list[int], list[list[int]]]:
        (room,) = await rooms(redis_url, 1)
        posted = [(await room.post(message("ada", f"m{i}")))["id"] for i in range(7)]
        batches: list[list[int]] = []
        async with asyncio.timeout(10):
            async for events in room.follow_batches(after=posted[1], count=4):
                batches.append([e["id"] for e in events])
                if sum(map(len, batches)) == 5:
                    break
        await room.close()
        return posted, batches

    posted, batches = asyncio.run(main())
    assert batches == [posted[2:6], posted[6:]]  # after `after`, at most `count` a read


def test_names_are_unique_across_processes_and_presence_is_the_union(redis_url) -> None:
    async def main() -> tuple[list[str], list[str], list[str]]:
        a, b = await rooms(redis_url, 2)
        names = [(await (a, b)[i % 2].join("x"))[0] for i in range(6)]
        names.append((await b.join("grace"))[0])
        users = await a.users()
        assert await b.leave("x 2")  # b's own member
        assert not await b.leave("x")  # a's: b cannot take it out
        after = await b.users()
        await a.close(), await b.close()
        return names, users, after

    names, users, after = asyncio.run(main())
    assert names == ["x", "x 2", "x 3", "x 4", "x 5", "x 6", "grace"]
    assert users == names  # in the order they joined
    assert after == ["x", "x 3", "x 4", "x 5", "x 6", "grace"]


def test_a_flood_of_joins_on_one_process_waits_for_redis_instead_of_failing(redis_url) -> None:
    # 150 members arriving at once put more commands in flight than redis-py's default pool
    # allows (100): each used to fail with "Too many connections", told "unavailable".
    async def main() -> tuple[list[str], list[dict], list[str]]:
        (room,) = await rooms(redis_url, 1)
        joined = await asyncio.gather(*(room.join(f"m{i}") for i in range(150)))
        posted = await asyncio.gather(*(room.post(message(name, "hi")) for name, _ in joined))
        users = await room.users()
        await room.close()
        return [name for name, _ in joined], posted, users

    names, posted, users = asyncio.run(main())
    assert sorted(names) == sorted(f"m{i}" for i in range(150)) == sorted(users)
    assert sorted(p["id"] for p in posted) == list(range(1, 151))  # one id each, no gap


def test_a_member_with_its_secret_takes_its_name_back_from_a_process_not_yet_found_dead(
    redis_url,
) -> None:
    async def main() -> tuple[str, str, str]:
        a, b = await rooms(redis_url, 2)
        name, secret = await a.join("ada")  # then a dies; its heartbeat is still fresh
        stranger, _ = await b.join("ada")  # someone else asking for "ada"
        back, _ = await b.join("ada", secret)  # ada herself, on b
        await a.close(), await b.close()
        return name, stranger, back

    assert asyncio.run(main()) == ("ada", "ada 2", "ada")


def test_a_dead_process_s_members_leave_within_its_lifetime(redis_url) -> None:
    async def main() -> tuple[list[str], float, list[str]]:
        a, b = await rooms(redis_url, 2, alive_for=0.5)
        await a.join("ada")
        await b.join("bob")
        await b.join("eve")
        # b dies: no more heartbeats, no goodbye. a's heartbeats find out.
        started = time.monotonic()
        gone: list[str] = []
        async with asyncio.timeout(5):
            while not gone:
                gone = await a.heartbeat()
                await asyncio.sleep(0.1)  # a's heartbeat period, as the lesson runs it
        took = time.monotonic() - started
        users = await a.users()
        await a.close(), await b.close()
        return gone, took, users

    gone, took, users = asyncio.run(main())
    assert sorted(gone) == ["bob", "eve"] and users == ["ada"]
    assert took < 2


def test_redis_going_away_raises_and_a_restart_is_a_new_room_instance() -> None:
    with LocalRedis() as local:

        async def main() -> tuple[str, str, int]:
            (room,) = await rooms(local.url, 1)
            await room.post(message("ada", "before"))
            before = room.instance
            local.stop()
            with pytest.raises(redis.exceptions.ConnectionError):
                await room.post(message("ada", "lost"))
            local.start()
            await room.connect()  # the lesson does this when Redis answers again
            posted = await room.post(message("ada", "after"))
            await room.close()
            return before, room.instance, posted["id"]

        before, after, first_id = asyncio.run(main())
    # A scratch Redis lost its data: ids start again, under a new instance clients can tell.
    assert before != after and first_id == 1


def test_a_lessons_tasks_end_even_when_redis_py_swallowed_a_cancel(redis_url) -> None:
    # Readers whose every XREAD returns at once: a cancel lands mid-command, where redis-py
    # (through Python 3.11's wait_for) drops it and the loop runs on, often for seconds; a
    # lesson's context (its TaskOwner) must still end them, and soon. Ten times, since a run
    # may be lucky.
    import time

    from workshop_lib.lesson import LessonContext
    from workshop_lib.redis.client import open_client

    async def main() -> tuple[list[bool], float]:
        client = open_client(redis_url)
        stream = f"test:{uuid.uuid4().hex[:8]}"
        await client.xadd(stream, {"n": 1})

        async def spin() -> None:
            while True:
                await client.xread({stream: "0"}, block=1000)

        context = LessonContext("redis-readers")
        tasks = [context.spawn(spin(), name="spin") for _ in range(3)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await context.close()
        took = time.monotonic() - started
        ended = [task.done() for task in tasks]
        await client.aclose()
        return ended, took

    for _ in range(10):
        ended, took = asyncio.run(main())
        assert ended == [True] * 3, "a task still runs after context.close()"
        assert took < 2.0, f"context.close() took {took:.1f} s to end three readers"


def test_a_process_that_stalls_past_its_expiry_keeps_its_members(redis_url) -> None:
    # Its loop blocked for twice its alive time (an overloaded process): the alive key is
    # renewed from a thread of its own, so another process does not reap its members.
    from workshop_lib import start_server
    from workshop_lib.chat.client import ChatClient
    from workshop_lib.chat.server import ChatLesson

    prefix = f"test:{uuid.uuid4().hex[:8]}"

    async def stall() -> None:
        time.sleep(2.0)  # blocks the server's loop on purpose: no task of its runs

    async def reap_while_stalled(other: RedisRoom) -> list[str]:
        await other.connect()
        gone = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            gone += await other.heartbeat()
            await asyncio.sleep(0.1)
        await other.close()
        return gone

    lesson = ChatLesson(redis=redis_url, redis_prefix=prefix, alive_for=1.0)
    server = start_server(port=0, name=f"stall-{prefix}", lessons=[lesson])
    with server, ChatClient(server.links.ws("/chat"), "ada") as ada:
        deadline = time.monotonic() + 10
        while ada.users != ["ada"] and time.monotonic() < deadline:
            time.sleep(0.02)
        stalled = server.submit(stall())
        other = RedisRoom(redis_url, prefix=prefix, process="other", alive_for=1.0)
        gone = asyncio.run(reap_while_stalled(other))
        stalled.result(5)
    assert gone == [], "a stalled but living process's member was taken for gone"


def test_members_taken_for_gone_are_put_back_and_announced(redis_url) -> None:
    # As if another process had reaped them: out of the presence list. Within a heartbeat
    # the member's own process claims it back and announces it.
    import redis as sync_redis

    from workshop_lib import start_server
    from workshop_lib.chat.client import ChatClient
    from workshop_lib.chat.server import ChatLesson

    prefix = f"test:{uuid.uuid4().hex[:8]}"
    lesson = ChatLesson(redis=redis_url, redis_prefix=prefix, alive_for=1.0)
    server = start_server(port=0, name=f"reclaim-{prefix}", lessons=[lesson])
    with server, ChatClient(server.links.ws("/chat"), "ada") as ada:
        deadline = time.monotonic() + 10
        while ada.users != ["ada"] and time.monotonic() < deadline:
            time.sleep(0.02)

        def joins() -> int:
            return sum(
                e.get("type") == "chat.joined" and e.get("name") == "ada" for e in list(ada.events)
            )

        deadline = time.monotonic() + 10
        while joins() < 1:  # her own join, announced to all
            assert time.monotonic() < deadline, ada.events
            time.sleep(0.02)
        sync_redis.Redis.from_url(redis_url).hdel(f"{prefix}:here", "ada")
        while joins() < 2:  # and again, once her process put her back
            assert time.monotonic() < deadline, ada.events
            time.sleep(0.02)
        back = sync_redis.Redis.from_url(redis_url).hget(f"{prefix}:here", "ada")
    assert back is not None


def test_a_process_that_fell_behind_catches_up_in_one_write_per_member(redis_url) -> None:
    # Its loop blocked while another process posts 30 messages: when it runs again, its one
    # stream reader gets them in one or two reads, and each member gets each read in one
    # write (one system call), not 30; in order, each once.
    from workshop_lib import start_server
    from workshop_lib.chat.client import ChatClient
    from workshop_lib.chat.server import ChatLesson

    prefix = f"test:{uuid.uuid4().hex[:8]}"
    lesson = ChatLesson(redis=redis_url, redis_prefix=prefix)
    server = start_server(port=0, name=f"behind-{prefix}", lessons=[lesson])

    async def post_while_stalled() -> list[int]:
        (other,) = [RedisRoom(redis_url, prefix=prefix, process="other")]
        await other.connect()
        ids = [(await other.post(message("bob", f"m{i}")))["id"] for i in range(30)]
        await other.close()
        return ids

    with server, ChatClient(server.links.ws("/chat"), "ada") as ada:
        deadline = time.monotonic() + 10
        while ada.users != ["ada"] and time.monotonic() < deadline:
            time.sleep(0.02)
        writes = spy_on_writes(server, "ada")
        stalled = stall_loop(server, 1.0)  # its reader reads nothing meanwhile
        ids = asyncio.run(post_while_stalled())
        stalled.result(5)
        deadline = time.monotonic() + 10
        while len(ada.messages) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        got = [(m["id"], m["text"]) for m in list(ada.messages)]
    assert got == [(i, f"m{n}") for n, i in enumerate(ids)]
    carrying = [w for w in writes if b"chat.message" in w]
    assert sum(w.count(b'"chat.message"') for w in carrying) == 30
    # The reader was waiting when the stall began: the first post wakes it (one write),
    # the other 29 wait for the next read (one more); 30 writes before this change.
    assert len(carrying) <= 3, [w.count(b'"chat.message"') for w in carrying]


class ReplyCutter:
    """A TCP relay to Redis that, once armed, passes the next call of a command on and then
    cuts the connection in place of Redis's answer: the command ran, its answer was lost.
    redis-py then sends it again on a new connection (``workshop_lib.redis.client.open_client``)."""

    def __init__(self, redis_url: str) -> None:
        self.upstream = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        self.armed: tuple[bytes, ...] = ()
        self.cuts = 0

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    def arm(self, *commands: str) -> None:
        # In RESP a command's name travels as its own bulk string: "\r\nHDEL\r\n".
        self.armed = tuple(f"\r\n{command}\r\n".encode() for command in commands)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        ran = asyncio.Event()  # an armed command went up this connection

        async def up() -> None:
            while data := await reader.read(65536):
                if any(command in data for command in self.armed):
                    self.armed = ()
                    ran.set()
                up_w.write(data)
                await up_w.drain()

        async def down() -> None:
            while data := await up_r.read(65536):
                if ran.is_set():  # the answer to the armed command: lose it
                    self.cuts += 1
                    writer.transport.abort()
                    up_w.transport.abort()
                    return
                writer.write(data)
                await writer.drain()

        await asyncio.gather(up(), down(), return_exceptions=True)
        writer.close()
        up_w.close()


# A command whose answer is lost is sent again: each of the room's writes must come out as
# if it had run once, or a message is posted twice, a name stays held by nobody, a leave
# goes unannounced.


def test_a_post_whose_answer_was_lost_is_retried_without_posting_twice(redis_url) -> None:
    async def main() -> tuple[int, list[dict], int]:
        async with (cutter := ReplyCutter(redis_url)) as url:
            (room,) = await rooms(url, 1)
            await room.post(message("ada", "first"))  # loads the script: then EVALSHA
            cutter.arm("EVALSHA")
            posted = await room.post(message("ada", "second"))
            log = await room.since(0)
            await room.close()
        return posted["id"], log, cutter.cuts

    posted_id, log, cuts = asyncio.run(main())
    assert cuts == 1  # the answer really was lost once, and the post was sent again
    assert [(e["id"], e["text"]) for e in log] == [(1, "first"), (2, "second")]
    assert posted_id == 2  # the retry answered the id the first run gave


def test_a_join_whose_answer_was_lost_keeps_its_name(redis_url) -> None:
    async def main() -> tuple[str, list[str], int]:
        async with (cutter := ReplyCutter(redis_url)) as url:
            (room,) = await rooms(url, 1)
            await room.join("grace")  # loads the claim script
            cutter.arm("EVALSHA")
            name, _secret = await room.join("ada")
            users = await room.users()
            await room.close()
        return name, users, cutter.cuts

    name, users, cuts = asyncio.run(main())
    assert cuts == 1
    assert name == "ada"  # not "ada 2", with "ada" held by nobody
    assert users == ["grace", "ada"]


def test_a_leave_whose_answer_was_lost_is_still_a_leave(redis_url) -> None:
    async def main() -> tuple[bool, list[str], int]:
        async with (cutter := ReplyCutter(redis_url)) as url:
            (room,) = await rooms(url, 1)
            for name in ("grace", "ada"):
                await room.join(name)
            await room.leave("grace")  # loads the removal script
            cutter.arm("EVALSHA")
            left = await room.leave("ada")
            users = await room.users()
            await room.close()
        return left, users, cutter.cuts

    left, users, cuts = asyncio.run(main())
    assert cuts == 1
    assert left  # so its leave is announced
    assert users == []


def test_a_dead_process_s_member_back_on_another_process_is_not_reaped(redis_url) -> None:
    # The reaper read the presence list while ada was still the dead process's; by the time
    # it removes her, she holds her name again from a live process: she must stay.
    async def main() -> tuple[list[str], list[str]]:
        dead, back, reaper = await rooms(redis_url, 3, alive_for=0.3)
        _name, secret = await dead.join("ada")
        await dead.forget_process()  # dies: its alive key is gone
        here = dict(await reaper.redis.hgetall(reaper._key("here")))
        await back.join("ada", secret)  # ada comes back, on another process
        real_hgetall = reaper.redis.hgetall
        reaper.redis.hgetall = lambda key: asyncio.sleep(0, here)  # what it had read before
        gone = await reaper.heartbeat()
        reaper.redis.hgetall = real_hgetall
        users = await back.users()
        for room in (dead, back, reaper):
            await room.close()
        return gone, users

    gone, users = asyncio.run(main())
    assert gone == []
    assert users == ["ada"]


@pytest.mark.parametrize("ending", ["exits", "is killed"])
def test_a_local_redis_does_not_outlive_the_python_that_started_it(redis_url, ending) -> None:
    # A kernel restarted (a normal exit) or killed outright takes its redis-server with it.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from workshop_lib.redis.local import LocalRedis\n"
        "print(LocalRedis().start().process.pid, flush=True)\n"
        "sys.stdin.readline()\n"  # until the test ends it
    )
    kernel = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert kernel.stdin is not None and kernel.stdout is not None
    try:
        server = int(kernel.stdout.readline())
        assert process_alive(server)
        if ending == "exits":
            kernel.stdin.close()  # the script's last line returns: a normal exit
            kernel.wait(10)
        else:
            kernel.kill()
            kernel.wait()
    finally:
        kernel.kill()
    wait_for(lambda: not process_alive(server), 10)
