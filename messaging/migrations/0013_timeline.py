# The room timeline (#17): frames of a room's board and instructors' recordings.
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0012_kafka_clients"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TimelineRecording",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token", models.CharField(max_length=32, unique=True)),
                ("title", models.CharField(max_length=80)),
                ("first_seq", models.BigIntegerField(default=0)),
                ("last_seq", models.BigIntegerField(default=0)),
                ("running", models.BooleanField(default=True)),
                ("size_bytes", models.PositiveIntegerField(default=0)),
                ("started_at", models.DateTimeField(auto_now_add=True)),
                ("stopped_at", models.DateTimeField(blank=True, null=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="recordings", to="messaging.room")),
            ],
            options={"ordering": ["-started_at", "-pk"]},
        ),
        migrations.CreateModel(
            name="TimelineFrame",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField()),
                ("sim_time_ms", models.BigIntegerField(default=0)),
                ("keyframe", models.BooleanField(default=False)),
                ("data", models.JSONField(default=dict)),
                ("size_bytes", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="timeline_frames", to="messaging.room")),
                ("recording", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="frames", to="messaging.timelinerecording")),
            ],
            options={"indexes": [models.Index(fields=["room", "recording", "seq"], name="timeline_frame_seq")]},
        ),
    ]
