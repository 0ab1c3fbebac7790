"""The staging tasks: the day's capacity for new leads, and the move of Queued leads to Ready
for SMS (best tier first) or to Hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.runtime import services
from tasks.scheduling import day_start
from uysp.models import Lead, LedgerStatus, ProcessingStatus
from uysp.templates import templates_by_variant
from uysp.tiers import StagingPlan, capacity_left, plan_staging, texts_due_by


@dataclass
class Staging:
    plan: StagingPlan
    daily_cap: int
    sent_today: int
    owed_today: int
    capacity: int
    updates: dict[str, dict]


def _held(lead: Lead, reason: str, stamp: str) -> dict:
    note = f"{stamp} staging: Hold, {reason}"
    return {
        "processing_status": ProcessingStatus.HOLD,
        "error_log": f"{lead.error_log}\n{note}" if lead.error_log else note,
    }


@task(name="plan-staging", cache_policy=NO_CACHE)
def plan_today(daily_cap: int, campaign: str | None, campaign_tz: str) -> Staging:
    """Capacity = the daily cap, less texts already sent today, less texts owed before the day
    ends (follow-ups coming due, and leads already waiting in Ready for SMS)."""
    svc = services()
    now = svc.clock.now()
    start = day_start(now, campaign_tz)
    settings = svc.store.get_settings()
    templates = (
        templates_by_variant(svc.store.list_templates(campaign), campaign) if campaign else {}
    )
    owed = texts_due_by(
        svc.store.select_active_leads(),
        templates,
        start + timedelta(days=1),
        fast_mode=settings.fast_mode,
    )
    sent = sum(
        r.event == "send" and r.status != LedgerStatus.FAILED
        for r in svc.store.ledger_rows(since=start)
    )
    capacity = capacity_left(daily_cap, sent, owed)
    queued = svc.store.leads_in_status([ProcessingStatus.QUEUED])
    plan = plan_staging(queued, capacity, campaign)
    by_id = {lead.id: lead for lead in queued}
    stamp = f"{now:%Y-%m-%d %H:%M}"
    updates = {lead.id: {"processing_status": ProcessingStatus.READY} for lead in plan.ready}
    updates |= {i: _held(by_id[i], reason, stamp) for i, reason in plan.held.items()}
    return Staging(plan, daily_cap, sent, owed, capacity, updates)


@task(name="write-staging", cache_policy=NO_CACHE)
def write_staging(updates: dict[str, dict]) -> int:
    services().store.update_leads(updates)
    return len(updates)
