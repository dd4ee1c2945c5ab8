"""Notebook 08 in a real JupyterLab in Chromium, cell by cell as a learner runs it, its
outputs read after each cell: the engine line, the spoken answer's events in the service's
order, three players with sound, the timelines drawn (ink in every part), turn detection's
events, the refused 50 ms commit, the cancelled answer and its transcript cut by the
truncate, an ephemeral key minted and a made-up one refused, and the three exercises as
shipped. The notebook's one execution in a browser in the suite.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import jupyterlab
from tests.browser.jupyterlab import (
    JupyterLab,
    code_outputs,
    error_outputs,
    ink,
    open_notebook,
    output_images,
    painted_image,
    run_cell,
)
from tests.kernel import NOTEBOOKS, code_cells

lab = jupyterlab.lab
lab_page = jupyterlab.lab_page

pytestmark = pytest.mark.browser

NOTEBOOK = "08-voice.ipynb"

# Each code cell, in order: a text that picks it out, and what its output must hold.
CELLS: list[tuple[str, tuple[str, ...]]] = [
    ("server = join_room_server() or start_server()", ("Realtime endpoint: ws://",)),
    ('print("speech engine:"', ("speech engine: ", "characters of base64", "('Paris', ")),
    ("def waveform(", ("<audio",)),
    (
        'SPEAK = {"type": "realtime", "output_modalities": ["audio"]}',
        (
            "response.content_part.added\ntranscript and audio deltas",
            "response.output_audio.done\nresponse.output_audio_transcript.done",
            "transcript: 'You said",
            "<audio",
        ),
    ),
    ("async def turns(", ("input_audio_buffer.speech_started", "input_audio_buffer.committed")),
    ("busy_room = ", ("threshold 0.2: ['speech_started']", "<audio")),
    ('{"prefix_padding_ms": 0}', ("{'silence_duration_ms': 1500}  turns (ms): [[",)),
    ("append(audio=pcm_to_b64(silence(50)))", ("input_audio_buffer_commit_empty · ",)),
    ("press = say(", ("committed item_", "answer: I heard 2.0 seconds of speech.")),
    (
        "LISTEN_AND_SPEAK = {",
        (
            "response.done: cancelled turn_detected",
            "the model remembers saying: 'You said",
            "truncated at ",
            "now it remembers saying:",
        ),
    ),
    ("client_secrets.create(", ("the key: ek_", 'its session: "You are the museum\'s kiosk."')),
    (
        "for key in (",
        ("ek_made-up-b...: refused, HTTP 401", "opened; the session's instructions"),
    ),
    ("from IPython.display import Markdown", ("[The voice page](http",)),
    ("voice = VoiceWidget(server)", ()),
    ("q1.check(player)", ("replace every ____",)),
    ("# q1.hint()", ()),
    ("q2.check(push_to_talk)", ("replace every ____",)),
    ("# q2.hint()", ()),
    ("q3.check(TURN_DETECTION)", ("replace every ____",)),
    ("# q3.hint()", ()),
    ("voice.close()", ("stopped",)),
]


def _text(outputs: list[dict]) -> str:
    """What the outputs show as text: printed, text/plain, HTML and Markdown."""
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append("".join(output["text"]))
        for kind in ("text/plain", "text/html", "text/markdown"):
            value = output.get("data", {}).get(kind)
            if value:
                parts.append("".join(value))
    return "\n".join(parts)


def test_the_table_names_every_code_cell_once() -> None:
    cells = code_cells(NOTEBOOKS / NOTEBOOK)
    assert len(cells) == len(CELLS)
    for source, (text, _) in zip(cells, CELLS, strict=True):
        assert text in source and sum(text in other for other in cells) == 1, text


def test_08_voice_cell_by_cell(lab_page, lab: JupyterLab) -> None:
    page = lab_page
    open_notebook(page, lab, NOTEBOOK)
    seen = 0
    for text, expected in CELLS:
        run_cell(page, text)
        assert error_outputs(page) == [], text
        outputs = code_outputs(page)
        shown = _text(outputs[seen:])
        seen = len(outputs)
        for words in expected:
            assert words in shown, f"{text}: {words!r} not in\n{shown[-3000:]}"
        if text == "voice = VoiceWidget(server)":
            # The page's own code, mounted in the notebook, ready to connect.
            widget = page.locator(".voice").first
            widget.wait_for(timeout=30_000)
            expect(widget.get_by_test_id("voice-connect")).to_be_visible()
        if text == "busy_room = ":
            # The two timelines of one figure, and the one before it: drawn, not blank.
            pngs = output_images(page)
            assert len(pngs) == 3
            for _, png in pngs:
                assert min(ink(png, columns=3, rows=2)) > 0.005
            images = page.locator(".jp-OutputArea-output img")
            for k in range(images.count()):
                png = painted_image(page, images.nth(k), f"jupyterlab-08-plot-{k}")
                assert min(ink(png, columns=3, rows=2)) > 0.005
    assert page.page_errors == []
