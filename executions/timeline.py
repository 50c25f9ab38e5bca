"""An execution's steps on a time axis: read from its events and children, drawn as SVG.

Steps are recorded as ``step_started`` / ``step_finished`` events (``data["step"]``
names the step); child executions (re-runs, fan-out) are steps too. The SVG is
server-drawn like :mod:`spine.charts`: one ``<rect class="spine-step">`` per step,
its name, status and duration in the ``data-`` attributes and the hover ``<title>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from executions.models import Execution, ExecutionStatus
from spine.text import human_duration
from spine.time import format_iso, format_shown, utc_now

STEP_STARTED = "step_started"
STEP_FINISHED = "step_finished"
CHILDREN_DRAWN = 50
STEP_COLOURS = {
    "succeeded": "#2e8540",
    "running": "#1d6fd1",
    "queued": "#3f7cac",
    "pending": "#8a8a8a",
    "failed": "#c0392b",
    "cancelled": "#6c6c6c",
    "timed_out": "#d35400",
}


@dataclass(frozen=True)
class Step:
    """One bar: what ran, from when to when (``end`` None while it runs)."""

    name: str
    start: datetime
    end: datetime | None
    status: str
    kind: str = "step"  # or "child"
    execution_id: str = ""

    @property
    def seconds(self) -> float | None:
        return (self.end - self.start).total_seconds() if self.end else None


def execution_steps(execution: Execution) -> list[Step]:
    """The execution's steps in start order: its step events, then its children."""
    events = list(
        execution.events.filter(type__in=(STEP_STARTED, STEP_FINISHED))
        .order_by("timestamp", "id")
        .values_list("type", "timestamp", "data")
    )
    steps: list[Step] = []
    open_step: tuple[str, datetime] | None = None

    def close(end: datetime | None, status: str) -> None:
        nonlocal open_step
        if open_step is not None:
            steps.append(Step(open_step[0], open_step[1], end, status))
            open_step = None

    for kind, when, data in events:
        name = str((data or {}).get("step", "step"))
        if kind == STEP_STARTED:
            close(when, ExecutionStatus.SUCCEEDED)  # a step without its own end ends here
            open_step = (name, when)
        elif open_step is not None and open_step[0] == name:
            close(when, ExecutionStatus.SUCCEEDED)
    if open_step is not None:
        if execution.is_terminal:  # the step the run ended in shares its outcome
            close(execution.finished_at, execution.status)
        else:
            close(None, ExecutionStatus.RUNNING)
    children = execution.children.order_by("created_at", "id")[:CHILDREN_DRAWN]
    for child in children:
        start = child.started_at or child.queued_at or child.created_at
        end = child.finished_at if child.is_terminal else None
        steps.append(
            Step(child.pipeline, start, end, child.status, kind="child", execution_id=str(child.pk))
        )
    steps.sort(key=lambda s: s.start)
    return steps


def step_timeline(execution: Execution, steps: list[Step] | None = None) -> SafeString:
    """The SVG timeline (``id="step-timeline"``): a bar per step on a time axis."""
    steps = execution_steps(execution) if steps is None else steps
    now = utc_now()
    origin = execution.started_at or execution.created_at
    if steps:
        origin = min(origin, *(s.start for s in steps))
    ends = [s.end or now for s in steps]
    finish = execution.finished_at if execution.is_terminal else now
    end = max([finish or now, *ends])
    span = max((end - origin).total_seconds(), 0.001)
    left, right, top, row_h = 150, 90, 30, 22
    width = 760
    plot_w = width - left - right
    height = top + row_h * max(len(steps), 1) + 30

    def x_at(moment: datetime) -> float:
        return left + plot_w * (moment - origin).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="step-timeline" class="spine-chart" '
        f'role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="11" data-steps="{len(steps)}">',
        f"<title>Steps of {escape(execution.pipeline)}</title>",
    ]
    axis_y = top + row_h * max(len(steps), 1) + 4
    for tick in range(5):
        x = left + plot_w * tick / 4
        label = "0 s" if tick == 0 else "+" + human_duration(span * tick / 4)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{axis_y}" stroke="#ccc"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" '
            f'fill="currentColor">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{left}" y="16" font-size="12" fill="currentColor">'
        f"from {escape(format_shown(origin))}</text>"
    )
    if not steps:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + 14}" text-anchor="middle" '
            f'fill="currentColor">no steps recorded</text>'
        )
    for index, step in enumerate(steps):
        y = top + index * row_h
        x0 = x_at(step.start)
        x1 = x_at(step.end or now)
        colour = STEP_COLOURS.get(step.status, "#777")
        duration = human_duration(step.seconds) if step.end else "running"
        label = step.name if step.kind == "step" else f"↳ {step.name}"
        tip = f"{step.name}: {duration} (from {format_iso(step.start)}, {step.status})"
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" fill="currentColor">'
            f"{escape(label[:24])}</text>"
            f'<rect class="spine-step" x="{x0:.1f}" y="{y + 3}" '
            f'width="{max(x1 - x0, 2):.1f}" height="{row_h - 6}" fill="{colour}" '
            f'data-step="{escape(step.name)}" data-status="{escape(step.status)}" '
            f'data-kind="{step.kind}" data-seconds="{step.seconds or 0:.3f}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<text x="{min(x1 + 4, width - right + 4):.1f}" y="{y + 14}" '
            f'fill="currentColor">{escape(duration)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


__all__ = ["Step", "execution_steps", "step_timeline"]
