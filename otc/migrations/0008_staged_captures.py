"""Staged captures: a capture state, when it became current, and why it failed.

Existing captures became current at ingest. Per (tier, week, ATS flag) they are
mapped so: a capture with computed analytics was promoted when it was ingested; the
latest such capture is current and each earlier one superseded by the next; a
capture never computed is failed (rejected if the quality gate graded it F), and
never answered. Backwards, every capture that is not current or superseded is
marked superseded at its own ingest, so the older code never serves it.
"""

from itertools import groupby
from typing import Any

from django.db import migrations, models

_KEY = ("tier", "week", "ats")
_UNFINISHED = "normalize or compute did not finish before captures were staged"


def _stage(apps: Any, schema_editor: Any) -> None:
    capture_model = apps.get_model("otc", "Capture")
    ordered = capture_model.objects.order_by(*_KEY, "ingested_at", "id")
    for _, group in groupby(ordered, key=lambda c: (c.tier, c.week, c.ats)):
        captures = list(group)
        good = [c for c in captures if c.checksum and c.computed_at is not None]
        for capture in captures:
            capture.promoted_at = capture.superseded_at = capture.superseded_by = None
            if capture in good:
                capture.state, capture.promoted_at = "current", capture.ingested_at
            elif capture.quality_grade == "F":
                capture.state = "rejected"
            else:
                capture.state, capture.failure = "failed", _UNFINISHED
        for older, newer in zip(good, good[1:], strict=False):
            older.state = "superseded"
            older.superseded_at, older.superseded_by = newer.promoted_at, newer
        fields = ["state", "promoted_at", "superseded_at", "superseded_by", "failure"]
        capture_model.objects.bulk_update(captures, fields)


def _unstage(apps: Any, schema_editor: Any) -> None:
    capture_model = apps.get_model("otc", "Capture")
    for capture in capture_model.objects.filter(state__in=["staged", "failed", "rejected"]):
        capture.superseded_at, capture.superseded_by = capture.ingested_at, None
        capture.save(update_fields=["superseded_at", "superseded_by"])


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0003_created_at_default"),
        ("otc", "0007_line_keyed_rows"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="capture", name="otc_capture_one_current"),
        migrations.AddField(
            model_name="capture",
            name="failure",
            field=models.TextField(
                blank=True,
                default="",
                help_text="Why the capture failed or was rejected.",
            ),
        ),
        migrations.AddField(
            model_name="capture",
            name="promoted_at",
            field=models.DateTimeField(
                blank=True, help_text="When the capture became the week's current one.", null=True
            ),
        ),
        migrations.AddField(
            model_name="capture",
            name="state",
            field=models.CharField(
                choices=[
                    ("staged", "Staged"),
                    ("current", "Current"),
                    ("superseded", "Superseded"),
                    ("failed", "Failed"),
                    ("rejected", "Rejected by the quality gate"),
                ],
                default="staged",
                max_length=16,
            ),
        ),
        migrations.RunPython(_stage, _unstage),
        migrations.AddConstraint(
            model_name="capture",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "current")),
                fields=("tier", "week", "ats"),
                name="otc_capture_one_current",
            ),
        ),
        migrations.AddConstraint(
            model_name="capture",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("promoted_at__isnull", True),
                        ("state__in", ("staged", "failed", "rejected")),
                        ("superseded_at__isnull", True),
                    ),
                    models.Q(
                        ("promoted_at__isnull", False),
                        ("state", "current"),
                        ("superseded_at__isnull", True),
                    ),
                    models.Q(
                        ("promoted_at__isnull", False),
                        ("state", "superseded"),
                        ("superseded_at__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="otc_capture_state_times",
            ),
        ),
    ]
