"""The voice page in real Chromium with a fake microphone playing real speech (eSpeak NG):
a short-lived key from the back-end route, server VAD hearing the speaker, the spoken answer
scheduled on the audio clock, and barge-in truncating the answer where it was heard.

Chromium loops the WAV it is given as the microphone, so each scene ends in a long silence:
the tests are done before it starts again. Each test launches its own Chromium (the WAV is
a launch flag); the module's ``browser`` fixture supplies Playwright and the skip rules.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import jupyterlab
from tests.browser.conftest import CHROMIUM_ARGS, find_chromium
from tests.browser.jupyterlab import (
    JupyterLab,
    error_outputs,
    open_notebook,
    printed_text,
    run_cell,
    run_cells_above,
    run_cells_from,
    screenshot,
)
from tests.conftest import ARTIFACTS
from tests.speech_audio import scene
from workshop_lib import start_server
from workshop_lib.realtime.audio import RATE
from workshop_lib.realtime.server import RealtimeLesson
from workshop_lib.realtime.speech import synthesize

lab = jupyterlab.lab

pytestmark = pytest.mark.browser

QUESTION = "What is the weather like in Paris today?"
LONG_ANSWER = (
    "Paris today is grey in the morning, with a light rain that comes and goes along the "
    "river, and then the clouds open in the afternoon and the sun comes out over the old "
    "roofs, warm enough for a walk in the gardens before the evening turns cool again."
)
WAIT_MS = 40_000  # turns take seconds of real-time audio; a loaded machine adds more


def fake_microphone(wav: Path) -> list[str]:
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",  # grants the microphone without a prompt
        f"--use-file-for-fake-audio-capture={wav}",
    ]


class RecordingRealtime(RealtimeLesson):
    """The Realtime lesson, noting the headers (as text) of every WebSocket handshake and
    plain HTTP request the core asks it about (maybe more than once for one request)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handshakes: dict[str, str] = {}  # Sec-WebSocket-Key -> the headers
        self.requests: set[str] = set()  # the route's requests: the headers

    def credential(self, request):
        key = request.headers.get("Sec-WebSocket-Key")
        if key is None:
            self.requests.add(f"{request.path}\n{request.headers}")
        else:
            self.handshakes[key] = str(request.headers)
        return super().credential(request)


@pytest.fixture
def talking(browser: Browser, request, tmp_path) -> Iterator[Callable[..., Page]]:
    """``talking(*scene_parts, host_rules=None)``: a page in a Chromium whose microphone plays
    that scene (tests.speech_audio.scene). Screenshot in test-artifacts/ afterwards."""
    launched: list[Browser] = []
    pages: list[Page] = []

    def open_page(*parts: str | int, extra_args: tuple[str, ...] = ()) -> Page:
        wav = scene(*parts).write(tmp_path / "microphone.wav")
        chromium = browser.browser_type.launch(
            executable_path=find_chromium(),
            headless=True,
            args=[*CHROMIUM_ARGS, *fake_microphone(wav), *extra_args],
        )
        launched.append(chromium)
        page = chromium.new_context(viewport={"width": 1200, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.page_errors = errors
        page.shot = False  # set by live_screenshot(): the fixture then takes none at the end
        pages.append(page)
        return page

    try:
        yield open_page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            for page in pages:
                if not page.shot:
                    live_screenshot(page, request.node.name)
        finally:
            for chromium in launched:
                chromium.close()


def live_screenshot(page: Page, name: str) -> None:
    """test-artifacts/<name>.png, taken while the server still runs (the tests call it
    before leaving the server's ``with``: after it, every page says "disconnected")."""
    screenshot(page, name)
    page.shot = True


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """On the server's loop: until ``condition()`` holds (it reads the lesson's state)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def counters(page: Page) -> dict:
    data = page.get_by_test_id("voice").evaluate("card => ({...card.dataset})")
    return {
        "state": data.get("state"),
        "key": data.get("keyKind"),
        "scheduled": int(data.get("samplesScheduled", 0)),
        "played_ms": int(data.get("msPlayed", 0)),
        "truncate_ms": int(data["truncateMs"]) if "truncateMs" in data else None,
        "events": json.loads(data.get("events", "{}")),
        "sent": json.loads(data.get("sent", "{}")),
    }


def wait_for_event(page: Page, kind: str, times: int = 1) -> None:
    page.wait_for_function(
        "([kind, times]) => (JSON.parse(document.querySelector('[data-testid=voice]')"
        ".dataset.events || '{}')[kind] || 0) >= times",
        arg=[kind, times],
        timeout=WAIT_MS,
    )


class Wire:
    """The page's WebSocket frames, as Chromium saw them: what the server sent and got."""

    def __init__(self, page: Page) -> None:
        self.received: list[dict] = []
        self.sent: list[dict] = []
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        ws.on("framereceived", lambda payload: self.received.append(json.loads(payload)))
        ws.on("framesent", lambda payload: self.sent.append(json.loads(payload)))

    def audio_samples(self) -> int:
        """Samples in every response.output_audio.delta the server sent."""
        return sum(
            len(base64.b64decode(e["delta"])) // 2
            for e in self.received
            if e["type"] == "response.output_audio.delta"
        )

    def of(self, kind: str, sent: bool = False) -> list[dict]:
        return [e for e in (self.sent if sent else self.received) if e["type"] == kind]


def answer_text(page: Page) -> str:
    return page.locator(".voice-transcript .assistant .said").first.text_content() or ""


def test_the_page_talks_with_a_short_lived_key_and_plays_the_whole_answer(talking) -> None:
    token = "voice-page-token"
    lesson = RecordingRealtime()
    with start_server(port=0, token=token, lessons=[lesson]) as server:
        page = talking(1000, QUESTION, 20_000)
        wire = Wire(page)
        page.goto(f"{server.http_url}/#voice&token={token}")
        page.get_by_test_id("voice-connect").click()
        wait_for_event(page, "response.done")
        answer = answer_text(page)
        # Played to the end on the audio clock: the page counts what it heard.
        expected = len(synthesize(answer).samples)
        page.wait_for_function(
            "n => Number(document.querySelector('[data-testid=voice]').dataset.msPlayed) >= n",
            arg=expected * 1000 // RATE - 20,
            timeout=WAIT_MS,
        )
        seen = counters(page)
        live_screenshot(page, "voice-answer")
        minted = lesson.keys.minted
        # Stop: the microphone and the connection go; Connect can start again.
        page.get_by_test_id("voice-stop").click()
        expect(page.get_by_test_id("voice")).to_have_attribute("data-state", "stopped")
        expect(page.get_by_test_id("voice-connect")).to_be_enabled()
        expect(page.get_by_test_id("voice-mute")).to_be_disabled()
        server.run(wait_until(lambda: lesson.counts.sessions == 0))

    assert answer.startswith("I heard ") and "seconds of speech" in answer
    events = seen["events"]
    assert events["input_audio_buffer.speech_started"] == 1
    assert events["input_audio_buffer.speech_stopped"] == 1
    assert events["input_audio_buffer.committed"] == 1
    # Every sample the server sent was scheduled, and it was the spoken answer: eSpeak's
    # samples for the same words (it carries a little state between calls: within 50 ms).
    assert seen["scheduled"] == wire.audio_samples() > 0
    assert abs(seen["scheduled"] - expected) <= RATE // 20, (seen["scheduled"], expected)
    assert seen["played_ms"] <= seen["scheduled"] * 1000 // RATE
    assert seen["truncate_ms"] is None and "conversation.item.truncate" not in seen["sent"]
    # The microphone went up in 100 ms chunks, and the session asked for audio and VAD.
    assert seen["sent"]["session.update"] == 1 and seen["sent"]["input_audio_buffer.append"] > 20
    # The key: minted once by the route (Bearer token), then the only credential on the wire.
    assert seen["key"] == "ephemeral" and minted == 1
    (handshake,) = lesson.handshakes.values()
    (route,) = lesson.requests
    assert route.startswith("/api/realtime/client_secret\n")
    assert f"Authorization: Bearer {token}" in route
    assert "openai-insecure-api-key.ek_" in handshake
    assert token not in handshake and "authorization" not in handshake.lower()
    assert page.page_errors == []


def test_speaking_over_the_answer_stops_it_and_truncates_where_it_was_heard(talking) -> None:
    answers = iter([LONG_ANSWER])

    def responder(text):  # a long answer to talk over, then short ones
        return next(answers, "Yes?")

    lesson = RecordingRealtime(responder)
    with start_server(port=0, lessons=[lesson]) as server:
        # The question, then a second sentence while the answer plays (it starts about
        # 700 ms after the question: the silence VAD waits for, and the hangover; 4 s
        # leave a loaded machine time to start it).
        page = talking(1000, QUESTION, 4000, "Wait, stop please.", 25_000)
        wire = Wire(page)
        page.goto(f"{server.http_url}/#voice")
        page.get_by_test_id("voice-connect").click()
        wait_for_event(page, "conversation.item.truncated")
        seen = counters(page)
        page.wait_for_timeout(500)  # on the audio clock: a stopped answer stays stopped
        later = counters(page)
        live_screenshot(page, "voice-barge-in")

    answer_ms = len(synthesize(LONG_ANSWER).samples) * 1000 // RATE
    events = seen["events"]
    assert events["input_audio_buffer.speech_started"] >= 2
    assert seen["sent"]["conversation.item.truncate"] == 1
    cut = seen["truncate_ms"]
    # Heard: more than nothing, much less than the answer (Q2 starts ~3.3 s into it).
    assert 300 <= cut <= 6000 < answer_ms, (cut, answer_ms)
    # What was played is what was truncated: the audio clock, frozen at the cut (unless
    # the short answer to the second sentence has begun meanwhile).
    assert seen["played_ms"] == cut
    if later["scheduled"] == seen["scheduled"]:
        assert later["played_ms"] == cut
    # On the wire: the truncate names the answer's item, and the server confirmed it.
    (sent,) = wire.of("conversation.item.truncate", sent=True)
    (item,) = [e["item"] for e in wire.of("response.output_item.added")][:1]
    assert sent["item_id"] == item["id"] and sent["content_index"] == 0
    assert sent["audio_end_ms"] == cut
    (confirmed,) = wire.of("conversation.item.truncated")
    assert confirmed["item_id"] == item["id"] and confirmed["audio_end_ms"] == cut
    # The server had sent more than was heard (the page stopped it, not the end of audio).
    first = [e for e in wire.of("response.output_audio.delta") if e["item_id"] == item["id"]]
    assert sum(len(base64.b64decode(e["delta"])) // 2 for e in first) * 1000 // RATE > cut
    truncate = page.locator(".voice-events li[data-type='conversation.item.truncate']")
    expect(truncate).to_contain_text(f"audio_end_ms={cut}")
    truncated = page.locator(".voice-events li[data-type='conversation.item.truncated']")
    expect(truncated).to_contain_text(f"audio_end_ms={cut}")
    # The words never heard are struck through, and some were heard.
    said = page.locator(".voice-transcript .assistant").first
    expect(said).to_have_class("turn assistant cut")
    unheard = said.locator(".unheard").count()
    words = said.locator("[data-at]").count()
    assert 0 < unheard < words
    assert page.page_errors == []


def test_a_page_on_plain_http_off_localhost_says_it_has_no_microphone(talking) -> None:
    lesson = RecordingRealtime()
    with start_server(port=0, lessons=[lesson]) as server:
        # A name that is not localhost, resolved to this machine: plain http there is not a
        # secure context, as a learner's page on a lab machine's address.
        page = talking(500, extra_args=("--host-resolver-rules=MAP voice.test 127.0.0.1",))
        page.goto(f"http://voice.test:{server.port}/#voice")
        assert page.evaluate("isSecureContext") is False
        page.get_by_test_id("voice-connect").click()
        problem = page.get_by_test_id("voice-problem")
        expect(problem).to_contain_text("getUserMedia needs a secure context")
        expect(problem).to_contain_text(f"http://localhost:{server.port}")
        expect(page.get_by_test_id("voice")).to_have_attribute("data-state", "stopped")
        assert lesson.keys.minted == 0 and lesson.handshakes == {} and lesson.requests == set()
        live_screenshot(page, "voice-insecure-context")
        expect(page.get_by_test_id("voice-connect")).to_be_enabled()


def test_the_voice_widget_talks_in_jupyterlab_with_a_key_from_the_kernel(
    talking, lab: JupyterLab
) -> None:
    """VoiceWidget(server) in a notebook: the same page code, the key minted by the kernel
    through the route (the token stays in the kernel), the counters reported back to it."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from workshop_lib import start_server\n"
            "from workshop_lib.realtime import RealtimeLesson, VoiceWidget\n"
            "server = start_server(port=0, token='widget-token', lessons=[RealtimeLesson()])\n"
            "voice = VoiceWidget(server)\n"
            "voice"
        ),
        nbformat.v4.new_code_cell(
            "lesson = server.lesson('realtime')\n"
            "print('report', voice.state, voice.events.get('response.done', 0),\n"
            "      voice.samples_scheduled > 0, voice.ms_played > 0, lesson.keys.minted)"
        ),
        nbformat.v4.new_code_cell("voice.close()\nserver.stop()"),
    ]
    nbformat.write(notebook, lab.root_dir / "voice-widget.ipynb")
    page = talking(1000, QUESTION, 20_000)
    try:
        open_notebook(page, lab, "voice-widget.ipynb")
        run_cells_above(page, "lesson = server.lesson")
        widget = page.locator(".voice").first
        widget.wait_for(timeout=WAIT_MS)
        handshakes: list[str] = []
        page.on("websocket", lambda ws: handshakes.append(ws.url))
        widget.get_by_test_id("voice-connect").click()
        page.wait_for_function(
            "() => (JSON.parse(document.querySelector('.voice').dataset.events || '{}')"
            "['response.done'] || 0) >= 1",
            timeout=WAIT_MS,
        )
        expect(widget.locator(".voice-transcript .assistant")).to_contain_text("I heard ")
        page.wait_for_timeout(1200)  # two reports to the kernel (every 500 ms)
        screenshot(page, "jupyterlab-voice-widget", widget)
        run_cell(page, "lesson = server.lesson")
        assert widget.get_attribute("data-key-kind") == "ephemeral"
        assert [url for url in handshakes if "/v1/realtime" in url]
        assert "report live 1 True True 1" in printed_text(page)
        run_cells_from(page, "voice.close()")
        assert error_outputs(page) == []
        assert page.page_errors == []
    finally:
        with contextlib.suppress(OSError):
            lab.shutdown_kernels()


def test_mute_sends_silence_so_the_server_hears_no_turn(talking) -> None:
    with start_server(port=0, lessons=[RealtimeLesson()]) as server:
        page = talking(3000, QUESTION, 3000)  # the question 3 s in, every 8 s or so
        page.goto(f"{server.http_url}/#voice")
        page.get_by_test_id("voice-connect").click()
        card = page.get_by_test_id("voice")
        expect(card).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        page.get_by_test_id("voice-mute").click()
        expect(card).to_have_attribute("data-muted", "true")
        start = counters(page)["sent"].get("input_audio_buffer.append", 0)
        # Twelve seconds of audio go up while muted: the question passes at least once.
        page.wait_for_function(
            "n => (JSON.parse(document.querySelector('[data-testid=voice]').dataset.sent)"
            "['input_audio_buffer.append'] || 0) >= n",
            arg=start + 120,
            timeout=WAIT_MS,
        )
        assert "input_audio_buffer.speech_started" not in counters(page)["events"]
        page.get_by_test_id("voice-mute").click()
        expect(card).to_have_attribute("data-muted", "false")
        wait_for_event(page, "input_audio_buffer.speech_started")
        live_screenshot(page, "voice-mute")


def test_an_error_event_is_one_line_that_says_what_to_do(talking) -> None:
    # Two events a second: the microphone's ten appends a second are refused.
    with start_server(port=0, lessons=[RealtimeLesson(burst=3, rate=2)]) as server:
        page = talking(500, QUESTION, 3000)
        page.goto(f"{server.http_url}/#voice")
        page.get_by_test_id("voice-connect").click()
        wait_for_event(page, "error")
        problem = page.get_by_test_id("voice-problem")
        expect(problem).to_contain_text("rate_limit_exceeded: Rate limit reached")
        expect(problem).to_contain_text("Slow down")
        assert problem.evaluate("p => p.getClientRects().length") == 1  # shown, one block
        live_screenshot(page, "voice-error-event")


def test_an_expired_key_is_refused_and_the_page_says_to_connect_again(talking) -> None:
    # Each reading of this clock is 700 s after the last: a key (600 s) has expired by
    # the time its handshake is checked.
    readings = itertools.count(time.time(), 700)
    lesson = RealtimeLesson(clock=lambda: next(readings))
    with start_server(port=0, lessons=[lesson]) as server:
        page = talking(500, QUESTION, 3000)
        page.goto(f"{server.http_url}/#voice")
        page.get_by_test_id("voice-connect").click()
        problem = page.get_by_test_id("voice-problem")
        expect(problem).to_contain_text("did not take the key", timeout=WAIT_MS)
        expect(problem).to_contain_text("press Connect for a new key")
        expect(page.get_by_test_id("voice")).to_have_attribute("data-state", "stopped")
        assert lesson.keys.minted == 1 and lesson.counts.sessions_total == 0
        live_screenshot(page, "voice-expired-key")


def test_a_token_server_asks_for_the_token_before_it_gives_a_key(talking) -> None:
    token = "voice-form-token"
    lesson = RecordingRealtime()
    with start_server(port=0, token=token, lessons=[lesson]) as server:
        page = talking(500, QUESTION, 3000)
        page.goto(f"{server.http_url}/#voice")  # no token in the link
        page.get_by_test_id("voice-connect").click()
        problem = page.get_by_test_id("voice-problem")
        expect(problem).to_contain_text("needs the workshop token")
        expect(page.get_by_test_id("auth-form")).to_be_visible()
        assert lesson.keys.minted == 0
        page.get_by_test_id("auth-token").fill("not-the-token")
        page.get_by_test_id("auth-submit").click()  # submitting connects at once
        expect(problem).to_contain_text("The server refused the token")
        expect(page.get_by_test_id("auth-reason")).to_contain_text("refused the token")
        assert lesson.keys.minted == 0 and lesson.handshakes == {}
        page.get_by_test_id("auth-token").fill(token)
        page.get_by_test_id("auth-submit").click()
        card = page.get_by_test_id("voice")
        expect(card).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(problem).to_be_hidden()
        live_screenshot(page, "voice-token-form")
        assert lesson.keys.minted == 1 and len(lesson.handshakes) == 1
        (handshake,) = lesson.handshakes.values()
        assert token not in handshake


def test_the_page_talks_through_a_hubs_proxy(talking, tmp_path, monkeypatch) -> None:
    """The voice page as a hub's learner opens it: through jupyter-server-proxy under a
    base URL, on a name other than localhost served over https (a secure context, which
    Chromium is told to take this plain-http name for), with every port but JupyterLab's
    refused. The key route's POST and the key's WebSocket both pass the proxy."""
    from tests.browser.test_hub import HUB_HOST, PREFIX, Fence

    token = "hub-voice-token"
    lesson = RecordingRealtime()
    args = ("--ServerApp.allow_remote_access=True",)
    # What a kernel on a hub has: the server then knows the proxy (links, origins).
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    with (
        jupyterlab.running_lab(tmp_path / "hub", base_url=PREFIX, args=args) as hub,
        start_server(port=0, token=token, lessons=[lesson]) as server,
    ):
        origin = f"http://{HUB_HOST}:{hub.port}"
        page = talking(
            1000,
            QUESTION,
            20_000,
            extra_args=(
                f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1",
                f"--unsafely-treat-insecure-origin-as-secure={origin}",
            ),
        )
        fence = Fence(page.context, hub)
        # Logged in to the hub's JupyterLab first (its cookie), as a learner arrives.
        page.goto(f"{origin}{PREFIX}api/status?token={hub.token}")
        page.goto(f"{origin}{PREFIX}proxy/{server.port}/#voice&token={token}")
        page.get_by_test_id("voice-connect").click()
        wait_for_event(page, "response.done")
        seen = counters(page)
        live_screenshot(page, "voice-behind-a-hub")
    assert seen["key"] == "ephemeral" and lesson.keys.minted == 1
    assert seen["events"]["input_audio_buffer.speech_stopped"] == 1
    assert seen["scheduled"] > 0
    (handshake,) = lesson.handshakes.values()
    assert "openai-insecure-api-key.ek_" in handshake and token not in handshake
    assert fence.refused == []
    assert page.page_errors == []
