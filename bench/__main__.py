"""`python -m bench [--quick] [BENCHMARK ...]`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import browser, classroom, fanout, kafka_wire, persistence, scale, weight
from bench.common import machine
from bench.report import ORDER, crashed, table, write_doc

BENCHMARKS = {
    "fanout": fanout.run,
    "persistence": persistence.run,
    "browser": browser.run,
    "weight": weight.run,
    "classroom": classroom.run,
    "scale": scale.run,
    "kafka": kafka_wire.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help="any of: " + ", ".join(ORDER) + " (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short durations, for a smoke run (does not write the docs)",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md (default: yes, except with --quick)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in ORDER]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(ORDER)}")
    chosen = [name for name in ORDER if name in (args.benchmarks or ORDER)]
    write = (not args.quick) if args.write is None else args.write
    mode = "quick" if args.quick else "full"
    about = machine()
    print(f"LogLab benchmarks ({mode}): {', '.join(chosen)}", flush=True)
    print(
        f"machine: {about['cpu']}, {about['cores']} cores, Python {about['python']}, "
        f"SQLite {about['sqlite']}, {about['date']}",
        flush=True,
    )

    results = []
    with tempfile.TemporaryDirectory(prefix="loglab-bench-") as scratch:
        for name in chosen:
            print(f"\n== {name} ...", flush=True)
            tmp = Path(scratch) / name
            tmp.mkdir()
            started, load_before = time.monotonic(), os.getloadavg()[0]
            try:
                result = BENCHMARKS[name](quick=args.quick, tmp=tmp)
            except Exception as error:  # noqa: BLE001 - reported, and the exit status says so
                traceback.print_exc()
                result = crashed(name, error)
            result.mode, result.seconds = mode, time.monotonic() - started
            result.notes.append(
                f"Load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, "
                f"on {os.cpu_count()} cores: anything else running on the machine (a test suite, "
                "a build) shows up in these figures."
            )
            results.append(result)
            for note in result.notes:
                print(f"   {note}", flush=True)

    print("\n" + table(results))
    if write:
        write_doc(results, about)
        print("\nwritten to docs/benchmarks.md")
    return 1 if any(r.crashed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
