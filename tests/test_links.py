"""Every address is built in one place."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from workshop_lib import start_server
from workshop_lib.app.links import Links, browser_ws, detect_proxy
from workshop_lib.ball.widgets import BallView, view_module
from workshop_lib.lesson import Page
from workshop_lib.server.room import SharedServer

PAGES = tuple(Page(name, name.title(), f"{name}.js") for name in ("echo", "ball", "chat"))


def test_links_for_loopback():
    links = Links("127.0.0.1", 8765, pages=PAGES)
    assert links.http == "http://127.0.0.1:8765"
    assert links.ws("/echo") == links.ws("echo") == "ws://127.0.0.1:8765/echo"
    assert links.url("/healthz") == "http://127.0.0.1:8765/healthz"
    assert links.page("echo") == "http://127.0.0.1:8765/#echo"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_a_wildcard_host_is_reached_through_loopback(host):
    assert Links(host, 1).http == "http://127.0.0.1:1"


def test_ipv6_literals_get_brackets():
    assert Links("::1", 8765).ws("/echo") == "ws://[::1]:8765/echo"


def test_unknown_page_is_an_error_that_lists_the_pages():
    with pytest.raises(ValueError, match=r"pages: echo, ball, chat$"):
        Links("127.0.0.1", 1, pages=PAGES).page("nope")


def test_query_parameters_go_before_the_fragment():
    links = Links("127.0.0.1", 8765, pages=PAGES)
    assert (
        links.page("chat", name="ada lovelace") == "http://127.0.0.1:8765/?name=ada+lovelace#chat"
    )


# -- behind a hub: jupyter-server-proxy's {prefix}proxy/{port}/ ---------------------------------

HUB = {"JUPYTERHUB_SERVICE_PREFIX": "/user/learner/"}


def test_no_hint_means_direct_links():
    assert detect_proxy({}) is None
    assert browser_ws("ws://127.0.0.1:8765/ball", {}) == ""


def test_a_hub_gives_host_relative_page_links_and_direct_kernel_links():
    links = Links("127.0.0.1", 8765, pages=PAGES, proxy=detect_proxy(HUB))
    assert links.page("ball") == "/user/learner/proxy/8765/#ball"
    assert links.page("chat", name="ada") == "/user/learner/proxy/8765/?name=ada#chat"
    assert links.browse("/healthz") == "/user/learner/proxy/8765/healthz"
    assert links.browser_ws("/ball") == "/user/learner/proxy/8765/ball"
    # The kernel's own clients still connect straight to the port.
    assert links.ws("/ball") == "ws://127.0.0.1:8765/ball"
    assert links.url("/api/ball") == "http://127.0.0.1:8765/api/ball"


def test_the_rooms_address_is_direct_even_on_a_hub():
    links = Links("0.0.0.0", 8765, pages=PAGES, proxy=detect_proxy(HUB)).at("10.0.0.5")
    assert links.page("ball") == "http://10.0.0.5:8765/#ball"


def test_the_token_rides_in_the_fragment_of_a_proxied_link_too():
    links = Links("127.0.0.1", 8765, "s e/cret", PAGES, detect_proxy(HUB))
    assert links.page("echo") == "/user/learner/proxy/8765/#echo&token=s%20e%2Fcret"


@pytest.mark.parametrize("prefix", ["/user/learner", "user/learner/", "/user/learner//"])
def test_the_hub_prefix_is_normalised(prefix):
    proxy = detect_proxy({"JUPYTERHUB_SERVICE_PREFIX": prefix})
    assert proxy.base(1) == "/user/learner/proxy/1/"


def test_an_explicit_public_url_wins_and_becomes_wss_for_https():
    env = {**HUB, "WORKSHOP_PUBLIC_URL": "https://hub.example/user/ada/proxy/{port}"}
    links = Links("127.0.0.1", 8765, pages=PAGES, proxy=detect_proxy(env))
    assert links.page("ball") == "https://hub.example/user/ada/proxy/8765/#ball"
    assert links.browser_ws("/ball") == "wss://hub.example/user/ada/proxy/8765/ball"
    assert detect_proxy(env).rule == "WORKSHOP_PUBLIC_URL"


def test_a_public_url_without_port_is_one_servers_address():
    proxy = detect_proxy({"WORKSHOP_PUBLIC_URL": "http://localhost:9000"})  # an ssh tunnel
    assert Links("127.0.0.1", 8765, proxy=proxy).browser_ws("echo") == "ws://localhost:9000/echo"


@pytest.mark.parametrize("value", ["direct", "DIRECT", "none", "off"])
def test_public_url_direct_turns_every_rule_off(value):
    assert detect_proxy({**HUB, "WORKSHOP_PUBLIC_URL": value}) is None


@pytest.mark.parametrize("value", ["hub.example/user/x", "ftp://hub/", "https://"])
def test_a_public_url_that_is_no_address_is_a_clear_error(value):
    with pytest.raises(ValueError, match=r"WORKSHOP_PUBLIC_URL=.*is not an address"):
        detect_proxy({"WORKSHOP_PUBLIC_URL": value})


def test_browser_ws_keeps_the_query_and_leaves_the_rooms_server_alone():
    assert browser_ws("ws://127.0.0.1:9/v1/realtime?model=m", HUB) == (
        "/user/learner/proxy/9/v1/realtime?model=m"
    )
    # A server elsewhere (the room's) is reached at its own address.
    assert browser_ws("ws://10.0.0.5:8765/ball", HUB) == ""


def _jupyter(tmp_path, **info):
    """A runtime dir holding a Jupyter server's info file, as `jupyter lab` writes it."""
    (tmp_path / "jpserver-4242.json").write_text(json.dumps(info))
    return {"JPY_PARENT_PID": "4242", "JUPYTER_RUNTIME_DIR": str(tmp_path)}


def test_a_remote_jupyter_with_a_base_url_is_proxied(tmp_path):
    env = _jupyter(tmp_path, base_url="/lab-a/", hostname="127.0.0.1")
    assert detect_proxy(env).base(8765) == "/lab-a/proxy/8765/"
    env = _jupyter(tmp_path, base_url="/", hostname="0.0.0.0")
    assert detect_proxy(env).base(8765) == "/proxy/8765/"


def test_a_local_jupyter_is_direct(tmp_path):
    assert detect_proxy(_jupyter(tmp_path, base_url="/", hostname="localhost")) is None
    assert (
        detect_proxy({"JPY_PARENT_PID": "4242", "JUPYTER_RUNTIME_DIR": str(tmp_path / "x")}) is None
    )


def test_a_started_server_shows_its_proxied_links(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/learner/")
    monkeypatch.delenv("WORKSHOP_PUBLIC_URL", raising=False)
    with start_server(port=0, name="test-links-hub") as server:
        shown = server._repr_html_()
        port = server.port
        assert server.links.ws("/echo") == f"ws://127.0.0.1:{port}/echo"
    assert f'href="/user/learner/proxy/{port}/#ball"' in shown
    assert f'href="/user/learner/proxy/{port}/healthz"' in shown
    assert f"127.0.0.1:{port}/#" not in shown and "JUPYTERHUB_SERVICE_PREFIX" in shown


# The ball view works out its own address in the browser (ball/view.js, socketAddress); run
# in Node.js, as tests/test_protocol_rules.py runs the view's reconnect schedule.
VIEW_CASES = [
    # (kernel's url, page, JupyterLab's baseUrl, kernel's hint) -> address
    ("ws://127.0.0.1:8765/ball", "http://127.0.0.1:8888/lab", "/", "", "ws://127.0.0.1:8765/ball"),
    ("ws://127.0.0.1:8765/ball", "http://localhost:8888/lab", "/", "", "ws://127.0.0.1:8765/ball"),
    (
        "ws://127.0.0.1:8765/ball",
        "https://hub.example/user/x/lab/tree/02.ipynb",
        "/user/x/",
        "",
        "wss://hub.example/user/x/proxy/8765/ball",
    ),
    (  # a page on loopback (a test, a tunnel) whose kernel says it is behind a hub
        "ws://127.0.0.1:8765/ball",
        "http://127.0.0.1:9/user/x/lab",
        "/user/x/",
        "/user/x/proxy/8765/ball",
        "ws://127.0.0.1:9/user/x/proxy/8765/ball",
    ),
    (  # no JupyterLab config on the page: the kernel's hint
        "ws://127.0.0.1:8765/ball",
        "http://example.org/lab",
        None,
        "/user/y/proxy/8765/ball",
        "ws://example.org/user/y/proxy/8765/ball",
    ),
    (  # the room's server is reached at its own address
        "ws://10.0.0.5:8765/ball",
        "https://hub.example/user/x/lab",
        "/user/x/",
        "",
        "ws://10.0.0.5:8765/ball",
    ),
    (  # WORKSHOP_PUBLIC_URL gave an absolute address
        "ws://127.0.0.1:8765/ball",
        "http://localhost:8888/lab",
        "/",
        "wss://h.example/u/proxy/8765/ball",
        "wss://h.example/u/proxy/8765/ball",
    ),
]


def test_the_ball_view_finds_its_address_from_the_page(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js runs the ball view's address rule here: apt-get install nodejs")
    view = tmp_path / "view.mjs"  # the module the widget ships, as its front end loads it
    view.write_text(view_module(), encoding="utf-8")
    script = f"""
        const view = await import({json.dumps(view.as_uri())});
        const cases = {json.dumps(VIEW_CASES)};
        console.log(JSON.stringify(cases.map(([url, page, baseUrl, hint]) =>
          view.socketAddress(url, {{ page: new URL(page), baseUrl, hint }}))));
    """
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [case[-1] for case in VIEW_CASES]


def test_the_ball_view_gets_the_kernels_hint(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/learner/")
    monkeypatch.delenv("WORKSHOP_PUBLIC_URL", raising=False)
    view = BallView("ws://127.0.0.1:8765/ball")
    assert (view.url, view.browser_url) == (
        "ws://127.0.0.1:8765/ball",
        "/user/learner/proxy/8765/ball",
    )


def _banner(*args: str, until: str = "Echo WebSocket", **env: str) -> str:
    """What ``serve`` prints, up to the line holding ``until`` (then it is killed)."""
    command = [sys.executable, "-u", "-m", "workshop_lib", "serve", "--port", "0", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    ) as process:
        banner = ""
        try:
            while until not in banner:
                line = process.stdout.readline()
                if not line:
                    break
                banner += line
        finally:
            process.kill()
    return banner


def test_serve_in_a_hub_terminal_prints_proxied_page_links():
    banner = _banner(JUPYTERHUB_SERVICE_PREFIX="/user/learner/")
    port = re.search(r"ws://127\.0\.0\.1:(\d+)/echo", banner).group(1)  # for the kernel's side
    assert f"/user/learner/proxy/{port}/#echo" in banner
    assert f"/user/learner/proxy/{port}/#room" in banner
    assert f"http://127.0.0.1:{port}/#" not in banner


def test_a_rooms_server_behind_tls_prints_its_public_address():
    banner = _banner(
        "--host", "0.0.0.0", "--new-token",
        until="WORKSHOP_TOKEN", WORKSHOP_PUBLIC_URL="https://room.example/",
    )  # fmt: skip
    token = re.search(r"Token: +(\S+)", banner).group(1)
    assert f"https://room.example/#chat&token={token}" in banner
    assert "WORKSHOP_SERVER=https://room.example\n" in banner


def test_serve_with_a_public_url_that_is_no_address_says_so():
    command = [sys.executable, "-m", "workshop_lib", "serve", "--port", "0"]
    env = {**os.environ, "WORKSHOP_PUBLIC_URL": "room.example"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2, result
    assert "WORKSHOP_PUBLIC_URL='room.example' is not an address" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_rooms_server_behind_tls_is_joined_with_wss():
    shared = SharedServer("https://room.example", "t")
    assert shared.links.ws("/ball") == "wss://room.example:443/ball"
    assert SharedServer("wss://room.example:8443").http_url == "https://room.example:8443"


def _handshake(port: int, host: str, origin: str) -> str:
    """The status line a WebSocket upgrade to /echo gets with these Host and Origin headers
    (what a proxy passes on from a hub's page)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET /echo HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return sock.makefile("rb").readline().decode().strip()


@pytest.mark.parametrize(
    ("env", "host", "origin", "status"),
    [
        ({}, "hub.example", "https://hub.example", "403"),  # a laptop: DNS rebinding's shape
        (HUB, "hub.example", "https://hub.example", "101"),  # the hub's page, through its proxy
        (HUB, "hub.example", "https://evil.example", "403"),
        (
            {"WORKSHOP_PUBLIC_URL": "https://room.example/"},
            "room.example",
            "https://room.example",
            "101",
        ),
    ],
)
def test_a_proxied_loopback_server_accepts_same_origin_pages(
    monkeypatch, env, host, origin, status
):
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "WORKSHOP_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with start_server(port=0, name="test-links-origin") as server:
        assert _handshake(server.port, host, origin).split()[1] == status
