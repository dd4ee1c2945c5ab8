"""Every style sheet of the course parses as CSS: one unclosed brace or a string broken over
two lines makes a browser drop every rule after it, silently (the page still draws, unstyled)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tinycss2

from workshop_lib.realtime.voice_widget import VoiceWidget

ROOT = Path(__file__).resolve().parent.parent
SHEETS = {
    str(path.relative_to(ROOT)): path.read_text()
    for folder in ("workshop_lib", "static")
    for path in sorted((ROOT / folder).glob("**/*.css"))
}
SHEETS["VoiceWidget._css"] = VoiceWidget._css


def problems(css: str) -> list[str]:
    """What a browser would stumble on: parse errors, and rules nested inside a rule's
    declarations (what an unclosed brace turns the rules after it into)."""
    found = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type == "error":
            found.append(f"line {rule.source_line}: {rule.message}")
        elif rule.type == "qualified-rule":
            for item in tinycss2.parse_blocks_contents(rule.content, skip_whitespace=True):
                if item.type == "error":
                    found.append(f"line {item.source_line}: {item.message}")
                elif item.type != "declaration" and item.type != "comment":
                    found.append(f"line {item.source_line}: a rule inside a rule (a missing }}?)")
        elif (
            rule.type == "at-rule" and rule.content is not None and rule.lower_at_keyword == "media"
        ):
            found += problems(tinycss2.serialize(rule.content))
    return found


def test_there_are_sheets_to_check():
    assert len(SHEETS) >= 2, SHEETS.keys()


@pytest.mark.parametrize("name", sorted(SHEETS))
def test_each_style_sheet_parses(name):
    assert problems(SHEETS[name]) == []


@pytest.mark.parametrize(
    "broken",
    [
        ".a { color: red;\n.b { color: blue; }",  # an unclosed brace
        '.a::before { content: "one\n two"; }\n.b { color: blue; }',  # a string over two lines
    ],
)
def test_the_check_catches_what_browsers_drop(broken):
    assert problems(broken) != []
