"""Autobahn|Testsuite conformance of the workshop server's /echo, driven by kosoku.

kosoku (PyPI: ``pip install kosoku``) runs the Autobahn TestSuite's own case files with a
runner written in Rust, so no Python 2 and no Docker are needed. This script starts the
workshop server in this process (``start_server(port=0, ...)``), points kosoku's fuzzing
client at its ``/echo`` path, prints how each case group did and exits 1 if any case fails
that is not a known deviation of websockets (``KNOWN_DEVIATIONS`` below, explained in
docs/conformance.md).

    python bench/autobahn.py                   # the whole suite, about 20 s
    python bench/autobahn.py --cases '1.*' --cases 7.1.5
    python bench/autobahn.py --exclude '9.*'   # skip the large-message cases

The server runs with ``max_size`` 32 MiB (``--max-size``), as websockets' own compliance
server does: the suite sends messages of up to 16 MiB (9.1.6, 9.2.6), which the workshop's
default of 64 KiB would refuse with close 1009.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter, defaultdict
from typing import Any

DEFAULT_MAX_SIZE = 2**25  # 32 MiB, like websockets' compliance/asyncio/server.py

# Case id -> why websockets does not pass it. A failure of any other case fails the run.
KNOWN_DEVIATIONS = {
    "7.1.5": (
        "websockets treats a close in the middle of a fragmented message as a protocol error "
        "and answers 1002; the suite wants 1000 echoed back (upstream compliance notes)"
    ),
    **{
        case: (
            "websockets reassembles at most 4096 frames per message (WEBSOCKETS_MAX_FRAGMENTS, "
            "websockets/asyncio/messages.py) and closes with 1009 'too many fragments'"
        )
        for case in ("9.3.1", "9.3.2", "9.4.1", "9.4.2")
    },
}

# Autobahn's names for the case groups (kosoku/_report_assets.py, CaseCategories).
GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "9": "Limits/Performance",
    "10": "Misc",
    "12": "Compression (payloads)",
    "13": "Compression (parameters)",
}

OUTCOMES = ("pass", "non-strict", "informational", "unimplemented", "failed")


def outcome(result: Any) -> str:
    """One word for a case, as Autobahn's report colours it."""
    behavior, close = result.behavior.value, result.behavior_close.value
    if not result.passed and behavior != "UNIMPLEMENTED":
        return "failed"
    if behavior == "UNIMPLEMENTED":
        return "unimplemented"
    if "INFORMATIONAL" in (behavior, close):
        return "informational"
    if behavior == "NON-STRICT":
        return "non-strict"
    return "pass"


def _sort_key(case_id: str) -> list[int]:
    return [int(part) for part in case_id.split(".")]


def summarize(results: list[Any]) -> dict[str, Counter[str]]:
    """Outcome counts per case group (the case id's first number), in group order."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        table[result.case_id.split(".")[0]][outcome(result)] += 1
    return dict(sorted(table.items(), key=lambda item: int(item[0])))


def print_summary(results: list[Any]) -> None:
    table = summarize(results)
    header = f"{'group':<32}" + "".join(f"{name:>15}" for name in OUTCOMES) + f"{'total':>8}"
    print(header)
    print("-" * len(header))
    totals: Counter[str] = Counter()
    for group, counts in table.items():
        totals.update(counts)
        label = f"{group} {GROUPS.get(group, '')}"
        cells = "".join(f"{counts[name]:>15}" for name in OUTCOMES)
        print(f"{label:<32}{cells}{sum(counts.values()):>8}")
    print("-" * len(header))
    cells = "".join(f"{totals[name]:>15}" for name in OUTCOMES)
    print(f"{'all':<32}{cells}{sum(totals.values()):>8}")


def print_details(results: list[Any]) -> None:
    """Every case that is not a plain pass, with what the server did."""
    interesting = [r for r in results if outcome(r) not in ("pass", "unimplemented")]
    unimplemented = [r.case_id for r in results if outcome(r) == "unimplemented"]
    if interesting:
        print("\ncases that did not simply pass:")
    for r in interesting:
        note = KNOWN_DEVIATIONS.get(r.case_id, "") if outcome(r) == "failed" else ""
        print(
            f"  {r.case_id:<8} {outcome(r):<14} behavior={r.behavior.value} "
            f"close={r.behavior_close.value} server close code={r.remote_close_code} "
            f"({r.duration} ms): {r.result}"
        )
        if note:
            print(f"           known deviation: {note}")
    if unimplemented:
        print(
            f"\nunimplemented: {len(unimplemented)} cases "
            f"({unimplemented[0]} .. {unimplemented[-1]}): permessage-deflate, which the "
            "workshop server turns off (compression=None)"
        )


async def fuzz(url: str, cases: list[str] | None, exclude: list[str] | None, parallel: int):
    from kosoku import FailureError, run_fuzzingclient

    try:
        return await run_fuzzingclient(url, cases, exclude, concurrency=parallel)
    except FailureError as failure:  # the results ride on the exception
        return failure.results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        action="append",
        metavar="CASE",
        help="case id or glob, e.g. 1.1.1 or '9.*' (repeatable; default: the whole suite)",
    )
    parser.add_argument(
        "--exclude", action="append", metavar="CASE", help="case id or glob to leave out"
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        help=f"the server's max_size in bytes (default {DEFAULT_MAX_SIZE}; the workshop's "
        "own default is 65536)",
    )
    parser.add_argument(
        "--max-fragments",
        type=int,
        default=None,
        help="set WEBSOCKETS_MAX_FRAGMENTS for the server (websockets' default: 4096)",
    )
    parser.add_argument(
        "--parallel", type=int, default=1, help="cases run at once by kosoku (default 1)"
    )
    args = parser.parse_args()

    if args.max_fragments is not None:
        # websockets reads it once, when websockets.asyncio.messages is first imported.
        os.environ["WEBSOCKETS_MAX_FRAGMENTS"] = str(args.max_fragments)
    try:
        from importlib.metadata import version

        kosoku_version = version("kosoku")
    except Exception:
        print("kosoku is not installed: pip install kosoku", file=sys.stderr)
        return 2

    from _common import print_header

    from workshop_lib import start_server

    print_header("Autobahn|Testsuite (kosoku fuzzing client) against /echo")
    server = start_server(port=0, name="autobahn", max_size=args.max_size)
    try:
        url = server.links.ws("/echo")
        print(
            f"kosoku {kosoku_version}; server {url}, max_size {args.max_size}, "
            f"WEBSOCKETS_MAX_FRAGMENTS {os.environ.get('WEBSOCKETS_MAX_FRAGMENTS', '(default)')}"
        )
        print(f"cases: {args.cases or 'all'}; excluded: {args.exclude or 'none'}\n")
        started = time.monotonic()
        results = asyncio.run(fuzz(url, args.cases, args.exclude, args.parallel))
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    if not results:
        print("no case matched", file=sys.stderr)
        return 2
    results.sort(key=lambda r: _sort_key(r.case_id))
    print_summary(results)
    print_details(results)

    failed = {r.case_id for r in results if outcome(r) == "failed"}
    unexpected = sorted(failed - KNOWN_DEVIATIONS.keys(), key=_sort_key)
    known = sorted(failed & KNOWN_DEVIATIONS.keys(), key=_sort_key)
    print(f"\n{len(results)} cases in {elapsed:.1f} s")
    print(f"known deviations that failed: {', '.join(known) or 'none'}")
    if unexpected:
        print(f"FAIL: unexpected failures: {', '.join(unexpected)}")
        return 1
    print("PASS: no failure other than the known deviations")
    return 0


if __name__ == "__main__":
    # Not _common.run_main: importing _common imports websockets, which must wait until
    # --max-fragments has set its environment variable.
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
