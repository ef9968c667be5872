# The lesson builder (#17): lessons instructors build in the browser or import.
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import messaging.models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0013_timeline"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthoredLesson",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(max_length=64)),
                ("title", models.CharField(max_length=120)),
                ("toml", models.TextField()),
                ("error", models.TextField(blank=True)),
                (
                    "visibility",
                    models.CharField(
                        choices=[
                            ("private", "Only me (a draft)"),
                            ("classes", "My classrooms"),
                            ("public", "My classrooms and anyone with the link"),
                        ],
                        default="private",
                        max_length=16,
                    ),
                ),
                (
                    "token",
                    models.CharField(
                        default=messaging.models.share_token_new, max_length=32, unique=True
                    ),
                ),
                ("mark", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "lesson",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="authored",
                        to="messaging.lesson",
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="authored_lessons",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "room",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="messaging.room",
                    ),
                ),
            ],
            options={
                "ordering": ["-updated_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("owner", "slug"), name="authored_lesson_slug_per_owner"
                    )
                ],
            },
        ),
    ]
