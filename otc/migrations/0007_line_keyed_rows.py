"""Raw and normalized rows keyed by their line: id = capture id x 2**32 + line number.

The primary key becomes the natural key, so the separate (capture, line) unique index
on raw rows goes (one index entry less per bulk row) and a capture's rows are one
key range. Existing rows get their line key first; the ids a sequence handed out
(far below 2**32) cannot collide with line keys (capture ids start at 1).
"""

from django.db import migrations, models

LINE_KEY = "capture_id * 4294967296 + line_no"


def _line_key_field() -> models.BigIntegerField:
    return models.BigIntegerField(
        editable=False, help_text="line_key(capture, line_no)", primary_key=True, serialize=False
    )


class Migration(migrations.Migration):
    dependencies = [("otc", "0006_bulk_id_cache")]

    operations = [
        migrations.RunSQL(
            [
                f"UPDATE otc_rawrow SET id = {LINE_KEY}",
                f"UPDATE otc_venuevolume SET id = {LINE_KEY}",
            ],
            migrations.RunSQL.noop,
        ),
        migrations.AlterModelOptions(name="rawrow", options={"ordering": ["id"]}),
        migrations.RemoveConstraint(model_name="rawrow", name="otc_rawrow_line"),
        migrations.AlterField(
            model_name="rawrow",
            name="id",
            field=_line_key_field(),
        ),
        migrations.AlterField(
            model_name="venuevolume",
            name="id",
            field=_line_key_field(),
        ),
    ]
