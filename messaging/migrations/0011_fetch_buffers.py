# Reserved for one piece of work so that parallel changes do not fork the migration graph.
# A consumer's fetch buffer: what it fetched and did not poll yet, and its fetch session.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0010_shared_rates")]

    operations = [
        migrations.AddField(
            model_name="member",
            name="fetch_state",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="assignment",
            name="fetched_until",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
