"""A learner's walk, by hand: each notebook opened in JupyterLab in Chromium and run cell by
cell (one Run Cell at a time, as a learner presses Shift+Enter), with a screenshot of every code
cell and its output to look at, and each cell's errors printed. Not a test: a person reads the
pictures. The suite's JupyterLab tests assert what must hold.

    python -m tests.browser.walk OUTDIR [01 02 ...]     # from the repository's root
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser import jupyterlab as jl
from tests.conftest import ROOT as repo

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
wanted = sys.argv[2:]

notebooks = sorted(p.name for p in (repo / "notebooks").glob("[0-9][0-9]-*.ipynb"))
notebooks = [n for n in notebooks if not wanted or any(w in n for w in wanted)]
report = {}
with jl.running_lab(Path(tempfile.mkdtemp(prefix="walk-"))) as lab, sync_playwright() as pw:
    browser = pw.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    for name in notebooks:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors_seen = 0
        rows = []
        try:
            jl.open_notebook(page, lab, name)
            cells = json.loads((lab.root_dir / name).read_text())["cells"]
            for i, cell in enumerate(cells):
                if cell["cell_type"] != "code":
                    continue
                t = time.monotonic()
                page.evaluate(jl._JS_SELECT_CELLS, {"path": name, "start": i, "stop": i + 1})
                status = "ok"
                try:
                    jl._run(page, "notebook:run-cell", i, i + 1, 240_000)
                except AssertionError as exc:
                    status = f"RUN FAILED: {str(exc)[:600]}"
                errors = jl.error_outputs(page)
                new = errors[errors_seen:]
                errors_seen = len(errors)
                shot = out / f"{name[:2]}-cell{i:02d}.png"
                try:
                    cell_el = page.locator(".jp-Notebook .jp-Cell.jp-mod-active").first
                    cell_el.scroll_into_view_if_needed(timeout=5000)
                    page.wait_for_timeout(300)  # let widgets paint before the picture
                    cell_el.screenshot(path=str(shot), timeout=10000)
                except Exception as exc:
                    status += f" (no screenshot: {type(exc).__name__})"
                src = "".join(cell["source"])[:60].replace("\n", " | ")
                rows.append(
                    (i, round(time.monotonic() - t, 1), status, [e[:400] for e in new], src)
                )
                print(f"{name} cell {i:2d} {rows[-1][1]:5.1f}s {status[:80]} {src}", flush=True)
                for e in new:
                    print("    ERROR:", e[:400].replace("\n", "\n    "), flush=True)
        finally:
            report[name] = rows
            lab.shutdown_kernels()
            page.close()
    browser.close()
(out / "report.json").write_text(json.dumps(report, indent=1))
