# One row per open student page (messaging.models.StudentPage): presence shared by every
# server process, written by hand into the file reserved for it.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0008_lesson_progress_name")]

    operations = [
        migrations.CreateModel(
            name="StudentPage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("page_id", models.CharField(max_length=200, unique=True)),
                ("owner", models.CharField(max_length=200)),
                ("seen_at", models.DateTimeField()),
                (
                    "student",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pages",
                        to="messaging.student",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["seen_at"], name="student_page_seen_at")],
            },
        ),
    ]
