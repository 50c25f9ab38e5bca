"""``--ats`` / ``--non-ats``: which FINRA summary a file is, for every command that
writes or ingests one (nothing in a file's columns says which)."""

from __future__ import annotations

import argparse

__all__ = ["KIND", "add_summary_arguments"]

#: How a summary is named in a command's output.
KIND = {True: "ATS", False: "non-ATS"}


def add_summary_arguments(
    parser: argparse.ArgumentParser, subject: str, *, required: bool = True
) -> None:
    """``--ats`` / ``--non-ats``, mutually exclusive, as ``options["ats"]`` (``None``
    when neither is given and they are not ``required``)."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--ats",
        dest="ats",
        action="store_true",
        default=None,
        help=f"{subject} FINRA's ATS summary (alternative trading systems)",
    )
    group.add_argument(
        "--non-ats",
        dest="ats",
        action="store_false",
        default=None,
        help=f"{subject} FINRA's non-ATS (OTC) summary (member firms outside an ATS)",
    )
