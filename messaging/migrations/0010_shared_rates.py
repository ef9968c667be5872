# Rate limits shared by every server process: a token bucket per key (messaging/infra/rates.py).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0009_presence")]

    operations = [
        migrations.CreateModel(
            name="RateBucket",
            fields=[
                ("key", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("tokens", models.FloatField()),
                ("updated", models.FloatField()),
                ("full_at", models.FloatField(db_index=True)),
            ],
        ),
    ]
