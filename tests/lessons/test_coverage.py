"""Every point of the source notes is taught by a lesson, and the map in docs/lessons.md says which.

The notes (`docs/seed-notes.md`, copied verbatim from the commission) are parsed into points:
every bullet, every quoted line, every other plain line of the notes' body (the Prereq lines,
"ActiveMQ, RabbitMQ - also supports pub / sub modes." and the lead-ins) and every heading that
asks a question. Each must have a row in the table of `docs/lessons.md` naming lessons that exist
and that list the row's id in their `points`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "docs" / "seed-notes.md"
MAP = ROOT / "docs" / "lessons.md"
LESSONS = ROOT / "lessons"

LESSON_FILE = re.compile(r"^\d+-(?P<slug>[a-z0-9-]+)\.toml$")
ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$")
SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
# A rule on its own line ends the notes' preamble; the points come after it.
BODY_RULE = re.compile(r"^(-{3,}|\*{3,}|_{3,})$")
BULLET = re.compile(r"^[-*+]\s+(?P<text>.+)$")
QUOTE = re.compile(r"^>\s*(?P<text>.*)$")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*$")


def normalise(text: str) -> str:
    """One spelling for comparing a note with its quote: no emphasis marks, single spaces."""
    text = text.replace("==", "")
    return " ".join(text.split()).strip()


@dataclass(frozen=True)
class Point:
    text: str
    line: int


def points_from_notes(notes: str) -> list[Point]:
    lines = notes.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if BODY_RULE.match(line.strip())), None)
    if start is None:
        raise AssertionError("docs/seed-notes.md has no '---' rule before the notes' body")
    points: list[Point] = []
    for number, raw in enumerate(lines[start:], start=start + 1):
        line = raw.strip()
        if not line or BODY_RULE.match(line):
            continue
        heading = HEADING.match(line)
        if heading:
            if heading["text"].rstrip().endswith("?"):
                points.append(Point(normalise(heading["text"]), number))
            continue
        match = BULLET.match(line) or QUOTE.match(line)
        text = match["text"] if match else line
        if normalise(text):
            points.append(Point(normalise(text), number))
    return points


@dataclass(frozen=True)
class Row:
    point_id: str
    point: str
    lessons: tuple[str, ...]


def rows_from_map(text: str) -> list[Row]:
    """The rows of the table whose header is `id | point ... | lesson`."""
    rows: list[Row] = []
    in_table = False
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if not match:
            in_table = False
            continue
        cells = [c.strip() for c in match["cells"].split("|")]
        if not in_table:
            header = [c.lower() for c in cells]
            in_table = len(header) == 3 and header[0] == "id" and header[1].startswith("point")
            continue
        if all(SEPARATOR_CELL.match(c) for c in cells):
            continue
        assert len(cells) == 3, f"docs/lessons.md: a map row needs 3 cells: {line!r}"
        point_id, point, lessons = cells
        quoted = re.fullmatch(r'"(?P<text>.*)"', point)
        assert quoted, f"docs/lessons.md: quote the point in double quotes: {line!r}"
        slugs = tuple(s.strip().strip("`").strip() for s in lessons.split(",") if s.strip())
        rows.append(Row(point_id.strip("`"), normalise(quoted["text"]), slugs))
    return rows


def lesson_points() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(LESSONS.glob("*.toml")):
        match = LESSON_FILE.match(path.name)
        assert match, f"{path.name}: a lesson file is named NN-slug.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        found[match["slug"]] = set(data.get("points", []))
    return found


@pytest.fixture(scope="module")
def notes() -> list[Point]:
    return points_from_notes(NOTES.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return rows_from_map(MAP.read_text(encoding="utf-8"))


def test_it_reads_every_kind_of_point_from_the_notes(notes):
    texts = {p.text for p in notes}
    # One of each: a bullet, a nested bullet, a quoted line, a Prereq line, a question heading.
    assert "fifo is an ordered queue" in texts
    assert "at most once (commit before processing)" in texts
    assert "Yes, but it is only possible if consumerGroups >= 2." in texts
    assert "queue pattern (1 producer 1 consumer)" in texts
    assert "Do we need retention of default 7 days ?" in texts
    # The preamble and plain headings are not points.
    assert not any(t.startswith("These are the notes") for t in texts)
    assert "Prereq" not in texts and "Producer" not in texts
    assert len(notes) >= 40


def test_it_parses_a_small_notes_file_the_same_way():
    notes = "Preamble.\n\n---\n\n## ==A==\n- one\n  - two\n> three\n### Q ?\nplain\n"
    assert [p.text for p in points_from_notes(notes)] == ["one", "two", "three", "Q ?", "plain"]


def test_it_finds_a_row_for_every_point_of_the_notes(notes, rows):
    mapped = {row.point for row in rows}
    missing = [f"line {p.line}: {p.text!r}" for p in notes if p.text not in mapped]
    assert not missing, (
        "These points of docs/seed-notes.md have no row in the table of docs/lessons.md:\n  "
        + "\n  ".join(missing)
    )


def test_it_quotes_only_points_that_are_in_the_notes(notes, rows):
    texts = {p.text for p in notes}
    strays = [f"{row.point_id}: {row.point!r}" for row in rows if row.point not in texts]
    assert not strays, "These rows quote text that is not a point of the notes:\n  " + "\n  ".join(
        strays
    )


def test_it_gives_each_point_one_stable_id(rows):
    ids = [row.point_id for row in rows]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"repeated ids: {repeated}"
    bad = [i for i in ids if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", i)]
    assert not bad, f"ids use lowercase letters, digits, dots and dashes: {bad}"


def test_it_names_only_lessons_that_exist_and_teach_the_point(rows):
    lessons = lesson_points()
    problems: list[str] = []
    for row in rows:
        if not row.lessons:
            problems.append(f"{row.point_id} ({row.point!r}) names no lesson")
        for slug in row.lessons:
            if slug not in lessons:
                problems.append(f"{row.point_id} ({row.point!r}): no lesson {slug!r} in lessons/")
            elif row.point_id not in lessons[slug]:
                problems.append(
                    f"{row.point_id} ({row.point!r}): lesson {slug!r} does not list "
                    f"{row.point_id!r} in its points"
                )
    assert not problems, "\n".join(problems)


def test_it_knows_every_point_id_a_lesson_claims(rows):
    known = {row.point_id for row in rows}
    claimed = {
        f"{slug}: {point_id}"
        for slug, points in lesson_points().items()
        for point_id in points
        if point_id not in known
    }
    assert not claimed, f"lessons list point ids with no row in docs/lessons.md: {sorted(claimed)}"
