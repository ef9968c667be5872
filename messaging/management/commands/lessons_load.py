from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from messaging.lessons.catalog import LESSONS_DIR, lessons_load
from messaging.lessons.spec import LessonFormatError


class Command(BaseCommand):
    help = (
        "Load every lesson file (lessons/NN-slug.toml) into the database, replacing what the "
        "admin changed; lessons whose file is gone are removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dir", type=Path, default=LESSONS_DIR, help="where the lesson files are"
        )

    def handle(self, *args, **options) -> None:
        try:
            lessons = lessons_load(options["dir"])
        except LessonFormatError as error:
            raise CommandError(f"No lesson was loaded: {error}") from None
        self.stdout.write(f"Loaded {len(lessons)} lesson(s) from {options['dir']}.")
