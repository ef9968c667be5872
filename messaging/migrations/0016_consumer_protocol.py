# the KIP-848 consumer protocol (#15): group.protocol, group.remote.assignor and the state of
# the "consumer" protocol's coordinator on ConsumerGroup.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0015_brokers")]

    operations = [
        migrations.AddField(
            model_name="consumergroup",
            name="group_protocol",
            field=models.CharField(
                choices=[("classic", "Classic"), ("consumer", "Consumer")],
                default="classic",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="consumergroup",
            name="remote_assignor",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="consumergroup",
            name="consumer",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
