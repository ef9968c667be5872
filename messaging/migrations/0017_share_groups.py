# Share groups (KIP-932, #15): a share group on a topic, its members and its share-partitions.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0016_consumer_protocol")]

    operations = [
        migrations.CreateModel(
            name="ShareGroup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("group_id", models.CharField(max_length=249)),
                (
                    "auto_offset_reset",
                    models.CharField(
                        choices=[("latest", "Latest"), ("earliest", "Earliest")],
                        default="latest",
                        max_length=8,
                    ),
                ),
                ("record_lock_duration_ms", models.PositiveIntegerField(default=30000)),
                ("delivery_count_limit", models.PositiveSmallIntegerField(default=5)),
                ("max_record_locks", models.PositiveIntegerField(default=200)),
                ("group_epoch", models.PositiveIntegerField(default=0)),
                ("member_counter", models.PositiveIntegerField(default=1)),
                ("totals", models.JSONField(blank=True, default=dict)),
                ("recent", models.JSONField(blank=True, default=list)),
                ("compare", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "room",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="share_groups",
                        to="messaging.room",
                    ),
                ),
                (
                    "topic",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="share_groups",
                        to="messaging.topic",
                    ),
                ),
            ],
            options={
                "ordering": ["group_id"],
            },
        ),
        migrations.CreateModel(
            name="ShareMember",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("member_id", models.CharField(max_length=128)),
                ("display_name", models.CharField(blank=True, max_length=40)),
                (
                    "kind",
                    models.CharField(
                        choices=[("simulated", "Simulated"), ("client", "Client")],
                        default="simulated",
                        max_length=16,
                    ),
                ),
                ("member_epoch", models.IntegerField(default=0)),
                ("join_order", models.PositiveIntegerField(default=0)),
                ("records_per_second", models.FloatField(default=1.0)),
                ("failure_rate", models.FloatField(default=0.0)),
                (
                    "on_failure",
                    models.CharField(
                        choices=[("release", "Release"), ("reject", "Reject")],
                        default="release",
                        max_length=8,
                    ),
                ),
                ("crashed", models.BooleanField(default=False)),
                ("budget_carry", models.FloatField(default=0.0)),
                ("polled", models.JSONField(blank=True, default=list)),
                ("counts", models.JSONField(blank=True, default=dict)),
                ("last_heartbeat_ms", models.BigIntegerField(default=0)),
                ("software", models.CharField(blank=True, max_length=80)),
                ("joined_at", models.DateTimeField(auto_now_add=True)),
                (
                    "group",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="members",
                        to="messaging.sharegroup",
                    ),
                ),
            ],
            options={
                "ordering": ["group_id", "join_order"],
            },
        ),
        migrations.CreateModel(
            name="SharePartitionState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.JSONField(default=dict)),
                ("due_ms", models.BigIntegerField(blank=True, null=True)),
                ("finished", models.JSONField(blank=True, default=list)),
                (
                    "group",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="partitions",
                        to="messaging.sharegroup",
                    ),
                ),
                (
                    "partition",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="messaging.partition",
                    ),
                ),
            ],
            options={
                "ordering": ["group_id", "partition_id"],
            },
        ),
        migrations.AddConstraint(
            model_name="sharegroup",
            constraint=models.UniqueConstraint(
                fields=("room", "group_id"), name="share_group_id_unique_in_room"
            ),
        ),
        migrations.AddConstraint(
            model_name="sharemember",
            constraint=models.UniqueConstraint(
                fields=("group", "member_id"), name="share_member_id_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="sharemember",
            constraint=models.CheckConstraint(
                condition=models.Q(("failure_rate__gte", 0), ("failure_rate__lte", 1)),
                name="share_member_failure_rate_in_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="sharepartitionstate",
            constraint=models.UniqueConstraint(
                fields=("group", "partition"), name="share_partition_unique_in_group"
            ),
        ),
    ]
