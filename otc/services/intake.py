"""File intake: a FINRA file arriving by upload or from a shell → the inbox → a run."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings

from executions.dispatcher import dispatch
from executions.models import Execution
from executions.registry import registry
from otc import inbox

__all__ = ["INTAKE_PIPELINES", "stage_directory", "submit_file", "submit_local_file"]

#: The pipelines a file can be handed to.
INTAKE_PIPELINES = ("otc.full_etl", "otc.ingest_file")
_PLACEHOLDER = f"{inbox.UPLOADS}/pending"
#: A shell's own file has no upload limit.
_NO_LIMIT = 1 << 62


def submit_file(
    chunks: Iterable[bytes],
    name: str,
    *,
    tier: str,
    week: date | str,
    ats: bool,
    trigger_source: str,
    pipeline: str = "otc.full_etl",
    request_id: str | None = None,
    max_bytes: int | None = None,
) -> Execution:
    """Store a file's bytes in the inbox and dispatch ``pipeline`` for it.

    Raises ``InvalidParams`` (nothing stored) for bad params, and
    :class:`otc.inbox.UploadTooLarge` (nothing stored) past ``max_bytes``
    (default ``SPINE_UPLOAD_MAX_BYTES``).
    """
    if pipeline not in INTAKE_PIPELINES:
        raise ValueError(f"pipeline must be one of {', '.join(INTAKE_PIPELINES)}")
    params: dict[str, Any] = {"tier": tier, "week": str(week), "ats": ats}
    registry.get(pipeline).validate({**params, "path": _PLACEHOLDER})
    limit = settings.SPINE_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
    relative = inbox.store_stream(chunks, name, max_bytes=limit)
    try:
        return dispatch(
            pipeline,
            {**params, "path": relative},
            trigger_source=trigger_source,
            request_id=request_id,
        )
    except BaseException:
        inbox.remove(relative)
        raise


def submit_local_file(
    path: str | Path,
    *,
    tier: str,
    week: date | str,
    ats: bool,
    trigger_source: str,
    pipeline: str = "otc.full_etl",
) -> Execution:
    """The shell's intake: copy a file the operator names (any path they can read) into
    the inbox and dispatch it. A directory, FIFO or device is refused by name; the
    upload size limit does not apply to the operator's own file."""
    source = Path(path)
    with inbox.open_regular(source) as handle:
        return submit_file(
            inbox.read_chunks(handle),
            source.name,
            tier=tier,
            week=week,
            ats=ats,
            trigger_source=trigger_source,
            pipeline=pipeline,
            max_bytes=_NO_LIMIT,
        )


def stage_directory(directory: str | Path, names: Iterable[str]) -> tuple[str, list[str]]:
    """A shell's backfill directory as an inbox directory, and the names copied.

    A directory inside the inbox is used where it is (its inbox path is returned,
    nothing copied). Any other directory the operator names has the regular files
    among ``names`` copied into a new inbox directory ``backfills/<uuid>``.
    """
    source = Path(directory).expanduser()
    if not source.is_dir():
        raise NotADirectoryError(f"no such directory: {source}")
    root = inbox.inbox_dir()
    real = source.resolve()
    if real == root or root in real.parents:
        return inbox.check_relative(str(real.relative_to(root)) or "."), []
    target = f"{inbox.BACKFILLS}/{uuid.uuid4().hex}"
    (root / target).mkdir(parents=True)
    copied = []
    for name in names:
        file = source / name
        if not file.is_file():
            continue
        with inbox.open_regular(file) as handle:
            inbox.store_stream(inbox.read_chunks(handle), name, exact=f"{target}/{name}")
        copied.append(name)
    return target, copied
