"""The results table on the terminal, and its copy in docs/benchmarks.md."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from bench.common import Result, Row

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
STATE = re.compile(r"<!-- bench:state (.*?) -->", re.DOTALL)
ORDER = ["fanout", "persistence", "browser", "weight", "classroom", "scale", "kafka"]
HEADER = ("benchmark", "figure", "baseline (same run)", "target", "met")


def table(results: list[Result]) -> str:
    rows = [HEADER] + [
        (r.name, r.figure, r.baseline, r.target, r.met) for result in results for r in result.rows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _load_state(text: str) -> dict:
    match = STATE.search(text)
    if not match:
        return {}
    try:
        return json.loads(match.group(1).replace("-\\->", "-->"))
    except ValueError:
        return {}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _render(state: dict) -> str:
    entries = [state[name] for name in ORDER if name in state]
    lines = [
        START,
        "<!-- Written by `make bench` (bench/report.py): edits inside these markers are lost. -->",
        "",
        "| benchmark | figure | baseline (same run) | target | met | run |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        run = f"{entry['machine']['date']}, {entry['mode']}"
        for row in entry["rows"]:
            cells = [row["name"], row["figure"], row["baseline"], row["target"], row["met"], run]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    machines: list[dict] = []
    for entry in entries:
        described = {k: v for k, v in entry["machine"].items() if k != "date"}
        if described not in machines:
            machines.append(described)
    lines += ["", "Machine" + ("s" if len(machines) > 1 else "") + ":", ""]
    for m in machines:
        lines.append(
            f"- {m['cpu']}, {m['cores']} cores; {m['os']}; Python {m['python']}, "
            f"SQLite {m['sqlite']}"
        )
    for entry in entries:
        lines += [
            "",
            f"### {entry['benchmark']} ({entry['machine']['date']}, {entry['mode']} run, "
            f"{entry['seconds']:.0f} s)",
            "",
        ]
        lines += [f"- {note}" for note in entry["notes"]]
    encoded = json.dumps(state, separators=(",", ":")).replace("-->", "-\\->")
    lines += ["", f"<!-- bench:state {encoded} -->", END]
    return "\n".join(lines)


def write_doc(results: list[Result], machine: dict[str, str], path: Path = DOC) -> None:
    """Replace the results region of docs/benchmarks.md, keeping earlier results of the
    benchmarks this run did not include."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n## Results\n\n"
    state = _load_state(text)
    for result in results:
        state[result.benchmark] = {
            "benchmark": result.benchmark,
            "mode": result.mode,
            "seconds": result.seconds,
            "machine": machine,
            "rows": [asdict(r) for r in result.rows],
            "notes": result.notes,
        }
    region = _render(state)
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + region + after
    else:
        text = text.rstrip("\n") + "\n\n" + region + "\n"
    path.write_text(text)


def crashed(benchmark: str, error: BaseException) -> Result:
    message = f"crashed: {type(error).__name__}: {str(error).strip().splitlines()[0][:120]}"
    return Result(
        benchmark, [Row(benchmark, message, "-", "-", "crashed")], [message], crashed=True
    )
