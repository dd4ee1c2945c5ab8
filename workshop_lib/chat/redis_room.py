"""One chat room shared by many server processes, through Redis.

Every room event (a message, a join, a leave) is appended to one Redis Stream by a small
Lua script that also takes its id from one counter, atomically: so there is one order and
one id sequence, whichever process a member is on. Each process follows the stream with
one reader (``follow()``) and delivers what it reads to its own members; no process
delivers its own members' messages directly, or they would see them out of order::

    room = RedisRoom("redis://127.0.0.1:6379/0")
    await room.connect()
    name = await room.join("ada")                    # unique across processes
    await room.post({"type": "chat.message", "from": name, "text": "hi", "ts": ...})
    async for event in room.follow(after=0): ...     # every event, in order, with its id
    async for events in room.follow_batches(after=0): ...   # the same, a list per read
    await room.since(41)                             # what came after id 41: catch-up

Presence is a hash of who is here, each name with its process; each process proves it is
alive with a key that expires unless renewed (``heartbeat()``), and removes (and announces
the leave of) the members of a process whose key expired. Redis pub/sub would deliver at
most once, and to nobody who was away; a stream keeps the recent past, so a member that
comes back asks for what it missed (``since``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis

from ..redis.client import open_client
from .lookalike import skeleton
from .model import HISTORY, clean_name

__all__ = ["RedisRoom", "RoomLost"]


class RoomLost(Exception):
    """Redis lost the room's data (a FLUSHALL, a restart empty): the post was not appended.

    The room goes on as a new instance (:attr:`RedisRoom.instance_changed`), from id 1.
    """


# KEYS: stream, counter, this post's receipt, the room's instance. ARGV: event JSON, max
# length, seconds the receipt is kept, the instance the poster follows. Returns the event's
# id, or -1 if the room is no longer that instance (Redis lost its data: the stream the
# poster's process follows is gone, so the event would reach nobody there). The receipt
# makes a post idempotent: when a connection drops after Redis ran the script but before
# its answer came back, redis-py sends the same call again (retry_on_error), and that
# second run must not append the event twice; it finds the receipt and answers the id the
# first run gave.
_APPEND = """
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if redis.call('GET', KEYS[4]) ~= ARGV[4] then return -1 end
local id = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id .. '-1', 'event', ARGV[1])
redis.call('SET', KEYS[3], id, 'EX', ARGV[3])
return id
"""

# Long enough for every retry of one call (two, 0.2 s apart at most, see redis/client.py), short
# enough that 200 posts a second keep only a few thousand receipts.
_RECEIPT_SECONDS = 30


# KEYS: the presence hash, the looks hash (skeleton -> name). ARGV: name, value ("process
# seq secret"), alive-key prefix, the claimer's secret (or ""), the name's skeleton. Claims
# the name if it is free, held by a process that is no longer alive, or held under the same
# secret (the same member, back on another process before its old one's death was
# noticed), and if no other name that looks the same (lookalike.py) is held so: 1 if
# claimed, else 0. A holder equal to the value is this very claim, run again by redis-py
# after its answer was lost (`seq` is new for each claim): still 1, or the name would stay
# held by nobody and the member be "ada 2".
_CLAIM = """
local function held(holder)
  if not holder then return false end
  local process, seq, secret = string.match(holder, '^(%S+) (%S+) (%S+)$')
  local same = ARGV[4] ~= '' and secret == ARGV[4]
  return not same and redis.call('EXISTS', ARGV[3] .. process) == 1
end
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder == ARGV[2] then return 1 end
if held(holder) then return 0 end
local other = redis.call('HGET', KEYS[2], ARGV[5])
if other and other ~= ARGV[1] and held(redis.call('HGET', KEYS[1], other)) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
return 1
"""

# KEYS: the presence hash, this removal's receipt, the looks hash. ARGV: name, process,
# receipt seconds, the name's skeleton. Takes the name out if that process holds it (1),
# else 0: never a member who has since come back on another process. Checked and removed at
# once, and a run again after a lost answer gives the first run's answer, so that exactly
# one caller announces the leave.
_REMOVE = """
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
local holder = redis.call('HGET', KEYS[1], ARGV[1])
local removed = 0
if holder and string.match(holder, '^(%S+) ') == ARGV[2] then
  removed = redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HGET', KEYS[3], ARGV[4]) == ARGV[1] then
    redis.call('HDEL', KEYS[3], ARGV[4])
  end
end
redis.call('SET', KEYS[2], removed, 'EX', ARGV[3])
return removed
"""


def _event(entry_id: bytes | str, fields: dict[Any, Any]) -> dict[str, Any]:
    """A stream entry back as the room event it holds, its id from the entry's id."""
    raw = fields.get(b"event") or fields.get("event")
    event = json.loads(raw)
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    event["id"] = int(entry.split("-", 1)[0])
    return event


class RedisRoom:
    """The room's shared state: its event log, its id counter, who is here, and where.

    ``process``: this server process's name in the presence hash (random by default);
    ``alive_for``: seconds a process counts as alive after its last heartbeat.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "workshop:chat",
        history: int = HISTORY,
        max_length: int = 10_000,
        process: str | None = None,
        alive_for: float = 3.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.history_size = history  # messages a welcome shows when the member asks for no `since`
        self.max_length = max_length  # events the stream keeps (about: MAXLEN ~)
        self.process = process or secrets.token_hex(4)
        self.alive_for = alive_for
        self.redis: aioredis.Redis | None = None
        self.instance = ""
        self.instance_changed = False  # set when Redis came back without the room's data
        self._append: Any = None
        self._claim: Any = None
        self._remove: Any = None

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def connect(self) -> None:
        """Open the client; learn (or set) the room instance every process shares."""
        if self.redis is None:
            self.redis = open_client(
                self.url,
                socket_timeout=None,  # follow() blocks in XREAD on purpose
                health_check_interval=5,
            )
            self._append = self.redis.register_script(_APPEND)
            self._claim = self.redis.register_script(_CLAIM)
            self._remove = self.redis.register_script(_REMOVE)
        await self._learn_instance()

    async def _learn_instance(self) -> None:
        # A Redis that lost its data (restarted without saving) starts ids at 1 again: the
        # instance changes with it, so clients never mix up the old ids with the new.
        redis = self._client()
        await redis.set(self._key("instance"), secrets.token_hex(8), nx=True)
        instance = (await redis.get(self._key("instance"))).decode()
        if self.instance and instance != self.instance:
            self.instance_changed = True
        self.instance = instance

    def _client(self) -> aioredis.Redis:
        if self.redis is None:
            raise RuntimeError("call connect() first")
        return self.redis

    async def close(self) -> None:
        """Close the client (this process's members stay until its heartbeat expires)."""
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    # -- the log -------------------------------------------------------------------------

    async def post(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append ``event`` to the room's log; returns it with its id."""
        body = json.dumps({k: v for k, v in event.items() if k != "id"}, ensure_ascii=False)
        receipt = self._key(f"posted:{secrets.token_hex(8)}")  # one per call, not per try
        new_id = await self._append(
            keys=[self._key("log"), self._key("ids"), receipt, self._key("instance")],
            args=[body, self.max_length, _RECEIPT_SECONDS, self.instance],
        )
        if int(new_id) < 0:
            await self._learn_instance()  # the new room, for the follower to start on
            raise RoomLost("Redis lost the room's data: a new room begins")
        return {**event, "id": int(new_id)}

    async def since(self, last_id: int | None) -> list[dict[str, Any]]:
        """The messages after ``last_id`` (or the last ``history`` ones), oldest first."""
        redis = self._client()
        if last_id is None:
            entries = await redis.xrevrange(self._key("log"), count=self.history_size * 4)
            messages = [
                e
                for e in (_event(i, f) for i, f in reversed(entries))
                if e["type"] == "chat.message"
            ]
            return messages[-self.history_size :]
        entries = await redis.xrange(self._key("log"), min=f"({max(0, last_id)}-1", max="+")
        return [e for e in (_event(i, f) for i, f in entries) if e["type"] == "chat.message"]

    async def history(self, last_id: int | None) -> tuple[list[dict[str, Any]], int]:
        """A welcome's history (as :meth:`since`) and the id it reaches: the newest event
        id at the moment it was read, so that live delivery can start right after it."""
        upto = await self.last_id()
        messages = await self.since(last_id)
        # Anything appended between the two reads is in `messages` and newer than `upto`:
        # count it as seen, so it is not delivered a second time.
        upto = max([upto, *(m["id"] for m in messages)])
        return [m for m in messages if m["id"] <= upto], upto

    async def last_id(self) -> int:
        """The id of the newest event (0 for none): where a new reader starts."""
        value = await self._client().get(self._key("ids"))
        return int(value or 0)

    async def follow(self, after: int, block_ms: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every event after id ``after``, in order, as it is appended (forever)."""
        async for events in self.follow_batches(after, block_ms):
            for event in events:
                yield event

    async def follow_batches(
        self, after: int, block_ms: int = 1000, count: int = 500
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """:meth:`follow`, one list per stream read: every event appended since the last
        read (at most ``count``), oldest first. A process delivers each list in one write
        per member, so the further behind it is, the less each event costs it.

        Ends when Redis lost the room's data (checked after each read, so within
        ``block_ms``): :attr:`instance_changed` is then set, and the new room's stream
        starts at id 1, which a reader waiting after ``after`` would never see."""
        redis = self._client()
        last = f"{after}-1"
        while not self.instance_changed:
            answer = await redis.xread({self._key("log"): last}, block=block_ms, count=count)
            await self._learn_instance()
            if self.instance_changed:
                return  # what this read returned may be the new room's: read it from 0
            for _stream, entries in answer or ():
                if entries:
                    last_id = entries[-1][0]
                    last = last_id.decode() if isinstance(last_id, bytes) else last_id
                    yield [_event(entry_id, fields) for entry_id, fields in entries]

    # -- presence ------------------------------------------------------------------------

    async def join(self, wanted: object, secret: str | None = None) -> tuple[str, str]:
        """Claim a name for a member of this process: ``ada``, or ``ada 2`` if it is taken.

        Returns the name and the member's secret. A member that comes back with its
        ``secret`` gets its name back, even from a process that has not been found dead yet.
        Constant time, however many share the name: the numbers come from a counter.
        """
        redis = self._client()
        name = clean_name(wanted)
        secret = secret if secret and secret.isalnum() and len(secret) <= 64 else None
        mine = secret or secrets.token_hex(8)
        await self._alive()  # before the claim: a process with members is never "dead"
        if await self.claim(name, mine, resume=secret):
            return name, mine
        while True:
            n = await redis.hincrby(self._key("numbers"), name, 1) + 1
            given = f"{name} {n}"
            if await self.claim(given, mine):
                return given, mine

    async def claim(self, name: str, secret: str, resume: str | None = None) -> bool:
        """Claim exactly ``name`` for a member of this process; False if someone alive has it
        (and ``resume`` is not the secret it was claimed with)."""
        await self._alive()
        seq = await self._client().incr(self._key("joins"))
        claimed = await self._claim(
            keys=[self._key("here"), self._key("looks")],
            args=[
                name,
                f"{self.process} {seq} {secret}",
                self._key("alive:"),
                resume or "",
                skeleton(name),
            ],
        )
        return bool(claimed)

    async def leave(self, name: str) -> bool:
        """Take this process's member ``name`` out of the room; False if it was not there."""
        return await self._remove_member(name, self.process)

    async def _remove_member(self, name: str, process: str) -> bool:
        self._client()  # "call connect() first", rather than "None is not callable"
        receipt = self._key(f"removed:{secrets.token_hex(8)}")  # one per call, not per try
        removed = await self._remove(
            keys=[self._key("here"), receipt, self._key("looks")],
            args=[name, process, _RECEIPT_SECONDS, skeleton(name)],
        )
        return bool(removed)

    async def users(self) -> list[str]:
        """Who is here, on every process, in the order they joined."""
        here = await self._client().hgetall(self._key("here"))
        order = sorted(here.items(), key=lambda item: int(item[1].split(b" ")[1]))
        return [name.decode() for name, _ in order]

    async def heartbeat(self) -> list[str]:
        """Say this process is alive; remove the members of processes that are not.

        Returns the names removed, for their leave to be announced (by the process that
        removed them: the removal tells exactly one process that it did).
        """
        redis = self._client()
        await redis.set(
            self._key(f"alive:{self.process}"), time.time(), px=int(self.alive_for * 1000)
        )
        here = await redis.hgetall(self._key("here"))
        processes = {value.split(b" ", 1)[0].decode() for value in here.values()}
        processes.discard(self.process)
        gone: list[str] = []
        for process in processes:
            if await redis.exists(self._key(f"alive:{process}")):
                continue
            for name, value in here.items():
                if value.split(b" ", 1)[0].decode() == process and await self._remove_member(
                    name.decode(), process
                ):
                    gone.append(name.decode())
        return gone

    async def reclaim(self, members: dict[str, str]) -> list[str]:
        """Put back this process's members (name: secret) that another process took out of
        the presence list (it found this one's alive key expired); the names put back."""
        if not members:
            return []
        names = list(members)
        holders = await self._client().hmget(self._key("here"), names)
        back = []
        for name, holder in zip(names, holders, strict=True):
            if holder is None and await self.claim(name, members[name], resume=members[name]):
                back.append(name)
        return back

    def keep_alive(self) -> Callable[[], None]:
        """Renew this process's alive key from a thread of its own, until the returned
        function is called: "alive" means its members' connections are open, not that its
        event loop is quick, so a process whose loop is seconds behind (overloaded) keeps its
        members in the room. A process that dies stops renewing at once, thread and all."""
        import redis as sync_redis

        stop = threading.Event()
        client = sync_redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        key, every = self._key(f"alive:{self.process}"), self.alive_for / 3

        def renew() -> None:
            while not stop.wait(every):
                # Redis away: the loop's tasks say so; this tries again next time.
                with contextlib.suppress(sync_redis.RedisError):
                    client.set(key, time.time(), px=int(self.alive_for * 1000))
            client.close()

        thread = threading.Thread(target=renew, name=f"chat-alive-{self.process}", daemon=True)
        thread.start()

        def stop_renewing() -> None:
            stop.set()
            thread.join(2)  # a renewal under way lands before the key is deleted, not after

        return stop_renewing

    async def _alive(self) -> None:
        await self._client().set(
            self._key(f"alive:{self.process}"), time.time(), px=int(self.alive_for * 1000)
        )

    async def forget_process(self) -> None:
        """This process is stopping: its members leave now, not when its heartbeat expires."""
        redis = self._client()
        await redis.delete(self._key(f"alive:{self.process}"))
