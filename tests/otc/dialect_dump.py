"""Run the OTC ETL on the configured database and print its analytics as JSON.

Used by ``test_dialects.py`` in a subprocess on a fresh SQLite database, so the same
input can be compared with the PostgreSQL run in the test process::

    DATABASE_URL=sqlite:///tmp/x.sqlite3 python tests/otc/dialect_dump.py \\
        TIER WEEK FILE ATS [TIER WEEK FILE ATS ...]

``ATS`` is ``ats`` or ``non_ats``: which FINRA summary the file is.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")


def main(args: list[str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from tests.otc.etl_support import analytics_snapshot, run_etl

    call_command("migrate", verbosity=0)
    snapshots = []
    for i in range(0, len(args), 4):
        tier, week, path, summary = args[i : i + 4]
        result = run_etl(Path(path), tier=tier, week=week, ats=summary == "ats")
        snapshots.append(analytics_snapshot(result["capture_id"]))
    json.dump(snapshots, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
