"""One port for everything: the application a server runs.

``app.py`` routes a request to a lesson's WebSocket handler, a JSON endpoint or a file,
resolving a connection's route once; ``static.py`` serves the files (the shell's, each
lesson's page); ``shell.py`` finds the browser client's ``static/``; ``auth.py`` who may
connect (a token, the allowed origins); ``limits.py`` how many connections; ``rates.py`` how
fast one connection may send; ``bodies.py`` bounded request bodies; ``connections.py`` every
TCP connection from accept to close; ``links.py`` every address the course shows a person
(behind a hub too).
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["App", "Links", "new_token"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "App": ".app",
        "new_token": ".auth",
        "Links": ".links",
    },
)
