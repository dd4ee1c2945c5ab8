"""Command line: the same server and client as the notebooks, from a terminal.

python -m workshop_lib serve [--host HOST] [--port PORT] [--token TOKEN | --new-token]
                             [--instructor-key KEY]
                             [--max-connections N] [--max-per-address N]
python -m workshop_lib client echo "hello" ["more" ...] [--url URL] [--token TOKEN] [--handshake]
python -m workshop_lib redis [--port PORT] [--server PROGRAM]   # a Redis for serve --redis

For a whole room (docs/instructor.md)::

    python -m workshop_lib serve --host 0.0.0.0 --new-token
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import connect

from . import __version__
from .app.auth import is_loopback, new_token
from .app.links import Links, lan_address
from .clients.proxies import proxy_for
from .clients.round_trip import DEFAULT_URL, echo_round_trips, format_handshake
from .course import default_lessons
from .lesson import Lesson
from .progress.server import ProgressLesson
from .server.handle import bearer
from .server.logs import WEBSOCKETS_LOGGER_NAME
from .server.loop import LoopThread
from .server.options import ServerOptions
from .server.room import SERVER_VARIABLE, TOKEN_VARIABLE
from .server.start import DEFAULT_PORT, PortInUseError, start_server

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workshop_lib",
        description="WebSocket Basics Workshop: run the course server or a client.",
    )
    parser.add_argument("--version", action="version", version=f"workshop_lib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the workshop server until Ctrl-C",
        description="Run the workshop server: the browser client on http://HOST:PORT/ and "
        "the WebSocket lessons on ws://HOST:PORT/<lesson>. Ctrl-C stops it.",
    )
    # The server's settings: their defaults and meanings are ServerOptions'.
    serve.add_argument("--host", **_setting("host"))
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    secret = serve.add_mutually_exclusive_group()
    secret.add_argument("--token", **_setting("token"))
    secret.add_argument(
        "--new-token", action="store_true", help="make up a random token and print it"
    )
    serve.add_argument(
        "--instructor-key",
        metavar="KEY",
        help="the key that opens the instructor's view of the room (who passed, who is "
        "stuck; /#room&key=KEY, GET /api/progress); made up and printed when the server "
        "has a token and this is not given",
    )
    serve.add_argument(
        "--origin",
        # Repeatable: each --origin adds one (append needs a list to add to).
        **_setting(
            "origins",
            action="append",
            default=[],
            metavar="ORIGIN",
            help=f"{ServerOptions.doc('origins')}; repeatable",
        ),
    )
    serve.add_argument("--max-connections", **_setting("max_connections", type=_count, metavar="N"))
    serve.add_argument("--max-per-address", **_setting("max_per_address", type=_count, metavar="N"))
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="share one chat room, one ball and the learners' progress with every server "
        "started with the same Redis, e.g. redis://127.0.0.1:6379/0 (lesson 06); without it, "
        "all is in memory",
    )
    serve.add_argument("--reuse-port", **_setting("reuse_port", action="store_true"))
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="asyncio",
        help="the server's event loop: asyncio's own, uvloop (pip install uvloop; not on "
        "Windows), or auto: uvloop where it is installed (default asyncio)",
    )
    serve.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one ends (a notebook's kernel, a "
        "test): its servers do not outlive it, even when it is killed",
    )
    serve.add_argument(
        "-v", "--verbose", action="store_true", help="also log every connection's protocol events"
    )

    redis = commands.add_parser(
        "redis",
        help="run a Redis server of your own until Ctrl-C, for serve --redis",
        description="Start the Redis server lesson 06 uses (a redis-server on PATH, else the "
        "Valkey server the course installs) on 127.0.0.1:PORT, and print the serve commands "
        "that share it. Nothing is saved to disk. Ctrl-C stops it.",
    )
    redis.add_argument(
        "--port", type=int, default=6379, help="port to listen on (default 6379; 0: a free one)"
    )
    redis.add_argument(
        "--server",
        metavar="PROGRAM",
        help="the server program to start (default: $WORKSHOP_REDIS_SERVER, a redis-server "
        "on PATH, then the course's own)",
    )

    client = commands.add_parser(
        "client",
        help="talk to a running server",
        description="Python clients for the lessons of a running workshop server.",
    )
    lessons = client.add_subparsers(dest="lesson", required=True, metavar="LESSON")
    echo = lessons.add_parser(
        "echo",
        help="send messages to /echo and print each reply with its round-trip time",
        description="Send each MESSAGE to the echo lesson, one at a time, and print the reply "
        "with its round-trip time.",
    )
    echo.add_argument("messages", nargs="+", metavar="MESSAGE", help="text to send")
    echo.add_argument("--url", default=DEFAULT_URL, help=f"echo URL (default {DEFAULT_URL})")
    echo.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE) or None,
        help=f"the server's token, if it has one (default: ${TOKEN_VARIABLE})",
    )
    echo.add_argument(
        "--handshake", action="store_true", help="first print the HTTP upgrade request and response"
    )
    echo.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the server (default 5)"
    )
    return parser


def _setting(name: str, **kwargs: Any) -> dict[str, Any]:
    """``add_argument``'s keywords for the server setting ``name``: its default and its help
    are ServerOptions' (``kwargs`` adds the rest, or overrides)."""
    return {
        "dest": name,
        "default": ServerOptions.default(name),
        "help": ServerOptions.doc(name),
        **kwargs,
    }


def _server_options(args: argparse.Namespace) -> ServerOptions:
    """The settings ``serve``'s options give (each option's dest is its setting's name);
    ``--new-token`` makes up the token."""
    settings = {name: value for name, value in vars(args).items() if name in ServerOptions.docs()}
    if args.new_token:
        settings["token"] = new_token()
    return ServerOptions(**settings)


def _count(text: str) -> int:
    """A whole number of connections, 0 or more (argparse's type for the limits)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of connections (0: no limit)")
    return value


def _lessons(redis: str | None, instructor_key: str | None) -> list[Lesson]:
    """The course's lessons (with Redis, the chat and the ball shared through it), and the
    room's progress, which learners' checks report to and the instructor watches."""
    # Shared through Redis only where an instructor can see it: without a key nobody reads
    # the board, and each process would follow the stream for nothing (lesson 06 counts
    # one reader per process).
    progress = ProgressLesson(instructor_key, redis=redis if instructor_key else None)
    if redis is None:
        return [*default_lessons(), progress]
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(redis, socket_connect_timeout=1).ping()
    except (RedisError, OSError, ValueError) as exc:
        print(
            f"warning: Redis at {redis} does not answer ({exc}); the chat and the ball join "
            "it as soon as it does.",
            file=sys.stderr,
        )
    return [*default_lessons(ball={"redis": redis}, chat={"redis": redis}), progress]


def _loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """``(name, factory)`` of the event loop ``--loop`` asks for (None: asyncio's own)."""
    if choice == "asyncio" or (choice == "auto" and sys.platform == "win32"):
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def _serve(args: argparse.Namespace) -> int:
    try:
        _, LoopThread.loop_factory = _loop_factory(args.loop)
    except ImportError:
        print(
            "error: --loop uvloop needs uvloop: pip install uvloop (or the course's extra: "
            'pip install -e ".[fast]"); it does not run on Windows',
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    # websockets' own per-connection lines are protocol detail; --verbose shows them.
    logging.getLogger(WEBSOCKETS_LOGGER_NAME).setLevel(
        logging.DEBUG if args.verbose else logging.WARNING
    )
    options = _server_options(args)
    if options.token is None and not is_loopback(options.host):
        print(
            f"error: --host {args.host} lets other machines connect, so the server needs a "
            f"token. Add --new-token (or --token YOUR_TOKEN):\n"
            f"  python -m workshop_lib serve --host {args.host} --new-token",
            file=sys.stderr,
        )
        return 2
    key = args.instructor_key
    if key is not None and not key.strip():
        print("error: --instructor-key cannot be empty", file=sys.stderr)
        return 2
    if key is None and options.token is not None:
        key = new_token()
    try:
        server = start_server(
            args.port, name="cli", options=options, lessons=_lessons(args.redis, key)
        )
    except PortInUseError as exc:
        print(f"error: {exc.strerror}\n(--port 0 picks any free port)", file=sys.stderr)
        return 1
    except ValueError as exc:  # a WORKSHOP_PUBLIC_URL that is no address
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    print(f"Workshop server {__version__} running. Ctrl-C stops it.")
    # The loop the server really runs on, asked of it (not what was asked for).
    print(f"  event loop: {server.run(_loop_module()).split('.')[0]}")
    _print_addresses(server.links, args.host, key)

    # Ctrl-C and SIGTERM (from a process manager) stop cleanly; SIGINT is set explicitly
    # because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stopped = threading.Event()
    parent = os.getppid()
    try:
        # A timed wait, because an untimed one cannot be interrupted on Windows.
        while not stopped.wait(0.5):
            # An orphan is adopted by another process (POSIX): its parent is gone.
            if args.exit_with_parent and os.getppid() != parent:
                with contextlib.suppress(OSError):  # its end of our output may be gone too
                    print("\nStopping: the process that started this one has ended.", flush=True)
                break
    except KeyboardInterrupt:
        print("\nStopping: closing connections (code 1001, going away)...", flush=True)
    finally:
        try:
            server.stop()
        except TimeoutError as exc:  # only a lesson that hangs in stop() gets here
            print(f"error: the server did not stop cleanly: {exc}", file=sys.stderr)
            return 1
    print("Stopped.")
    return 0


def _redis(args: argparse.Namespace) -> int:
    """A Redis server of one's own in the foreground, for servers started with --redis."""
    from .redis.local import LocalRedis, RedisMissing
    from .server.ports import port_is_free

    try:
        local = LocalRedis(port=args.port, binary=args.server)
    except RedisMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not port_is_free("127.0.0.1", local.port):
        print(
            f"error: port {local.port} is in use (another Redis?): pass its URL to serve "
            "--redis, or run this with --port 0",
            file=sys.stderr,
        )
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        local.start()
        print(f"Redis at {local.url} for serve --redis. Ctrl-C stops it.")
        print(f"  {local.why}")
        print("  Then, in two more terminals, two servers that are one room:")
        for port in (8001, 8002):
            print(f"    python -m workshop_lib serve --port {port} --redis {local.url}")
        sys.stdout.flush()
        while local.running:
            time.sleep(0.5)  # a timed wait: an untimed one cannot be interrupted on Windows
        print("error: the Redis server stopped by itself", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0
    except (RuntimeError, TimeoutError) as exc:  # it did not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        local.stop()


def _print_addresses(links: Links, host: str, instructor_key: str | None = None) -> None:
    """Where to open the pages; for a room, what learners open and set in their notebooks."""
    if not is_loopback(host):
        room = lan_address() if host in ("0.0.0.0", "::", "") else host
        if room is not None:
            links = links.at(room)
    if links.token is None:
        print(f"  {'Browser client:':<20} {links.browse('/')}")
    for page in links.pages:
        print(f"  {page.title + ' page:':<20} {links.page(page.name)}")
    room = f"{links.browse('/')}#room  (for the projector: clients and message rates)"
    print(f"  {'Room page:':<20} {room}")
    print(f"  {'Echo WebSocket:':<20} {links.ws('/echo')}  (and {links.websocket})")
    if links.token is not None:
        # The page links carry the token after "#": browsers never send that part to a
        # server, so it stays out of every log, and the page removes it from the address bar.
        print(f"  {'Token:':<20} {links.token}")
        print("  Learners open the page links above (the token travels in the part after #).")
        print("  Notebooks join this server with:")
        # Behind a TLS proxy (WORKSHOP_PUBLIC_URL=https://room.example/) that is the address.
        public = links.browse("/").rstrip("/")
        print(f"    {SERVER_VARIABLE}={public if '://' in public else links.http}")
        print(f"    {TOKEN_VARIABLE}={links.token}")
        print("  Their checks report to this server (lesson, exercise, outcome; never code).")
    if instructor_key is not None:
        # Like the token, after "#": never sent to a server, so in no log.
        page = f"{links.browse('/')}#room&key={quote(instructor_key, safe='')}"
        print(f"  {'Instructor page:':<20} {page}  (yours alone: names and progress)")
        print(f"  {'Instructor key:':<20} {instructor_key}  (GET /api/progress with it as Bearer)")
    sys.stdout.flush()


def _client_echo(args: argparse.Namespace) -> int:
    try:
        if args.handshake:
            headers = bearer(args.token)
            with connect(
                args.url,
                open_timeout=args.timeout,
                additional_headers=headers,
                proxy=proxy_for(args.url),  # never the system proxy for this machine's server
            ) as ws:
                print(format_handshake(ws), end="\n\n")
        replies = echo_round_trips(args.url, args.messages, timeout=args.timeout, token=args.token)
        for reply in replies:
            print(f"{reply.received!s}    ({reply.ms:.2f} ms)")
    except ConnectionRefusedError:
        print(
            f"error: no server at {args.url}. Start one with `python -m workshop_lib serve` "
            "(or start_server() in a notebook), or pass --url.",
            file=sys.stderr,
        )
        return 1
    except InvalidURI as exc:
        print(f"error: {exc}. A WebSocket URL looks like {DEFAULT_URL}", file=sys.stderr)
        return 2
    except InvalidStatus as exc:
        if exc.response.status_code == 401:
            print(
                "error: the server needs a token (or refused this one): pass --token TOKEN "
                f"or set {TOKEN_VARIABLE}",
                file=sys.stderr,
            )
            return 1
        body = exc.response.body.decode(errors="replace").strip()
        print(
            f"error: the server refused the WebSocket ({exc.response.status_code}): {body}",
            file=sys.stderr,
        )
        return 1
    except (TimeoutError, WebSocketException, OSError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m workshop_lib``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "redis":
        return _redis(args)
    return _client_echo(args)


if __name__ == "__main__":
    sys.exit(main())
