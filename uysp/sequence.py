"""Which step a lead is due for, and when. Steps are 1-based; position counts steps sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from uysp.models import Lead, Template

MAX_STEPS = 3
MIN_GAP = timedelta(hours=24)


@dataclass(frozen=True)
class Due:
    step: int


@dataclass(frozen=True)
class Held:
    reason: str
    message: str


def step_delay(template: Template, fast_mode: bool) -> timedelta:
    if fast_mode:
        return timedelta(minutes=template.fast_delay_minutes)
    return timedelta(days=template.delay_days)


def next_step(
    lead: Lead,
    template_for_step: dict[int, Template],
    now: datetime,
    *,
    fast_mode: bool,
    last_sent_at: datetime | None,
) -> Due | Held:
    """The sequence gate and the 24-hour gate.

    `template_for_step` holds the lead's variant's templates; `last_sent_at` is the later of the
    lead's field and the ledger. A position with no last-sent time is never due: the caller
    repairs it (from the ledger, or from now) and the lead waits a full delay.
    """
    position = lead.sequence_position
    if position >= MAX_STEPS:
        return Held("sequence_complete", f"lead {lead.id}: all {MAX_STEPS} steps sent")
    if position > 0 and last_sent_at is None:
        return Held(
            "repaired_missing_last_sent",
            f"lead {lead.id}: SMS Sequence Position {position} with no SMS Last Sent At",
        )
    if last_sent_at is not None and now - last_sent_at < MIN_GAP:
        return Held("within_24h", f"lead {lead.id}: texted at {last_sent_at.isoformat()}")
    step = position + 1
    template = template_for_step.get(step)
    if step > 1 and template is not None and last_sent_at is not None:
        due_at = last_sent_at + step_delay(template, fast_mode)
        if now < due_at:
            return Held("not_due", f"lead {lead.id}: step {step} due {due_at.isoformat()}")
    return Due(step)
