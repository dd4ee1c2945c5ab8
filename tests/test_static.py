"""The browser's files are one piece (app/static.py): it serves a shell and lessons' folders
behind any websockets server, with no App around it."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from workshop_lib.app.static import StaticFiles
from workshop_lib.server.logs import Tally


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[int, StaticFiles]]:
    shell = tmp_path / "static"
    shell.mkdir()
    (shell / "index.html").write_text("<p>home</p>")
    (shell / "main.js").write_text("export {}")
    lesson = tmp_path / "shout_lesson"
    lesson.mkdir()
    (lesson / "shout.js").write_text("export default function mount() {}")
    (lesson / "server.py").write_text("SECRET = 1")
    files = StaticFiles(shell, Tally(logging.getLogger("workshop_lib.test_static"), "refused"))
    files.add_lesson("shout", lesson)

    def answer(connection: ServerConnection, request):
        path = request.path.partition("?")[0]
        return files.respond(connection, path) or connection.respond(404, "not a file\n")

    with serve(lambda ws: None, "127.0.0.1", 0, process_request=answer) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1], files
        server.shutdown()
    thread.join(5)


def fetch(port: int, path: str) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    result = response.status, response.getheader("Content-Type"), response.read()
    connection.close()
    return result


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/", 200, "text/html; charset=utf-8", b"<p>home</p>"),
        ("/static/main.js", 200, "text/javascript; charset=utf-8", b"export {}"),
        ("/lessons/shout/shout.js", 200, "text/javascript; charset=utf-8", b"export default"),
        ("/lessons/shout/server.py", 404, None, b"/api/pages"),  # Python is no browser file
        ("/lessons/nobody/shout.js", 404, None, b"Not found"),
        ("/static/../static/main.js", 404, None, b"Not found"),
        ("/static/a%00b.js", 400, None, b"no control characters"),
        ("/api/elsewhere", 404, None, b"not a file"),  # not a file path: left to the caller
    ],
)
def test_the_piece_serves_the_shell_and_the_lessons_files(site, path, status, content_type, body):
    port, _ = site
    got_status, got_type, got_body = fetch(port, path)
    assert got_status == status
    if content_type is not None:
        assert got_type == content_type
    assert body in got_body


def test_a_probe_is_logged_as_a_refusal(site, caplog):
    port, _ = site
    caplog.set_level(logging.WARNING, logger="workshop_lib")
    fetch(port, "/static/a%1bb.js")
    assert "refused (400): a control character in the path /static/'a\\x1bb.js'" in caplog.text
