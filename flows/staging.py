"""staging: the rollout plan's staging, at 9:00, 13:00 and 17:00 Eastern.

Queued leads of the running campaign move to Ready for SMS, Tier 1 (ICP Score above 80) first,
then Tier 2 (60-80) and Tier 3 (40-60), as many as the day's capacity allows: the phase's daily
cap less the texts already sent today and the texts still owed today to leads in sequence or
waiting in Ready for SMS. Leads scoring below 40 (or unscored), and leads that could never be
texted, go to Hold for a person to review; Backlog leads are left alone.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import quote

from tasks.runtime import services
from tasks.staging import Staging, plan_today, write_staging
from uysp.ports import Notice
from uysp.rollout import PHASES, phase_named
from uysp.settings import get_settings

WRITE_CHUNK = 1000


@flow(name="staging", log_prints=False)
def staging(phase: str = PHASES[0].name, campaign: str | None = None) -> dict[str, Any]:
    """Stage today's leads under the daily cap of rollout `phase`; `campaign` defaults to the
    Settings row's Active Campaign. Queued leads imported for another campaign wait."""
    daily_cap = phase_named(phase).daily_cap
    campaign = campaign or services().store.get_settings().active_campaign
    result = plan_today(daily_cap, campaign, get_settings().campaign_timezone)
    items = list(result.updates.items())
    for start in range(0, len(items), WRITE_CHUNK):
        write_staging(quote(dict(items[start : start + WRITE_CHUNK])))
    summary = {
        "campaign": campaign,
        "phase": phase,
        "daily_cap": daily_cap,
        "sent_today": result.sent_today,
        "owed_today": result.owed_today,
        "capacity": result.capacity,
        "ready": len(result.plan.ready),
        "ready_by_tier": {f"tier_{t}": n for t, n in sorted(result.plan.ready_by_tier.items())},
        "held": len(result.plan.held),
        "waiting": result.plan.waiting,
        "other_campaign": result.plan.other_campaign,
    }
    _publish(summary, result)
    return summary


def _publish(summary: dict[str, Any], result: Staging) -> None:
    tiers = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary["ready_by_tier"].items())
    lines = [
        f"capacity {summary['capacity']} (daily cap {summary['daily_cap']}, sent today"
        f" {summary['sent_today']}, owed today {summary['owed_today']})",
        f"{summary['ready']} to Ready for SMS ({tiers or 'none'})",
        f"{summary['held']} to Hold for review, {summary['waiting']} still Queued for lack of"
        f" capacity, {summary['other_campaign']} Queued for another campaign",
    ]
    create_table_artifact(
        key="staging-held",
        table=[{"lead": i, "reason": r} for i, r in result.plan.held.items()] or [{"lead": "none"}],
        description="Leads moved to Hold, and why",
    )
    create_markdown_artifact(
        key="staging-summary",
        markdown="\n".join(f"- {line}" for line in lines),
        description="staging run summary",
    )
    if summary["ready"] or summary["held"]:
        services().notifier.notify("daily", Notice(f"Staging ({summary['phase']})", lines))
