"""A server's settings in one place: what it listens on, whom it lets in, how much it takes.

    options = ServerOptions(host="0.0.0.0", token=new_token(), max_per_address=200)
    server = start_server(options=options)          # the same as passing them as keywords
    start_server(host="0.0.0.0", token=new_token())  # builds the options itself

``start_server`` builds one from its keywords, :class:`~workshop_lib.app.app.App` runs on one,
and ``python -m workshop_lib serve`` takes its defaults and help from here, so a setting's
default and its meaning are written once. :class:`ServerSettings` is the same list as keyword
types, for ``start_server(**settings)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypedDict

from ..app.auth import Guard, is_loopback
from ..app.limits import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_ADDRESS, Limits

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_SIZE",
    "ServerOptions",
    "ServerSettings",
    "default_per_address",
]

DEFAULT_HOST = "127.0.0.1"

# Large enough for any lesson's event, small enough that one client can't eat the memory.
DEFAULT_MAX_SIZE = 64 * 1024


def _setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    """A field with its default and the sentence that says what it means; a secret's value
    stays out of the repr (a notebook's output, a log line)."""
    return field(default=default, repr=not secret, metadata={"doc": doc})


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """How a workshop server listens and whom it lets in. Each field's meaning:
    ``ServerOptions.doc("token")``; every field at once: ``ServerOptions.docs()``."""

    host: str = _setting(
        DEFAULT_HOST,
        f"interface to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0 for the "
        "whole room, which needs a token)",
    )
    token: str | None = _setting(
        None,
        "every client must present this token (default none: anyone may connect; a server "
        "other machines can reach needs one; see docs/instructor.md)",
        secret=True,
    )
    origins: Iterable[str] = _setting(
        (), "also let pages from these web origins (e.g. https://hub.example.org) connect"
    )
    max_size: int = _setting(
        DEFAULT_MAX_SIZE,
        "the largest message a client may send, in bytes (a lesson's route may allow more); "
        "a bigger one closes the connection with 1009",
    )
    ping_interval: float | None = _setting(
        20.0,
        "seconds between the server's pings to each client, which find dead ones (a laptop "
        "that slept): one that does not answer within as long is closed (None: no pings)",
    )
    max_connections: int | None = _setting(
        None,
        f"WebSocket connections the server holds at most (default {DEFAULT_MAX_CONNECTIONS}; "
        "0: no limit); more are refused with HTTP 503",
    )
    max_per_address: int | None = _setting(
        None,
        f"WebSocket connections one client address holds at most (default "
        f"{DEFAULT_MAX_PER_ADDRESS} when the host lets other machines in, none on loopback, "
        "where every client has the same address; 0: no limit); more are refused with HTTP "
        "429. Raise it when clients share an address (a proxy, JupyterHub)",
    )
    reuse_port: bool = _setting(
        False,
        "let other servers listen on the same port (SO_REUSEPORT; Linux, macOS): the kernel "
        "spreads new connections over them; useful with a shared room (lesson 06, "
        "docs/scaling.md)",
    )

    def __post_init__(self) -> None:
        # A one-shot iterator (a generator) would be empty the second time it is read.
        object.__setattr__(self, "origins", tuple(self.origins))

    @classmethod
    def doc(cls, name: str) -> str:
        """What the setting ``name`` means, in one sentence (the CLI's help says the same)."""
        return _fields()[name].metadata["doc"]

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Every setting's meaning, by name, in the order of the fields."""
        return {name: f.metadata["doc"] for name, f in _fields().items()}

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of the setting ``name``."""
        return _fields()[name].default

    @classmethod
    def settings(cls) -> dict[str, tuple[str, Any]]:
        """Each setting's type, as written, and its default, by name."""
        return {name: (str(f.type), f.default) for name, f in _fields().items()}

    def guard(self, *, proxied: bool = False) -> Guard:
        """Who may connect: the token and the origins. ``proxied``: browsers reach this
        server through Jupyter's proxy, which has already checked their origin (docs/hubs.md),
        so a loopback server then accepts same-origin pages as a networked one does."""
        return Guard(
            self.token, loopback=is_loopback(self.host) and not proxied, origins=self.origins
        )

    def limits(self) -> Limits:
        """The connection caps, with the defaults for this host filled in."""
        total, per_address = self.max_connections, self.max_per_address
        return Limits(
            DEFAULT_MAX_CONNECTIONS if total is None else total,
            default_per_address(self.host) if per_address is None else per_address,
        )


class ServerSettings(TypedDict, total=False):
    """:class:`ServerOptions`' fields as keywords: the types ``start_server(**settings)`` takes.

    The defaults and meanings are the dataclass's; tests/test_options.py keeps the two lists
    the same.
    """

    host: str
    token: str | None
    origins: Iterable[str]
    max_size: int
    ping_interval: float | None
    max_connections: int | None
    max_per_address: int | None
    reuse_port: bool


def default_per_address(host: str) -> int | None:
    """The per-address cap a server on ``host`` gets by default: none on loopback.

    On loopback every client has the same address, so a cap per address would be a second,
    smaller total; on a room's network each laptop has its own.
    """
    return None if is_loopback(host) else DEFAULT_MAX_PER_ADDRESS


def _fields() -> dict[str, Field[Any]]:
    return {f.name: f for f in fields(ServerOptions)}
