"""ball/bundle.py: browser files that import each other, written into one module (what an
anywidget's front end must be). The bundles are run in Node.js, as a browser would load them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from workshop_lib.ball.bundle import bundle


def run_module(text: str, tmp_path: Path, script: str) -> object:
    """Import ``text`` as a module in Node.js and print ``script``'s JSON value."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js runs the bundled modules here: apt-get install nodejs")
    module = tmp_path / "bundled.mjs"
    module.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [
            node,
            "--input-type=module",
            "-e",
            f"const m = await import({json.dumps(module.as_uri())});\n"
            f"console.log(JSON.stringify({script}));",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def folders(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    """Write ``files`` (served path -> text) under ``tmp_path``; the folders to bundle from."""
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return {"/static/": tmp_path / "static", "/lessons/x/": tmp_path / "lessons" / "x"}


# A diamond: the entry imports two files of the shell, and both import a third.
DIAMOND = {
    "/static/rules.js": "export const RULES = Object.freeze({ step: 2 });\n",
    "/static/twice.js": (
        'import { RULES } from "./rules.js";\n\n'
        "export function twice(n) {\n  return n * RULES.step;\n}\n"
    ),
    "/static/more.js": (
        'import { RULES } from "./rules.js";\n'
        "const OFFSET = 1; // not exported: stays private to the bundle\n"
        "export function more(n) {\n  return n + RULES.step + OFFSET;\n}\n"
    ),
    "/lessons/x/view.js": (
        'import { twice } from "../../static/twice.js";\n'
        'import {\n  more,\n} from "../../static/more.js";\n'  # one import over three lines
        'import { RULES } from "../../static/rules.js";\n\n'
        "export function answer(n) {\n  return more(twice(n)) + RULES.step;\n}\n"
        "export default { answer };\n"
    ),
}


def test_each_file_once_before_the_files_that_use_it(tmp_path):
    text = bundle("/lessons/x/view.js", folders(tmp_path, DIAMOND))
    headers = [line for line in text.splitlines() if line.startswith("// ---- ")]
    assert headers == [
        "// ---- /static/rules.js ----",
        "// ---- /static/twice.js ----",
        "// ---- /static/more.js ----",
        "// ---- /lessons/x/view.js ----",
    ]
    assert text.count("Object.freeze") == 1
    assert "import" not in text
    # The imported files' code as it is, less the export keyword; the entry keeps its exports.
    assert "function twice(n) {\n  return n * RULES.step;\n}" in text
    assert "export function twice" not in text and "export const RULES" not in text
    assert "export function answer" in text and "export default { answer };" in text


def test_the_bundle_runs_as_the_files_did(tmp_path):
    text = bundle("/lessons/x/view.js", folders(tmp_path, DIAMOND))
    # 5 -> twice 10 -> more 13 -> + 2 = 15; the default export and the named one agree.
    assert run_module(text, tmp_path, "[m.answer(5), m.default.answer(5), typeof m.twice]") == [
        15,
        15,
        "undefined",
    ]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (  # a renamed import: the inlined file would not define the new name
            {"/lessons/x/view.js": 'import { RULES as R } from "../../static/rules.js";\n'},
            "cannot inline the import of 'RULES as R'",
        ),
        (
            {"/lessons/x/view.js": 'import * as rules from "../../static/rules.js";\n'},
            "cannot inline",
        ),
        ({"/lessons/x/view.js": 'import "../../static/rules.js";\n'}, "cannot inline"),
        (
            {
                "/static/d.js": "export function e() {}\nfunction d() {}\n",
                "/lessons/x/view.js": 'import { d } from "../../static/d.js";\n',
            },
            "/lessons/x/view.js imports d, which /static/d.js does not export",
        ),
        (  # a dependency's default export: it would need a name in the bundle
            {
                "/static/d.js": "export function d() {}\nexport default d;\n",
                "/lessons/x/view.js": 'import { d } from "../../static/d.js";\n',
            },
            "/static/d.js: cannot inline 'export default d;'",
        ),
        (  # one page-wide scope: a name declared twice would be a SyntaxError in the browser
            {
                "/static/d.js": "export function d() {}\nconst STEP = 1;\n",
                "/lessons/x/view.js": 'import { d } from "../../static/d.js";\nconst STEP = 2;\n',
            },
            "STEP is declared in both /static/d.js and /lessons/x/view.js",
        ),
        (
            {
                "/static/a.js": 'import { b } from "./b.js";\nexport const a = 1;\n',
                "/static/b.js": 'import { a } from "./a.js";\nexport const b = 1;\n',
                "/lessons/x/view.js": 'import { a } from "../../static/a.js";\n',
            },
            "files that import each other",
        ),
        (
            {"/lessons/x/view.js": 'import { y } from "../../elsewhere/y.js";\n'},
            "/elsewhere/y.js: in none of the folders",
        ),
    ],
)
def test_what_it_cannot_inline_is_refused_with_a_reason(tmp_path, files, says):
    with pytest.raises(ValueError) as raised:
        bundle("/lessons/x/view.js", folders(tmp_path, {**DIAMOND, **files}))
    assert says in str(raised.value)
