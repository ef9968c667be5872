# Brokers and replication (#16): a room's brokers, a replicated partition's replicas, the
# ledger of records a leader change lost, and the topic and partition fields they need.
import django.db.models.deletion
from django.db import migrations, models


def demo_brokers(apps, schema_editor):
    """The demo room runs three brokers, as a freshly seeded one does (its topics keep one
    replica); other existing rooms keep their one broker until someone adds brokers."""
    room = apps.get_model("messaging", "Room").objects.filter(code="KAFKA7").first()
    cluster = apps.get_model("messaging", "Cluster")
    if room is not None and not cluster.objects.filter(room=room).exists():
        cluster.objects.create(room=room, brokers=[{"id": i, "state": "up"} for i in (1, 2, 3)])


class Migration(migrations.Migration):
    dependencies = [("messaging", "0014_lesson_builder")]

    operations = [
        migrations.AddField(
            model_name="topic",
            name="replication_factor",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="topic",
            name="min_insync_replicas",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="topic",
            name="unclean_leader_election_enable",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="partition",
            name="high_watermark",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="Cluster",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("brokers", models.JSONField(default=list)),
                ("replica_lag_time_max_ms", models.BigIntegerField(default=30000)),
                ("auto_leader_rebalance_enable", models.BooleanField(default=True)),
                ("leader_checked_ms", models.BigIntegerField(default=0)),
                (
                    "room",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="cluster",
                        to="messaging.room",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="PartitionReplicas",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.JSONField(default=dict)),
                (
                    "partition",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="replication",
                        to="messaging.partition",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="LostRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("topic", models.CharField(max_length=249)),
                ("partition", models.PositiveIntegerField()),
                ("offset", models.BigIntegerField()),
                ("key", models.CharField(blank=True, max_length=256, null=True)),
                ("value", models.CharField(blank=True, max_length=200, null=True)),
                ("acks", models.SmallIntegerField()),
                ("acknowledged", models.BooleanField()),
                ("leader_epoch", models.IntegerField()),
                ("election", models.CharField(max_length=8)),
                ("at_ms", models.BigIntegerField()),
                (
                    "room",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lost_records",
                        to="messaging.room",
                    ),
                ),
            ],
            options={"ordering": ["room_id", "-id"]},
        ),
        migrations.RunPython(demo_brokers, migrations.RunPython.noop),
    ]
