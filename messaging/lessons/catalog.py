"""The lesson files in `lessons/`, loaded into `Lesson` rows.

The files are the source of truth: loading overwrites each lesson's row from its file (an
edit made in the admin lasts until the next load). A row whose file is gone is deleted, so
the list never offers a lesson nobody can reload; rooms that were on it keep running, their
`lesson` set to null by the foreign key. A file that does not validate stops the whole load
before anything is written, with the file, the place and the reason.

Lessons instructors build in the browser (`AuthoredLesson`) are played from `Lesson` rows too,
written by `lesson_row_store` from the same validated spec; their slugs hold "--", which no
file's slug can, and loading the files neither overwrites nor deletes them.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

from messaging.lessons.spec import LessonFormatError, LessonSpec, lesson_parse, spec_to_dict
from messaging.models import Lesson

LESSONS_DIR = Path(settings.BASE_DIR) / "lessons"


def lesson_files(directory: Path | None = None) -> list[Path]:
    """The lesson files of `directory` (the repository's `lessons/`), in name order."""
    directory = LESSONS_DIR if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(path)


def lesson_files_parse(directory: Path | None = None) -> list[LessonSpec]:
    """Every lesson file parsed and validated; raises LessonFormatError on the first bad one."""
    specs: list[LessonSpec] = []
    seen: dict[str, str] = {}
    for path in lesson_files(directory):
        shown = _shown_path(path)
        spec = lesson_parse(path.read_text(encoding="utf-8"), path=shown)
        if spec.slug in seen:
            raise LessonFormatError(shown, "slug", f"{seen[spec.slug]} has the same slug")
        seen[spec.slug] = shown
        specs.append(spec)
    return specs


@transaction.atomic
def lessons_load(directory: Path | None = None) -> list[Lesson]:
    """Upsert a `Lesson` per file (by slug) and delete the rows whose file is gone."""
    where = LESSONS_DIR if directory is None else Path(directory)
    if not where.is_dir():
        # A mistyped directory must not read as "every lesson file is gone".
        raise LessonFormatError(str(where), "", "no such directory")
    specs = lesson_files_parse(directory)
    lessons = [lesson_row_store(spec, slug=spec.slug, source_path=spec.path) for spec in specs]
    Lesson.objects.filter(authored__isnull=True).exclude(slug__in=[s.slug for s in specs]).delete()
    return lessons


def lesson_row_store(spec: LessonSpec, *, slug: str, source_path: str) -> Lesson:
    """The playable row of a validated lesson (a file's, or a built one's under its own slug)."""
    lesson, _ = Lesson.objects.update_or_create(
        slug=slug,
        defaults={
            "title": spec.title,
            "order": spec.order,
            "spec": spec_to_dict(spec),
            "source_path": source_path,
        },
    )
    return lesson
