"""Every address is built in one place."""

from __future__ import annotations

import pytest

from workshop_lib.lesson import Page
from workshop_lib.links import Links

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
