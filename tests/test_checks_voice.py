"""08's checks outside a kernel: the wrong answers the kernel test does not try, each failing
with what to do (a player that never stops its speaker, one that truncates another item,
settings that are not server VAD), and the check's speaker counting what it played."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.conftest import ROOT
from workshop_lib.checks import voice

SOLUTION = (ROOT / "workshop_lib" / "checks" / "solutions" / "08_player.py").read_text()


def player_from(source: str):
    """The ``player`` a variant of q1's solution defines (its check call left out)."""
    names: dict = {}
    exec(compile(source.replace("q1.check(player)", ""), "<player>", "exec"), names)
    return names["player"]


def test_a_player_that_keeps_playing_over_the_user_is_told_to_stop_first() -> None:
    source = SOLUTION.replace(
        "                playing.cancel()  # stop the sound at once: the user is speaking\n", ""
    )
    assert source != SOLUTION
    result = voice.q1.check(player_from(source))
    assert not result.ok
    assert "still playing when you sent the truncate" in result.message, result.message


def test_a_player_that_truncates_another_item_is_told_where_the_id_is() -> None:
    source = SOLUTION.replace('"item_id": item_id,', '"item_id": "item_mine",')
    assert source != SOLUTION
    result = voice.q1.check(player_from(source))
    assert not result.ok
    assert "you truncated item 'item_mine'" in result.message, result.message
    assert "response.output_audio.delta" in result.message


def test_settings_that_are_not_server_vad_are_refused_with_why() -> None:
    result = voice.q3.check({"type": "semantic_vad", "silence_duration_ms": 1000})
    assert not result.ok and 'keep "type": "server_vad"' in result.message
    result = voice.q3.check([("silence_duration_ms", 1000)])
    assert not result.ok and "a dict of turn_detection settings" in result.message
    result = voice.q3.check({"type": "server_vad", "silence_duration_ms": "long"})
    assert not result.ok and "the server refused these settings" in result.message, result.message


def test_the_speaker_counts_what_it_played_and_a_cancel_stops_the_count() -> None:
    async def main() -> tuple[float, float, float, bool]:
        speaker = voice.Speaker()
        await speaker.play(np.zeros(2400, np.int16))  # 100 ms, whole
        whole = speaker.heard_ms()
        task = asyncio.create_task(speaker.play(np.zeros(24000, np.int16)))  # 1 s, cut
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stopped = speaker.heard_ms()
        await asyncio.sleep(0.2)
        return whole, stopped, stopped - speaker.heard_ms(), speaker.playing

    whole, stopped, moved_after_stop, playing = asyncio.run(main())
    assert whole == 100
    assert 100 + 300 <= stopped < 100 + 1000  # the part heard of the cut second counts
    assert moved_after_stop == 0 and not playing
