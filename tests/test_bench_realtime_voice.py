"""bench/realtime_voice.py: it runs, its bare server relays what the lesson sends, and it
prints the figures it promises (not how fast they are: that is the machine's)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location(
    "realtime_voice", ROOT / "bench" / "realtime_voice.py"
)
bench = importlib.util.module_from_spec(_spec)
sys.modules["realtime_voice"] = bench  # its dataclasses look their module up there
_spec.loader.exec_module(bench)


def test_the_recording_is_one_answer_in_audio_per_turn_paced_between_its_deltas():
    appends = bench.turn_appends(100)
    recorded = bench.record(appends, 2, 0.05)
    assert [bench.kind_of(f) for f in recorded["hello"]] == ["session.created"]
    assert [bench.kind_of(f) for f in recorded["update"]] == ["session.updated"]
    assert len(recorded["appends"]) == 2 * len(appends)  # one list per append sent
    sent = [f for frames in recorded["appends"] for f in frames]
    kinds = [bench.kind_of(f) for f in sent if f is not bench.PAUSE]
    for frame in sent:
        if frame is not bench.PAUSE:  # each frame's type is where kind_of reads it
            assert json.loads(frame)["type"] == bench.kind_of(frame)
    for kind in ("speech_started", "speech_stopped", "committed"):
        assert kinds.count(f"input_audio_buffer.{kind}") == 2
    done = [json.loads(f) for f in sent if f and bench.kind_of(f) == "response.done"]
    assert [d["response"]["status"] for d in done] == ["completed", "completed"]
    assert all(d["response"]["output_modalities"] == ["audio"] for d in done)
    # The pauses are the lesson's, between audio deltas: each follows an audio delta.
    for i, frame in enumerate(sent):
        if frame is bench.PAUSE:
            assert bench.kind_of(sent[i - 1]) == "response.output_audio.delta"
    deltas = kinds.count("response.output_audio.delta")
    assert sent.count(bench.PAUSE) == deltas - 2  # none after each answer's last delta


def figure(pattern: str, text: str) -> list[str]:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no line matching {pattern!r} in:\n{text}"
    return list(found.groups())


def test_the_quick_run_measures_both_servers_and_prints_its_figures():
    done = subprocess.run(
        [sys.executable, "bench/realtime_voice.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "load average" in out
    rows = {}
    for kind in ("bare", "workshop"):
        p50, p99, cpu, busy = figure(
            rf"^{kind} +([\d.]+) ms +([\d.]+) ms .* ([\d.]+) ms +([\d.]+) % ", out
        )
        rows[kind] = float(p50), float(p99), float(cpu), float(busy)
        assert 0 <= rows[kind][0] <= rows[kind][1]  # p50 <= p99 (bare: a fraction of a ms)
        assert rows[kind][2] > 0 and rows[kind][3] > 0  # the server's CPU, read from the OS
        (client,) = figure(rf"^client process during the {kind} rounds: ([\d.]+) % of a core", out)
        assert float(client) > 0
    answered = figure(r"^turns answered in audio: workshop (\d+), bare (\d+)", out)
    assert answered == ["4", "4"]
    assert rows["workshop"][0] > 0  # it synthesizes each answer: never instant
    ratio = figure(r"^workshop / bare: .* CPU per session-second ([\d.]+)x", out)
    assert float(ratio[0]) == pytest.approx(rows["workshop"][2] / rows["bare"][2], rel=0.02)
    assert figure(r"^goal p99 <= 200 ms: (met|MISSED)", out)
