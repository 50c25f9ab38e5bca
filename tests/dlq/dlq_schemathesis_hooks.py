"""Schemathesis hook for the dead-letter rule a schema cannot state: edited params must
suit the letter's own pipeline, which depends on the letter in the path. Generated
edit-and-replay requests with params are dropped (the server rightly answers most with
a 400, which the fixed-path tests check); empty params (the pipeline's defaults) and
bodies that are not objects stay. Loaded with the suite's other hooks
(``tests.support.schemathesis_hooks``).
"""

from __future__ import annotations

from typing import Any

import schemathesis

EDIT_PATH = "/api/v1/dlq/{id}/edit-and-replay/"


def kept(case: Any) -> bool:
    """Whether a generated request stays in the run."""
    if getattr(case, "path", "") != EDIT_PATH or not isinstance(case.body, dict):
        return True
    params = case.body.get("params")
    return not isinstance(params, dict) or params == {}


@schemathesis.hook("filter_case")
def keep_dead_letter_edits_the_schema_can_judge(ctx: Any, case: Any) -> bool:
    return kept(case)
