"""What goes on the wire, and how it leaves.

``protocol.py`` typed JSON events (parse, validate, build; the Realtime API's shape);
``closing.py`` closing with a reason that survives a proxy; ``fanout.py`` one frame written to
many connections; ``backlog.py`` how far behind a client is; ``stalls.py`` a peer that does not
read loses its place in bounded time; ``internals.py`` how the modules that read websockets
internals check them at import and choose a fallback on public API.
"""

from __future__ import annotations
