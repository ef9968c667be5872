"""Loading the lesson files into the database, and the admin's guard on edited specs."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from messaging.admin import LessonAdminForm
from messaging.lessons.catalog import LESSONS_DIR, lesson_files, lessons_load
from messaging.lessons.spec import LessonFormatError, lesson_spec, spec_to_dict
from messaging.models import Lesson

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.django_db


@pytest.fixture
def lessons_dir(tmp_path):
    for path in lesson_files(FIXTURES):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_it_loads_the_repositorys_lessons_in_order():
    loaded = lessons_load()
    assert len(loaded) == len(lesson_files(LESSONS_DIR))
    assert list(Lesson.objects.values_list("slug", flat=True)) == [
        lesson.slug for lesson in sorted(loaded, key=lambda lesson: (lesson.order, lesson.slug))
    ]


def test_it_upserts_by_slug_and_removes_lessons_whose_file_is_gone(lessons_dir):
    (lesson,) = lessons_load(lessons_dir)
    assert lesson_spec(lesson).slug == "idle-consumers"
    assert lesson.source_path.endswith("01-idle-consumers.toml")
    Lesson.objects.filter(pk=lesson.pk).update(title="Edited in the admin")
    (again,) = lessons_load(lessons_dir)
    assert (again.pk, again.title) == (lesson.pk, "More consumers than partitions")
    (lessons_dir / "01-idle-consumers.toml").unlink()
    assert lessons_load(lessons_dir) == []
    assert not Lesson.objects.exists()


def test_it_loads_nothing_when_one_file_is_broken(lessons_dir):
    (lessons_dir / "02-broken.toml").write_text('slug = "broken"\n')
    with pytest.raises(LessonFormatError, match="02-broken.toml: a lesson needs 'title'"):
        lessons_load(lessons_dir)
    assert not Lesson.objects.exists()


def test_it_loads_from_the_command_line(lessons_dir):
    out = StringIO()
    call_command("lessons_load", "--dir", str(lessons_dir), stdout=out)
    assert "Loaded 1 lesson(s)" in out.getvalue()
    (lessons_dir / "01-idle-consumers.toml").write_text("slug = ")
    with pytest.raises(CommandError, match="No lesson was loaded: .*not valid TOML"):
        call_command("lessons_load", "--dir", str(lessons_dir))


def test_it_refuses_a_broken_spec_in_the_admin(lessons_dir):
    (lesson,) = lessons_load(lessons_dir)
    spec = spec_to_dict(lesson_spec(lesson))
    spec["solution"][0]["do"] = "teleport"
    form = LessonAdminForm(
        data={"slug": lesson.slug, "spec": json.dumps(spec), "source_path": ""},
        instance=lesson,
    )
    assert not form.is_valid()
    assert "unknown step 'teleport'" in " ".join(form.errors["spec"])
    spec["solution"][0]["do"] = "join"
    spec["slug"] = "other"
    form = LessonAdminForm(
        data={"slug": lesson.slug, "spec": json.dumps(spec), "source_path": ""},
        instance=lesson,
    )
    assert not form.is_valid()
    assert "must be the same" in " ".join(form.errors["spec"])


def test_it_keeps_the_lessons_when_the_directory_is_mistyped(lessons_dir):
    lessons_load(lessons_dir)
    with pytest.raises(LessonFormatError, match="no such directory"):
        lessons_load(lessons_dir / "nope")
    assert Lesson.objects.count() == 1


def test_it_saves_a_valid_spec_from_the_admin_with_its_title(lessons_dir, admin_client):
    (lesson,) = lessons_load(lessons_dir)
    spec = spec_to_dict(lesson_spec(lesson))
    spec["title"] = "Idle consumers, retitled"
    response = admin_client.post(
        f"/admin/messaging/lesson/{lesson.pk}/change/",
        {"slug": lesson.slug, "spec": json.dumps(spec), "source_path": lesson.source_path},
    )
    assert response.status_code == 302, response.content[:2000]
    lesson.refresh_from_db()
    assert lesson.title == "Idle consumers, retitled"
    assert lesson_spec(lesson).title == "Idle consumers, retitled"
