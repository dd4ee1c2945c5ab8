"""The voice page's core without a browser: its worklet's resampling to 24 kHz PCM16 and its
base64 (run in Node.js), and VoiceWidget's kernel side: keys from the route, one source
for the page and the widget, reports taken with care."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workshop_lib import start_server
from workshop_lib.realtime.server import RealtimeLesson
from workshop_lib.realtime.voice_widget import VoiceWidget

CORE = Path(__file__).resolve().parent.parent / "workshop_lib" / "realtime" / "voice-core.js"


def node(script: str) -> object:
    executable = shutil.which("node")
    if executable is None:
        pytest.fail("Node.js runs the voice page's audio code here: apt-get install nodejs")
    prelude = f"const core = await import({json.dumps(CORE.as_uri())});\n"
    result = subprocess.run(
        [executable, "--input-type=module", "-"],
        input=prelude + script,  # on stdin: a second of samples is too long an argument
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worklet_output(rate: int, signal: np.ndarray, channels: int = 1) -> np.ndarray:
    """What the page's worklet posts for ``signal`` (floats at ``rate``), fed in the audio
    thread's 128-frame blocks: the int16 samples of its 100 ms chunks, joined."""
    script = f"""
    const posted = [];
    class AudioWorkletProcessor {{
      constructor() {{ this.port = {{ postMessage: (buffer) => posted.push(buffer) }}; }}
    }}
    let Processor = null;
    new Function("AudioWorkletProcessor", "registerProcessor", "sampleRate", core.WORKLET)(
      AudioWorkletProcessor, (name, cls) => {{ Processor = cls; }}, {rate});
    const node = new Processor({{ processorOptions: {{ rate: 24000, chunk: 2400 }} }});
    const signal = Float32Array.from({json.dumps(signal.tolist())});
    for (let i = 0; i < signal.length; i += 128) {{
      const block = signal.subarray(i, i + 128);
      node.process([Array.from({{ length: {channels} }}, () => block)]);
    }}
    const out = [];
    for (const buffer of posted) out.push(...new Int16Array(buffer));
    console.log(JSON.stringify(out));
    """
    return np.array(node(script), dtype=np.int16)


def tone(rate: int, hz: float, seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_the_worklet_halves_48_khz_by_averaging_pairs_to_pcm16() -> None:
    signal = tone(48000, 440)
    out = worklet_output(48000, signal)
    assert len(out) == 24000  # one second: ten whole chunks of 100 ms
    pairs = signal.astype(np.float64).reshape(-1, 2).mean(axis=1)
    assert np.abs(out - np.round(pairs * 0x7FFF)).max() <= 1


@pytest.mark.parametrize("rate", [44100, 16000])
def test_the_worklet_resamples_other_rates_keeping_the_tone(rate: int) -> None:
    out = worklet_output(rate, tone(rate, 440), channels=2).astype(np.float64) / 32768
    assert len(out) == 24000
    # Same level (RMS of a sine at 0.5) and the same pitch (880 zero crossings a second).
    assert np.sqrt(np.mean(out**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    crossings = np.count_nonzero(np.diff(np.signbit(out[10:])))
    assert abs(crossings - 880) <= 4


def test_the_worklet_clips_instead_of_wrapping() -> None:
    out = worklet_output(48000, np.full(4800, 1.5, np.float32))
    assert len(out) == 2400 and set(out.tolist()) == {32767}


def test_base64_matches_pythons_both_ways() -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 1234, -4321], np.int16)
    encoded = base64.b64encode(samples.tobytes()).decode()
    result = node(
        f"""
    const pcm = Int16Array.from({json.dumps(samples.tolist())});
    console.log(JSON.stringify({{
      up: core.pcmToBase64(pcm.buffer),
      down: Array.from(core.base64ToFloats({json.dumps(encoded)})),
    }}));
    """
    )
    assert result["up"] == encoded
    assert result["down"] == pytest.approx((samples / 32768).tolist())


def test_the_widget_is_the_pages_core_with_glue() -> None:
    core = CORE.read_text(encoding="utf-8")
    assert VoiceWidget._esm.startswith(core)
    assert "export default" not in core  # the glue's default export is the only one
    # It imports nothing: a notebook page cannot reach the browser client's other files.
    assert not [line for line in core.splitlines() if line.startswith("import ")]


def test_the_kernel_mints_keys_through_the_route_with_the_token() -> None:
    lesson = RealtimeLesson()
    with start_server(port=0, token="widget-token", lessons=[lesson]) as server:
        widget = VoiceWidget(server)
        assert widget.url == f"{server.links.ws('/v1/realtime')}?model=workshop-local"
        first, second = widget.mint_key(), widget.mint_key()
        assert first.startswith("ek_") and second.startswith("ek_") and first != second
        assert lesson.keys.minted == 2
        widget._token = "not-the-token"
        with pytest.raises(RuntimeError, match="answered 401"):
            widget.mint_key()
        widget.close()
    with pytest.raises(RuntimeError, match=r"did not answer .* is it running"):
        widget.mint_key()


def test_reports_of_the_wrong_type_leave_the_counters_alone() -> None:
    with start_server(port=0, lessons=[RealtimeLesson()]) as server:
        widget = VoiceWidget(server)
    report = {"samples_scheduled": 4800, "ms_played": 200, "events": {"a": 1}, "state": "live"}
    widget._message({"type": "report", **report, "truncate_ms": 150})
    assert (widget.samples_scheduled, widget.ms_played, widget.truncate_ms) == (4800, 200, 150)
    widget._message(
        {
            "type": "report",
            "samples_scheduled": "many",
            "ms_played": True,
            "events": {"a": "x"},
            "truncate_ms": 1.5,
            "state": 3,
        }
    )
    assert (widget.samples_scheduled, widget.ms_played, widget.truncate_ms) == (4800, 200, 150)
    assert widget.events == {"a": 1} and widget.state == "live"
    widget._message(["not", "a", "dict"])
    widget.close()
