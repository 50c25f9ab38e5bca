"""Analytics indexes kept only where a query uses them (docs/otc.md, "Indexes of the
analytics tables"): three quality-report indexes dropped, the symbol summaries'
volume index extended to cover the rolling windows' read."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("otc", "0011_finra_served"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="qualityreport",
            name="otc_qr_week_tier",
        ),
        migrations.RemoveIndex(
            model_name="qualityreport",
            name="otc_qr_grade_week",
        ),
        migrations.RemoveIndex(
            model_name="symbolweeksummary",
            name="otc_sws_capture_volume",
        ),
        migrations.AlterField(
            model_name="qualityreport",
            name="prior_capture",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="otc.capture",
            ),
        ),
        migrations.AddIndex(
            model_name="symbolweeksummary",
            index=models.Index(
                fields=["capture", "-total_volume", "symbol", "total_trades"],
                name="otc_sws_capture_volume",
            ),
        ),
    ]
