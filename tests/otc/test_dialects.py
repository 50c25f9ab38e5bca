"""PostgreSQL and SQLite compute identical analytics from the same input.

The PostgreSQL run happens in the test process; the SQLite run in a subprocess on a
fresh database file (``dialect_dump.py``), as the embedded default would do it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import connection

from otc.sample.generator import generate_weeks
from tests.otc.etl_support import analytics_snapshot, row, run_etl, write_file

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="compares PostgreSQL with SQLite"),
]

SCRIPT = Path(__file__).resolve().parent / "dialect_dump.py"


def on_sqlite(tmp_path: Path, project_root: Path, runs: list[tuple[str, str, Path, str]]) -> list:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'dialect.sqlite3'}"
    env["EXECUTION_BACKEND"] = "local"
    args = [str(part) for run in runs for part in run]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_postgresql_and_sqlite_agree(
    tmp_path: Path, project_root: Path, real_otc_file: Path
) -> None:
    start = date(2025, 9, 1)
    files = generate_weeks(
        tmp_path / "gen", tier="T2", start_week=start, weeks=7, rows=400, seed=11,
        malformed_ratio=0.02, ats=False,
    )  # fmt: skip
    edge = write_file(
        tmp_path,
        [
            row("TIES", "ZZZZ", 50, 5, tier="T2"),
            row("TIES", "MMMM", 50, 0, tier="T2"),
            row("ZERO", "AAAA", 0, 0, tier="T2"),
            row("ODDS", "AAAA", 1, 32, tier="T2"),
            row("ODDS", "BBBB", 2, 3, tier="T2"),
            row("ODDS", "CCCC", 200001, 200000, tier="T2"),
            row("ODDS", "AAAA", 9, 9, tier="T2"),  # duplicate
            *(row(f"FILL{i}", "BBBB", 10 + i, 1, tier="T2") for i in range(8)),
        ],
        "edge.psv",
    )
    runs = [
        ("T2", (start + timedelta(weeks=i)).isoformat(), f, "non_ats") for i, f in enumerate(files)
    ]
    runs += [
        ("T2", (start + timedelta(weeks=2)).isoformat(), files[3], "non_ats"),  # a "correction"
        ("T2", (start + timedelta(weeks=9)).isoformat(), edge, "non_ats"),
        ("OTC", "2025-12-15", real_otc_file, "ats"),  # FINRA's sample is the ATS summary
    ]

    on_postgres = [
        analytics_snapshot(
            run_etl(Path(path), tier=tier, week=week, ats=kind == "ats")["capture_id"]
        )
        for tier, week, path, kind in runs
    ]
    sqlite = on_sqlite(tmp_path, project_root, runs)

    assert len(sqlite) == len(on_postgres) == 10
    for i, (pg, lite) in enumerate(zip(on_postgres, sqlite, strict=True)):
        for section in pg:
            assert json.loads(json.dumps(pg[section])) == lite[section], (i, section)
    assert (
        on_postgres[-2]["rejects"][0]["reason"] == "duplicate symbol+MPID: ODDS/AAAA repeats line 5"
    )
    assert any(s["symbol_rolling"] for s in on_postgres)
