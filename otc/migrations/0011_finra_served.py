"""Captures record whether FINRA's Query API still serves their week (the archive guarantee)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("otc", "0010_archive_first_partitions"),
    ]

    operations = [
        migrations.AddField(
            model_name="capture",
            name="finra_served",
            field=models.BooleanField(
                blank=True,
                help_text="Whether FINRA's Query API still serves this week (null: never checked).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="capture",
            name="finra_last_seen",
            field=models.DateField(
                blank=True,
                help_text="Last day a sync found the week served by FINRA.",
                null=True,
            ),
        ),
    ]
