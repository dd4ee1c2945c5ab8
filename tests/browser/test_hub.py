"""The course behind a hub: JupyterLab under /user/learner/, only its port reachable.

One JupyterLab for the module, started as JupyterHub starts a learner's server
(``--ServerApp.base_url=/user/learner/``, ``JUPYTERHUB_SERVICE_PREFIX`` in the kernels'
environment) with the real jupyter-server-proxy in it. The browser opens it as
``http://hub.example:PORT/user/learner/`` (Chromium maps the name to 127.0.0.1), so the pages
are not on loopback and send the hub's Origin, as on a real hub. Its context refuses every
request and WebSocket to any other port (Playwright routing) and counts what it refused: the
course must work through ``/user/learner/proxy/{port}/`` all the same. What runs in the
kernel is the same as without a hub (tests/browser/test_jupyterlab.py runs every notebook
whole); here the notebooks run as far as their browser-facing parts go: 01 whole, 02 to its
views, controls and page link, 03 to its chat widget and deep links. Then a room's server
for hub learners, and the in-band errors through the real proxy.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import connect

from tests.browser.conftest import CHROMIUM_ARGS, find_chromium
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    kernel_with_env,
    open_notebook,
    run_cells_above,
    run_cells_from,
    running_lab,
    screenshot,
)
from tests.conftest import ROOM_TOKEN
from tests.helpers import wait_for
from workshop_lib import start_server
from workshop_lib.app.links import lan_address
from workshop_lib.chat import ChatClient
from workshop_lib.clients import reading as reading_client
from workshop_lib.server.handle import bearer
from workshop_lib.wire.protocol import announced_close

pytestmark = pytest.mark.browser

PREFIX = "/user/learner/"
HUB_HOST = "hub.example"  # what the browser calls 127.0.0.1 here
HUB_ENV = {"JUPYTERHUB_SERVICE_PREFIX": PREFIX}
WIDGET_TIMEOUT = 30_000  # ms

# Every href and src in the open notebook's outputs (the DOM: what a learner can click).
_JS_OUTPUT_LINKS = """() => Array.from(document.querySelectorAll(
  '.jp-NotebookPanel .jp-OutputArea-output a[href], .jp-NotebookPanel .jp-OutputArea-output [src]'
)).map((node) => node.getAttribute('href') || node.getAttribute('src'))"""
PAST_THE_PROXY = re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+")


@pytest.fixture(scope="module")
def hub(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """JupyterLab as a hub runs it: under /user/learner/, with jupyter-server-proxy, and
    answering to a name other than localhost (a hub's single-user servers do)."""
    base = tmp_path_factory.mktemp("hub")
    args = ("--ServerApp.allow_remote_access=True",)
    with running_lab(base, base_url=PREFIX, args=args) as running:
        yield running


@pytest.fixture(scope="module")
def hub_browser(browser):
    """A Chromium of its own for which hub.example is 127.0.0.1 (a launch option)."""
    rule = f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1"
    launched = browser.browser_type.launch(
        executable_path=find_chromium(), headless=True, args=[*CHROMIUM_ARGS, rule]
    )
    try:
        yield launched
    finally:
        launched.close()


class Fence:
    """Refuses, in one browser context, every request and WebSocket to a port other than
    JupyterLab's (what a hub's learner's browser can reach), and records each refusal."""

    def __init__(self, context, lab: JupyterLab) -> None:
        self.port = lab.port
        self.refused: list[str] = []
        self.open_to: set[tuple[str, int]] = set()  # (host, port): a room's server elsewhere
        context.route(self._foreign, self._refuse_request)
        context.route_web_socket(self._foreign, self._refuse_socket)

    def _foreign(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss"):
            return False  # data:, blob:, about:
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        return port != self.port and (parts.hostname, port) not in self.open_to

    def _refuse_request(self, route) -> None:
        self.refused.append(route.request.url)
        route.abort("connectionrefused")

    def _refuse_socket(self, socket) -> None:
        self.refused.append(socket.url)
        socket.close(code=4000, reason="refused: only JupyterLab's port is reachable")


@pytest.fixture
def hub_page(hub_browser, hub: JupyterLab, request) -> Iterator:
    """A page at hub.example behind the fence (``page.fence``, ``page.page_errors``); its
    screenshot goes to test-artifacts/, the kernels it started are shut down after."""
    context = hub_browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.fence = Fence(context, hub)
    page.page_errors = []
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
    try:
        yield page
    finally:
        try:
            screenshot(page, request.node.name)
        finally:
            context.close()
            hub.shutdown_kernels()


def _as_the_browser_sees_it(lab: JupyterLab) -> JupyterLab:
    """``lab`` with the hub's name in its URLs (for open_notebook; its API stays local)."""
    return replace(lab, base_url=lab.base_url.replace("127.0.0.1", HUB_HOST))


def _links_in_outputs(page) -> list[str]:
    return [link for link in page.evaluate(_JS_OUTPUT_LINKS) if link]


def _assert_links_stay_behind_the_proxy(page, notebook: str) -> list[str]:
    links = _links_in_outputs(page)
    past = [link for link in links if PAST_THE_PROXY.search(link)]
    assert past == [], f"{notebook}: links past the proxy: {past}"
    return links


def _open_link(page, href: str):
    """A new page of the same (fenced) context at ``href``, as a click on the link opens."""
    opened = page.context.new_page()
    opened.page_errors = []
    opened.on("pageerror", lambda exc: opened.page_errors.append(str(exc)))
    opened.goto(urljoin(page.url, href))
    return opened


def test_the_course_behind_a_hub(hub_page, hub: JupyterLab) -> None:
    """01, 02 and 03, every cell, with only JupyterLab's port reachable: every link in their
    outputs goes through the proxy, the echo page, the ball (canvas and page) and the chat
    (widget and page) all work through it."""
    page = hub_page
    hub_url = _as_the_browser_sees_it(hub)
    proxied = re.compile(rf"^{re.escape(PREFIX)}proxy/(\d+)/")
    started = time.monotonic()

    # -- 01: the echo page from the notebook's link -----------------------------------------
    name = "01-echo.ipynb"
    kernel_with_env(hub, name, HUB_ENV)
    open_notebook(page, hub_url, name)
    # The fence itself: a request and a WebSocket past JupyterLab's port are refused.
    probe = page.evaluate(
        """(port) => new Promise((done) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/probe`);
          socket.onclose = (event) => fetch(`http://127.0.0.1:${port}/probe`).then(
            () => done(`fetched after close ${event.code}`),
            () => done(`refused, close ${event.code}`));
        })""",
        hub.port + 1,
    )
    assert probe == "refused, close 4000" and len(page.fence.refused) == 2, (probe, page.fence)
    page.fence.refused.clear()
    run_cells_above(page, "echo_panel.close()")
    assert error_outputs(page) == []
    links = _assert_links_stay_behind_the_proxy(page, name)
    echo_link = next(link for link in links if link.endswith("#echo"))
    assert proxied.match(echo_link), echo_link
    echo = _open_link(page, echo_link)
    echo.locator("#echo-connect").click()
    echo.locator('#echo-status[data-state="open"]').wait_for(timeout=WIDGET_TIMEOUT)
    text = f"through the proxy {uuid.uuid4().hex[:6]}"
    echo.locator("#echo-input").fill(text)
    echo.locator("#echo-input").press("Enter")
    echo.locator('#echo-log li[data-direction="received"]', has_text=text).wait_for(
        timeout=WIDGET_TIMEOUT
    )
    screenshot(echo, "hub-01-echo-page")
    assert echo.page_errors == []
    echo.close()
    run_cells_from(page, "echo_panel.close()")
    assert error_outputs(page) == []
    _assert_links_stay_behind_the_proxy(page, name)
    hub.shutdown_kernels()
    after_01 = time.monotonic()

    # -- 02: the ball's canvas in the notebook, and its page -----------------------------------
    name = "02-bouncing-ball.ipynb"
    kernel_with_env(hub, name, HUB_ENV)
    open_notebook(page, hub_url, name)
    run_cells_above(page, "controls.client.control(")
    assert error_outputs(page) == []
    canvas = page.locator(".workshop-ball-canvas").first
    # Scrolled to without Playwright's wait for a still element: on a busy machine the
    # notebook is still settling from the run (outputs arriving, Lab following the cells).
    canvas.evaluate("(c) => c.scrollIntoView({block: 'center'})")
    address = canvas.get_attribute("data-address") or ""
    assert address.startswith(f"ws://{HUB_HOST}:{hub.port}{PREFIX}proxy/"), address
    # Where the view reads the base URL from, without the kernel's hint: JupyterLab's config.
    config = "JSON.parse(document.getElementById('jupyter-config-data').textContent).baseUrl"
    assert page.evaluate(f"() => {config}") == PREFIX
    page.wait_for_function(
        "(c) => c.dataset.tick !== undefined", arg=canvas.element_handle(), timeout=WIDGET_TIMEOUT
    )
    before = screenshot(page, "hub-02-ball-canvas", canvas).read_bytes()
    first_tick = int(canvas.get_attribute("data-tick"))
    page.wait_for_function(
        "([c, t]) => Number(c.dataset.tick) > t + 10",
        arg=[canvas.element_handle(), first_tick],
        timeout=WIDGET_TIMEOUT,
    )
    moved = canvas.screenshot() != before  # a bool: no PNG bytes in a failure message
    assert moved, "the ball's canvas did not change"
    links = _assert_links_stay_behind_the_proxy(page, name)
    ball_link = next(link for link in links if link.endswith("#ball"))
    assert proxied.match(ball_link), ball_link
    ball = _open_link(page, ball_link)
    ball.locator('#ball-status[data-state="open"]').wait_for(timeout=WIDGET_TIMEOUT)
    ball.wait_for_function(
        "() => Number(document.querySelector('#ball-push-canvas').dataset.tick) > 0",
        timeout=WIDGET_TIMEOUT,
    )
    screenshot(ball, "hub-02-ball-page")
    assert ball.page_errors == []
    ball.close()
    run_cells_from(page, "controls.client.control(")  # the rest of 02, behind the hub too
    assert error_outputs(page) == []
    _assert_links_stay_behind_the_proxy(page, name)
    hub.shutdown_kernels()
    after_02 = time.monotonic()

    # -- 03: the chat widget, and a browser chat from the deep link ----------------------------
    name = "03-chat-room.ipynb"
    kernel_with_env(hub, name, HUB_ENV)
    open_notebook(page, hub_url, name)
    run_cells_above(page, "from workshop_lib.chat import ChatClient")
    assert error_outputs(page) == []
    links = _assert_links_stay_behind_the_proxy(page, name)
    ada_link = next(link for link in links if "name=ada" in link)
    assert proxied.match(ada_link) and ada_link.endswith("#chat"), ada_link
    chat = page.locator(".workshop-chat")
    chat.wait_for(timeout=WIDGET_TIMEOUT)
    ada = _open_link(page, ada_link)
    ada.locator('#chat-status[data-state="joined"]').wait_for(timeout=WIDGET_TIMEOUT)
    mine = f"from the widget {uuid.uuid4().hex[:6]}"
    chat.locator(".workshop-chat-input input").fill(mine)
    chat.locator(".workshop-chat-input input").press("Enter")
    log = chat.locator(".workshop-chat-log")
    log.locator('li[data-kind="message"]', has_text=mine).wait_for(
        state="attached", timeout=WIDGET_TIMEOUT
    )
    ada.locator("#chat-messages li", has_text=mine).wait_for(timeout=WIDGET_TIMEOUT)
    theirs = f"from the page {uuid.uuid4().hex[:6]}"
    ada.locator("#chat-input").fill(theirs)
    ada.locator("#chat-input").press("Enter")
    log.locator('li[data-kind="message"]', has_text=f"ada: {theirs}").wait_for(
        state="attached", timeout=WIDGET_TIMEOUT
    )
    screenshot(ada, "hub-03-chat-page")
    chat.scroll_into_view_if_needed()
    screenshot(page, "hub-03-chat-widget", chat)
    assert ada.page_errors == []
    ada.close()
    run_cells_from(page, "from workshop_lib.chat import ChatClient")  # the rest of 03
    assert error_outputs(page) == []
    _assert_links_stay_behind_the_proxy(page, name)

    # Everything above worked through JupyterLab's port alone, and nothing tried another.
    assert page.fence.refused == []
    print(
        f"\nbehind a hub: 01 {after_01 - started:.0f}s, 02 {after_02 - after_01:.0f}s, "
        f"03 {time.monotonic() - after_02:.0f}s; refused: {page.fence.refused}"
    )
    assert page.page_errors == []


def test_a_rooms_server_for_learners_on_a_hub(hub_page, hub: JupyterLab) -> None:
    """The instructor's server, at an address the learners' kernels and browsers both reach
    (this machine's network address here), with the hub's origin allowed: a learner's
    notebook on the hub joins it (WORKSHOP_SERVER, WORKSHOP_TOKEN), the ball's canvas
    connects to it directly, not through the learner's proxy, and the chat link opens."""
    page = hub_page
    address = lan_address()
    if address is None:
        pytest.fail("this test needs a network address besides loopback, for the room's server")
    hub_origin = f"http://{HUB_HOST}:{hub.port}"
    name = f"_room-on-a-hub-{uuid.uuid4().hex[:6]}"
    with start_server(
        port=0, host="0.0.0.0", name=name, token=ROOM_TOKEN, origins=[hub_origin]
    ) as room:
        page.fence.open_to.add((address, room.port))  # the room is another machine's door
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [
            nbformat.v4.new_code_cell(source)
            for source in (
                "from IPython.display import Markdown\n"
                "from workshop_lib import start_server\n"
                "from workshop_lib.ball import BallView\n"
                "from workshop_lib.server import join_room_server\n"
                "server = join_room_server() or start_server()\n"
                "view = BallView(server.links.ws('/ball'), token=server.token)\n"
                "view",
                "Markdown(f\"[ada]({server.links.page('chat', name='ada')})\")",
            )
        ]
        nbformat.write(notebook, hub.root_dir / f"{name}.ipynb")
        room_env = {
            "WORKSHOP_SERVER": f"http://{address}:{room.port}",
            "WORKSHOP_TOKEN": ROOM_TOKEN,
        }
        kernel_with_env(hub, f"{name}.ipynb", {**HUB_ENV, **room_env})
        open_notebook(page, _as_the_browser_sees_it(hub), f"{name}.ipynb")
        run_cells_from(page, "from IPython.display import Markdown")
        assert error_outputs(page) == []
        canvas = page.locator(".workshop-ball-canvas")
        canvas.wait_for(timeout=WIDGET_TIMEOUT)
        assert canvas.get_attribute("data-address") == f"ws://{address}:{room.port}/ball"
        page.wait_for_function(
            "(c) => Number(c.dataset.tick) > 0", arg=canvas.element_handle(), timeout=WIDGET_TIMEOUT
        )
        [link] = _links_in_outputs(page)
        assert link.startswith(f"http://{address}:{room.port}/?name=ada#chat&token="), link
        ada = _open_link(page, link)
        ada.locator('#chat-status[data-state="joined"]').wait_for(timeout=WIDGET_TIMEOUT)
        screenshot(ada, "hub-room-chat-page")
        assert ada.page_errors == []
        assert "ada" in room.lesson("chat").room.users
        ada.close()
    assert page.fence.refused == []
    assert page.page_errors == []


ERRORS_TOKEN = "s3cret-behind-the-hub"


def _login_cookie(lab: JupyterLab) -> str:
    """The Cookie header of a logged-in browser: Jupyter sets it for a URL with the token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(lab.url("lab"), timeout=30):
        pass
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def test_errors_through_the_proxy_are_told_and_not_retried(
    hub_page, hub: JupyterLab, monkeypatch
) -> None:
    """Behind jupyter-server-proxy, which passes no close code on, a wrong token and a flood
    reach the browser page and the Python client as 4001 and 4029 (the server's in-band
    error events), and neither reconnects."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)  # the server runs in a hub kernel
    with start_server(port=0, name="hub-errors", token=ERRORS_TOKEN) as guarded:
        chat = guarded.lesson("chat")
        for name, value in (("burst", 2), ("rate", 0.01), ("strikes", 3)):
            monkeypatch.setattr(chat, name, value)
        hub_url = _as_the_browser_sees_it(hub)
        proxied = f"{hub_url.base_url}proxy/{guarded.port}/"
        context = hub_page.context
        hub_page.goto(hub_url.url("api/status"))  # logs the browser in, as a hub would have
        page = context.new_page()
        page.page_errors = []
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))
        opened: list[str] = []
        page.on("websocket", lambda ws: opened.append(ws.url))
        page.clock.install()

        # A wrong token: the page says 4001 and asks for the token, and does not retry.
        page.goto(f"{proxied}?name=ada#chat&token=wrong")
        status = page.locator("#chat-status")
        status.and_(page.locator('[data-state="closed"]')).wait_for(timeout=WIDGET_TIMEOUT)
        assert status.text_content() == "closed (4001 unauthorized: wrong token)"
        page.locator("#auth-form").wait_for(timeout=WIDGET_TIMEOUT)
        page.clock.run_for(60_000)  # longer than any reconnect wait
        assert len(opened) == 1, opened
        screenshot(page, "hub-errors-wrong-token")

        # A flood: 4029, said as such, and no reconnect.
        page.goto(f"{proxied}?name=flood#chat&token={ERRORS_TOKEN}")
        page.locator('#chat-status[data-state="joined"]').wait_for(timeout=WIDGET_TIMEOUT)
        # The join and one message pass, then refusals run the 3 strikes dry and the server
        # closes. Strikes come back at one a second, so on a slow machine a few more sends
        # may be needed: flood until the page says it is closed, as a flooder would.
        closed = page.locator('#chat-status[data-state="closed"]')
        box = page.locator("#chat-input")
        for i in range(40):
            if closed.count() or box.is_disabled():
                break
            try:  # the box is disabled the moment the page learns it is closed
                box.fill(f"spam {i}", timeout=2000)
                box.press("Enter", timeout=2000)
            except PlaywrightTimeoutError:
                break
        page.locator('#chat-status[data-state="closed"]').wait_for(timeout=WIDGET_TIMEOUT)
        assert "4029" in (status.text_content() or ""), status.text_content()
        page.clock.run_for(60_000)
        assert len(opened) == 2, opened
        screenshot(page, "hub-errors-flood")
        assert page.page_errors == []

        # The Python client through the same proxy, with the login cookie a browser sends.
        cookie = _login_cookie(hub)
        url = f"ws://127.0.0.1:{hub.port}{PREFIX}proxy/{guarded.port}/chat"
        with monkeypatch.context() as patched:
            patched.setattr(
                reading_client, "bearer", lambda token: {**bearer(token), "Cookie": cookie}
            )
            flooder = ChatClient(url, "py-flood", token=ERRORS_TOKEN, reconnect=True)
            try:
                with contextlib.suppress(ConnectionClosed):  # the last may find it closed
                    for i in range(40):  # until the server closes it (strikes refill 1/s)
                        if flooder.close_code is not None:
                            break
                        flooder.send(f"spam {i}")
                # The reader thread ends when the client decides not to reconnect.
                flooder._reader.join(WIDGET_TIMEOUT / 1000)
                assert not flooder._reader.is_alive(), (
                    "the client is still reading or reconnecting",
                    flooder.close_code,
                    flooder.reconnects,
                    flooder.closing_error,
                    flooder.errors[-3:],
                )
                assert (flooder.close_code, flooder.reconnects) == (4029, 0), (
                    flooder.close_code,
                    flooder.close_reason,
                )
            finally:
                flooder.close()
            # A wrong token in the header is refused at the handshake (HTTP 401), before any
            # WebSocket exists to carry an event; jupyter-server-proxy has already answered
            # 101 to the client by then and just drops it. So the Python client cannot be
            # told, only fails at once (no retry: it never got going). The browser's token
            # goes in the first message, and is told (above).
            served = guarded.app.served["/chat"]
            with pytest.raises(ConnectionClosedError):
                ChatClient(url, "py-wrong", token="wrong", reconnect=True)
            assert guarded.app.served["/chat"] == served  # refused before it was served
    assert hub_page.fence.refused == []


def test_a_flooder_reading_behind_its_sends_is_still_told_4029_through_the_proxy(
    hub: JupyterLab, monkeypatch
) -> None:
    """Once the server's close frame has reached jupyter-server-proxy, the proxy cuts the
    client's side at the client's next message (it writes it to the closed upstream, which
    raises, and tornado aborts). A flooder's next send then fails and websockets' client
    drops what it had not read: on a busy machine its reading thread is behind, and the
    4029 event was lost (the client saw 1006 and reconnected). Here the reading is behind
    on purpose: a queue of one frame, read only after the flood. The server gives the
    client its grace to read the event and close first, so the proxy never sees a message
    after a close."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    with start_server(port=0, name="hub-late-reader", token=ERRORS_TOKEN) as guarded:
        chat = guarded.lesson("chat")
        # A long grace: however slow this machine, the flood below ends inside it, and the
        # client's own close ends it at once.
        for name, value in (("burst", 2), ("rate", 0.01), ("strikes", 3), ("close_grace", 60)):
            monkeypatch.setattr(chat, name, value)
        headers = {**bearer(ERRORS_TOKEN), "Cookie": _login_cookie(hub)}
        url = f"ws://127.0.0.1:{hub.port}{PREFIX}proxy/{guarded.port}/chat"
        log_before = hub.log_path.read_text(errors="replace")
        with connect(url, additional_headers=headers, proxy=None, max_queue=1) as late:
            late.send(json.dumps({"type": "chat.join", "name": "late"}))
            wait_for(lambda: "late" in chat.members, timeout=WIDGET_TIMEOUT / 1000)
            cut = None
            try:
                # The flood: 3 refusals, then the 4029 (one more if a strike refilled).
                for i in range(40):
                    late.send(json.dumps({"type": "chat.send", "text": f"spam {i}"}))
                    if "late" not in chat.members:  # out of the room: its event is written
                        break
                wait_for(lambda: "late" not in chat.members, timeout=WIDGET_TIMEOUT / 1000)
                # It goes on for a while, as a flood does before its sender reads.
                for i in range(20):
                    time.sleep(0.01)  # a flood's pace: the proxy handles each in turn
                    late.send(json.dumps({"type": "chat.send", "text": f"more spam {i}"}))
            except ConnectionClosed as exc:
                cut = exc  # the proxy cut the line: what was not read yet is gone
            events: list[dict] = []
            with contextlib.suppress(ConnectionClosed):
                while not events or announced_close(events[-1]) is None:
                    events.append(json.loads(late.recv(timeout=WIDGET_TIMEOUT / 1000)))
        errors = [(e.get("code"), e.get("close")) for e in events if e["type"] == "error"]
        assert errors[-1:] == [("flooding", 4029)], (cut, errors, events[:3])
        assert errors.count(("rate_limited", None)) >= 3, errors
        assert cut is None
        # The cause, gone: the proxy never wrote a message to a closed upstream.
        log = hub.log_path.read_text(errors="replace")[len(log_before) :]
        assert "WebSocketClosedError" not in log, log[-3000:]


# The links a notebook gives a learner to open, from the model (a long run leaves early cells
# out of the DOM): Markdown links, HTML hrefs, and page addresses (with a #page) in plain
# text, which JupyterLab turns into links. Other URLs in printed text are examples (04's
# origins), and ws:// addresses are for the kernel's own clients.
_JS_MODEL_LINKS = """(path) => {
  const panel = window.jupyterapp.shell.widgets('main').find((w) => w.context?.path === path);
  const links = [];
  const models = panel.content.model.cells;
  for (let i = 0; i < models.length; i++) {
    const cell = models.get(i);
    if (cell.type !== 'code') continue;
    for (const output of cell.outputs.toJSON()) {
      const text = [].concat(output.text || []).join('');
      const data = output.data || {};
      const md = [].concat(data['text/markdown'] || []).join('');
      const html = [].concat(data['text/html'] || []).join('');
      const plain = [].concat(data['text/plain'] || []).join('') + text;
      for (const m of md.matchAll(/\\]\\(([^)\\s]+)\\)/g)) links.push(m[1]);
      for (const m of html.matchAll(/href="([^"]+)"/g)) links.push(m[1]);
      for (const m of plain.matchAll(/https?:\\/\\/[^\\s'"<>]+#[^\\s'"<>]*/g)) links.push(m[0]);
    }
  }
  return links;
}"""


@pytest.mark.parametrize(
    ("notebook", "page_name", "clean_up"),
    [
        ("04-auth-and-errors.ipynb", "chat", "linus.close()"),
        ("05-realtime-api.ipynb", "realtime", "lab.stop()"),
        ("06-scaling-out.ipynb", "ball", "for client in (*people"),
        ("08-voice.ipynb", "voice", "voice.close()"),
    ],
    ids=["04", "05", "06", "08"],
)
def test_the_later_lessons_run_behind_a_hub(
    hub_page, hub: JupyterLab, redis_url, notebook: str, page_name: str, clean_up: str
) -> None:
    """04, 05, 06 and 08, every cell, with only JupyterLab's port reachable: no error, no link
    past the proxy, nothing that tried another port, and before the clean-up a lesson page
    opened from one of their links loads through the proxy and connects."""
    page = hub_page
    kernel_with_env(hub, notebook, HUB_ENV)
    open_notebook(page, _as_the_browser_sees_it(hub), notebook)
    run_cells_above(page, clean_up)
    assert error_outputs(page) == []
    links = [link for link in page.evaluate(_JS_MODEL_LINKS, notebook) if link]
    past = [link for link in links if PAST_THE_PROXY.search(link)]
    assert past == [], f"{notebook}: links past the proxy: {past}"
    lesson_links = [link for link in links if re.search(rf"#{page_name}\b", link)]
    assert lesson_links, f"{notebook} showed no link to its {page_name} page: {links}"
    assert all(link.startswith(f"{PREFIX}proxy/") for link in lesson_links), lesson_links
    # The last one: 06 links two processes' pages, and the first may be the one it killed.
    opened = _open_link(page, lesson_links[-1])
    opened.locator(".site-nav a", has_text="Chat").wait_for(timeout=WIDGET_TIMEOUT)
    status = opened.locator(f"#{page_name}-status")
    if status.count():  # every lesson page says when it is connected
        opened.wait_for_function(
            "(s) => ['open', 'joined'].includes(s.dataset.state) "
            "|| s.textContent.startsWith('connected: session')",  # the Realtime page
            arg=status.element_handle(),
            timeout=WIDGET_TIMEOUT,
        )
    if page_name == "voice":  # the voice page and the notebook's widget: ready to connect
        opened.get_by_test_id("voice-connect").wait_for(timeout=WIDGET_TIMEOUT)
        page.locator(".voice").first.wait_for(timeout=WIDGET_TIMEOUT)
    screenshot(opened, f"hub-{notebook[:2]}-page")
    assert opened.page_errors == []
    opened.close()
    run_cells_from(page, clean_up)
    assert error_outputs(page) == []
    assert page.fence.refused == [], page.fence.refused
    assert page.page_errors == []
