"""Staging, pure: the rollout plan's tiers and the day's capacity for new leads.

Queued leads move to Ready for SMS best tier first: Tier 1 (ICP Score above 80), Tier 2 (60 to
80), Tier 3 (40 to below 60). A score below 40, or none, goes to Hold for a person to review, and
so does a lead that could never be texted (invalid phone, current client...): staging it would
spend a day's slot on a lead the scheduler holds back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from uysp.eligibility import ineligibility
from uysp.models import Lead, ProcessingStatus, Template
from uysp.sequence import Due, next_step

STAGING_HOURS = (9, 13, 17)  # America/New_York: the staging deployment's schedule
HOLD_BELOW = 40


def tier_of(icp_score: float | None) -> int | None:
    """1, 2 or 3; None for a lead that goes to Hold."""
    if icp_score is None or icp_score < HOLD_BELOW:
        return None
    if icp_score > 80:
        return 1
    return 2 if icp_score >= 60 else 3


def sendable(lead: Lead) -> tuple[str, str] | None:
    """Why this lead could never be texted once Ready for SMS, or None."""
    return ineligibility(lead.model_copy(update={"processing_status": ProcessingStatus.READY}))


def texts_due_by(
    leads: Iterable[Lead],
    templates: Mapping[str, Mapping[int, Template]],
    moment: datetime,
    *,
    fast_mode: bool,
) -> int:
    """Texts the scheduler owes by `moment`: one per eligible lead whose next step is due then,
    and one per eligible lead still waiting in Ready for SMS for its first."""
    due = 0
    for lead in leads:
        if ineligibility(lead) is not None:
            continue
        if lead.processing_status == ProcessingStatus.READY:
            due += 1
            continue
        steps = templates.get(lead.variant or "", {})
        decision = next_step(
            lead, steps, moment, fast_mode=fast_mode, last_sent_at=lead.last_sent_at
        )
        due += isinstance(decision, Due)
    return due


def capacity_left(daily_cap: int, sent_today: int, owed_today: int) -> int:
    return max(0, daily_cap - sent_today - owed_today)


@dataclass
class StagingPlan:
    ready: list[Lead] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # lead id -> why
    waiting: int = 0  # left Queued for a later run: no capacity
    other_campaign: int = 0  # left Queued: imported for a campaign that is not running
    ready_by_tier: Counter[int] = field(default_factory=Counter)


def _imported(lead: Lead) -> float:
    return lead.imported_at.timestamp() if lead.imported_at else float("inf")


def plan_staging(queued: Iterable[Lead], capacity: int, campaign: str | None) -> StagingPlan:
    """Which Queued leads become Ready for SMS today, best first, and which go to Hold."""
    plan = StagingPlan()
    candidates: list[tuple[int, Lead]] = []
    for lead in queued:
        if lead.campaign_id and lead.campaign_id != campaign:
            plan.other_campaign += 1
            continue
        tier = tier_of(lead.icp_score)
        if tier is None:
            score = "none" if lead.icp_score is None else f"{lead.icp_score:g}"
            plan.held[lead.id] = f"ICP Score {score}, below {HOLD_BELOW}"
            continue
        if reason := sendable(lead):
            plan.held[lead.id] = reason[1]
            continue
        candidates.append((tier, lead))
    candidates.sort(key=lambda c: (c[0], -(c[1].icp_score or 0), _imported(c[1]), c[1].id))
    for tier, lead in candidates[:capacity]:
        plan.ready.append(lead)
        plan.ready_by_tier[tier] += 1
    plan.waiting = max(0, len(candidates) - capacity)
    return plan
