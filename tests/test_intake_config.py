"""The intake settings: where the inbox is and how big an upload may be."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from spine.config import BASE_DIR, DEFAULT_INBOX_DIR, load_config

pytestmark = pytest.mark.embedded


def test_defaults() -> None:
    config = load_config({})
    assert config.inbox_dir == DEFAULT_INBOX_DIR == BASE_DIR / "var" / "inbox"
    assert config.upload_max_bytes == 256 * 1024 * 1024


def test_inbox_dir_absolute_or_under_the_project(tmp_path: Path) -> None:
    assert load_config({"SPINE_INBOX_DIR": str(tmp_path)}).inbox_dir == tmp_path
    assert load_config({"SPINE_INBOX_DIR": "data/in"}).inbox_dir == BASE_DIR / "data" / "in"
    assert load_config({"SPINE_INBOX_DIR": "  "}).inbox_dir == DEFAULT_INBOX_DIR


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"SPINE_UPLOAD_MAX_BYTES": "big"}, "SPINE_UPLOAD_MAX_BYTES='big' is not a whole number"),
        (
            {"SPINE_UPLOAD_MAX_BYTES": "0"},
            "SPINE_UPLOAD_MAX_BYTES='0' is out of range (use a whole number from 1 to",
        ),
        ({"SPINE_INBOX_DIR": "/etc/passwd"}, "SPINE_INBOX_DIR='/etc/passwd' exists and is not"),
        ({"SPINE_INBOX_DIR": "a\x00b"}, "SPINE_INBOX_DIR='a\\x00b' contains a NUL byte"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(names)):
        load_config(environ)
