"""The voice conversation in a notebook: ``VoiceWidget(server)``, the browser's voice page
inside a cell.

    from workshop_lib.realtime.voice_widget import VoiceWidget
    VoiceWidget(server)          # Connect, speak, listen; talk over the answer to interrupt

The front end is the voice page's own module (``realtime/voice-core.js``: microphone through an
AudioWorklet, playback on the audio clock, barge-in and truncate), with a few lines of glue:
one source for the page and the widget. The microphone needs a secure context, which
JupyterLab on localhost and a hub's https page both are.

The key: the widget's front end asks the kernel, and the kernel asks the server's back-end
route (``POST /api/realtime/client_secret``, with the token on a token server) for a
short-lived ``ek_`` key, as an app's back end asks the real service. The long-lived token
stays in the kernel; the browser holds only a key that opens Realtime sessions for minutes.

The front end reports what it did twice a second (``samples_scheduled``, ``ms_played``,
``events``, ``truncate_ms``, ``state``), so a cell can read it; without a front end (nbval,
a console) they stay at their defaults.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from ..app.links import browser_ws
from ..progress.banner import follow

__all__ = ["KEY_ROUTE", "VoiceWidget"]

KEY_ROUTE = "/api/realtime/client_secret"

# The widget's module: the page's core as it is (it imports nothing), then the glue that
# anywidget calls. The page's voice.js is not used: it imports the browser client's other
# files, which a notebook's page cannot reach.
_GLUE = """
const KEY_TIMEOUT_MS = 15000;

// The kernel's answer to "where does a browser reach url?" (links.browser_ws): "" when it
// is url itself, else an address through the hub's proxy, maybe relative to this page.
function socketAddress(url, hint) {
  if (!hint) return url;
  const address = new URL(hint, location.href);
  if (address.protocol === "http:" || address.protocol === "https:") {
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
  }
  return address.href;
}

export default {
  render({ model, el }) {
    const waiting = [];
    const onMessage = (message) => {
      if (message?.type !== "key") return;
      const next = waiting.shift();
      if (!next) return;
      clearTimeout(next.timer);
      if (message.value) next.resolve(message.value);
      else next.reject(new VoiceProblem(message.error || "The kernel gave no key."));
    };
    model.on("msg:custom", onMessage);
    const getKey = () => new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.splice(waiting.findIndex((w) => w.timer === timer), 1);
        reject(new VoiceProblem("The kernel did not answer with a key: is it busy running " +
          "a cell? When it is idle, press Connect again."));
      }, KEY_TIMEOUT_MS);
      waiting.push({ resolve, reject, timer });
      model.send({ type: "key" });
    });
    // The instructor's announcement (a notebook joined to a room), above the voice card.
    const line = document.createElement("p");
    line.className = "voice-announcement";
    line.setAttribute("role", "status");
    const announce = () => {
      const text = model.get("announcement") || "";
      line.textContent = text ? `From your instructor: ${text}` : "";
      line.hidden = text === "";
    };
    model.on("change:announcement", announce);
    announce();
    const body = document.createElement("div");
    el.append(line, body);
    const unmount = mountVoice(body, {
      getKey,
      socketUrl: socketAddress(model.get("url"), model.get("browser_url")),
      onStats: (stats) => model.send({ type: "report", ...stats }),
    });
    return () => {
      model.off("msg:custom", onMessage);
      model.off("change:announcement", announce);
      unmount();
    };
  },
};
"""

# The page's look, for a notebook (the browser client's style.css is not loaded there).
_CSS = """
.voice { font: 14px/1.5 system-ui, sans-serif; max-width: 60rem; }
.voice h1 { font-size: 1.2rem; margin: 0.2rem 0; }
.voice h2 { font-size: 1rem; margin: 0.8rem 0 0.3rem; }
.voice .row { display: flex; gap: 0.5rem; margin: 0.5rem 0; }
.voice button { padding: 0.3rem 0.9rem; border-radius: 6px; border: 1px solid #8c959f;
  background: #0969da; color: #fff; cursor: pointer; }
.voice button.secondary { background: transparent; color: inherit; }
.voice button:disabled { opacity: 0.5; cursor: default; }
.voice .voice-status { font-weight: 600; }
.voice .voice-problem { color: #cf222e; font-weight: 600; margin: 0.3rem 0; }
.voice .voice-transcript { list-style: none; margin: 0; padding: 0.4rem 0.6rem;
  border: 1px solid #d0d7de; border-radius: 6px; min-height: 2em; }
.voice .voice-transcript:empty::before {
  content: "What you say, and the answer's words as they come."; color: #59636e; }
.voice .voice-events:empty { min-height: 2.5em; }
.voice .voice-transcript .who { display: inline-block; min-width: 4.5em; color: #59636e;
  font-weight: 600; }
.voice .voice-transcript .unheard { color: #59636e; text-decoration: line-through; }
.voice .voice-events { list-style: none; margin: 0; padding: 0; max-height: 18rem;
  overflow: auto; font: 12px/1.5 monospace; border: 1px solid #d0d7de; border-radius: 6px; }
.voice .voice-events li { display: grid; grid-template-columns: 8.5em 1.2em 25em 1fr;
  gap: 0 0.5em; padding: 0 0.5rem; border-bottom: 1px solid #d0d7de; }
.voice .voice-events .event-time, .voice .voice-events .event-ids { color: #59636e; }
.voice .voice-events .sent .event-type { color: #0550ae; }
.voice .voice-events .event-detail { grid-column: 3 / -1; overflow-wrap: anywhere; }
.voice .voice-events .event-detail:empty { display: none; }
.voice .voice-events li[data-type="error"] { color: #cf222e; }
.voice-announcement { margin: 0 0 0.4em; padding: 0.3em 0.6em; border-left: 4px solid #bf8700;
  background: #fff8c5; color: #1f2328; font: 600 14px/1.5 system-ui, sans-serif; }
"""


def _module() -> str:
    core = files(__package__).joinpath("voice-core.js").read_text(encoding="utf-8")
    return core + "\n" + _GLUE


class VoiceWidget(anywidget.AnyWidget):
    """Talk with ``server``'s Realtime lesson from a cell: the voice page, in the notebook.

    ``model``: the model name the session asks for. The kernel fetches each short-lived key
    from the server's route when the front end asks (:meth:`mint_key`).
    """

    _esm = _module()
    _css = _CSS
    url = traitlets.Unicode().tag(sync=True)
    browser_url = traitlets.Unicode("").tag(sync=True)
    announcement = traitlets.Unicode("").tag(sync=True)  # the instructor's, when in a room
    # Reported by the front end (plain traits: only the kernel reads them).
    samples_scheduled = traitlets.Int(0)
    ms_played = traitlets.Int(0)
    events = traitlets.Dict()
    sent = traitlets.Dict()
    truncate_ms = traitlets.Int(None, allow_none=True)
    state = traitlets.Unicode("idle")

    def __init__(self, server: Any, *, model: str = "workshop-local") -> None:
        links = server.links
        url = f"{links.ws('/v1/realtime')}?model={quote(model)}"
        self._key_url = links.http + KEY_ROUTE
        self._token = links.token
        super().__init__(url=url, browser_url=browser_ws(url))
        self.on_msg(lambda _widget, content, _buffers: self._message(content))
        follow(self)

    def mint_key(self) -> str:
        """A short-lived ``ek_`` key from the server's route; raises ``RuntimeError`` with a
        line that says what to do when the server gives none."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        request = urllib.request.Request(self._key_url, data=b"", method="POST", headers=headers)
        # The server is this kernel's own (or the room's): never through an HTTP proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405):
                raise RuntimeError(
                    f"The server at {self._key_url} gives out no short-lived keys: update "
                    "workshop_lib and restart it."
                ) from None
            raise RuntimeError(
                f"The key route answered {exc.code}: "
                f"{exc.read(300).decode('utf-8', 'replace').strip()}"
            ) from None
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"The server did not answer at {self._key_url} ({exc}): is it running?"
            ) from None
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise RuntimeError(f"The key route answered without a key: {str(body)[:200]}")
        return value

    def _message(self, content: object) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "key":
            try:
                self.send({"type": "key", "value": self.mint_key()})
            except RuntimeError as exc:
                self.send({"type": "key", "error": str(exc)})
        elif content.get("type") == "report":
            self._report(content)

    def _report(self, content: dict) -> None:
        """Take the front end's counters; values of the wrong type are left as they were
        (the kernel never raises over what a browser sent)."""
        with self.hold_trait_notifications():
            for name in ("samples_scheduled", "ms_played"):
                value = content.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(self, name, value)
            truncate = content.get("truncate_ms")
            if truncate is None or (isinstance(truncate, int) and not isinstance(truncate, bool)):
                self.truncate_ms = truncate
            for name in ("events", "sent"):
                value = content.get(name)
                if isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, int) for k, v in value.items()
                ):
                    setattr(self, name, value)
            if isinstance(content.get("state"), str):
                self.state = content["state"][:20]
