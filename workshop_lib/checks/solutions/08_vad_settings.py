from workshop_lib.checks.voice import q3

# Longer than the 700 ms hesitation, shorter than the 1.5 s pause between the sentences.
TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 1000,
}

q3.check(TURN_DETECTION)
