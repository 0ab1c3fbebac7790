"""The scheduler's tasks around the send: the run lock, reconciliation and the batch plan."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.runtime import services
from tasks.sending import sent_lead_update
from uysp.compliance import CampaignHours
from uysp.models import CampaignSettings, ErrorClass, LedgerEntry, LedgerStatus
from uysp.phones import mask
from uysp.planning import Plan, RunParams, apply_caps, apply_ledger, gate_leads
from uysp.ports import Notice, Services
from uysp.templates import templates_by_variant

log = logging.getLogger(__name__)
LOG_SKEW = timedelta(minutes=5)  # clock difference we allow between us and the provider's log


@dataclass
class Reconciliation:
    sent: int = 0
    not_sent: int = 0
    unknown: int = 0
    pending: int = 0


def reconcile_row(svc: Services, row: LedgerEntry, grace: timedelta) -> LedgerEntry | None:
    """Judge one Reserved row from the provider's log; None while it is too young to judge."""
    reserved_at = row.reserved_at or svc.clock.now()
    log_rows = svc.gateway.message_log(row.phone, reserved_at - LOG_SKEW)
    if log_rows is None:
        return row.model_copy(
            update={"status": LedgerStatus.UNKNOWN, "error": "provider log unavailable"}
        )
    matches = [m for m in log_rows if m.text == row.text]
    if matches:
        match = matches[0]
        return row.model_copy(
            update={
                "status": LedgerStatus.SENT,
                "provider_message_id": match.message_id,
                "sent_at": match.sent_at,
                "error": "reconciled from the provider log",
            }
        )
    if log_rows:
        return row.model_copy(
            update={"status": LedgerStatus.UNKNOWN, "error": "provider log has other texts"}
        )
    if svc.clock.now() - reserved_at < grace:
        return None
    return row.model_copy(
        update={
            "status": LedgerStatus.FAILED,
            "error_class": ErrorClass.NOT_SENT,
            "error": "reconciled: the provider has no such message",
        }
    )


@task(name="reconcile-reserved", cache_policy=NO_CACHE)
def reconcile_reserved(grace_seconds: float, keys: list[str] | None = None) -> Reconciliation:
    """Settle ledger rows left Reserved by an interrupted run. A row the provider's log shows
    becomes Sent (and its lead moves on); a row the log cannot explain becomes Unknown, is
    alerted, and is never resent automatically."""
    svc = services()
    rows = svc.store.ledger_rows(statuses=[LedgerStatus.RESERVED])
    if keys is not None:
        rows = [r for r in rows if r.send_key in set(keys)]
    result = Reconciliation()
    judged: list[LedgerEntry] = []
    for row in rows:
        verdict = reconcile_row(svc, row, timedelta(seconds=grace_seconds))
        if verdict is None:
            result.pending += 1
        else:
            judged.append(verdict)
    leads = {lead.id: lead for lead in svc.store.get_leads([r.lead_id for r in judged])}
    lead_updates = {
        row.lead_id: sent_lead_update(leads[row.lead_id], row)
        for row in judged
        if row.status == LedgerStatus.SENT and row.lead_id in leads and row.event == "send"
    }
    svc.store.record_sends(judged, lead_updates)
    for row in judged:
        if row.status == LedgerStatus.SENT:
            result.sent += 1
        elif row.status == LedgerStatus.UNKNOWN:
            result.unknown += 1
        else:
            result.not_sent += 1
    unknown = [r for r in judged if r.status == LedgerStatus.UNKNOWN]
    if unknown:
        svc.notifier.notify(
            "alerts",
            Notice(
                f"{len(unknown)} send(s) with unknown outcome: review, they will not be resent",
                [f"{r.send_key} to {mask(r.phone)}: {r.error}" for r in unknown[:20]],
                level="error",
            ),
        )
    return result


def day_start(now: datetime, tz_name: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz_name))
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)


@task(name="plan-batch", cache_policy=NO_CACHE)
def plan_batch(
    params: RunParams, settings: CampaignSettings, campaign_tz: str, link_placeholder: str
) -> Plan:
    """Every gate from eligibility to the caps, over the store's active leads."""
    svc = services()
    now = svc.clock.now()
    templates = templates_by_variant(svc.store.list_templates(params.campaign), params.campaign)
    plan = gate_leads(
        svc.store.select_active_leads(),
        templates,
        params=params,
        ratio_a=settings.ratio_a,
        hours=CampaignHours.from_settings(settings),
        now=now,
        link_placeholder=link_placeholder,
    )
    checked = [s.lead.id for s in plan.sends] + list(plan.repairs)
    apply_ledger(plan, svc.store.ledger_rows(lead_ids=checked), now)
    today = svc.store.ledger_rows(since=day_start(now, campaign_tz))
    counted = [r for r in today if r.status != LedgerStatus.FAILED and r.event == "send"]
    apply_caps(
        plan,
        params,
        sent_today=len(counted),
        segments_today=sum(r.segments or 0 for r in counted),
        credits_remaining=credit_balance(svc, settings),
    )
    return plan


def credit_balance(svc: Services, settings: CampaignSettings) -> float | None:
    """The provider's own balance when it reports one, else the Settings row's running one."""
    reported = svc.gateway.credits_remaining()
    return reported if reported is not None else settings.credits_remaining


@task(name="settle-credits", cache_policy=NO_CACHE)
def settle_credits(spent: float, alert_below: float) -> float | None:
    """Lower the running balance by this run's spend and alert when it runs low."""
    svc = services()
    balance = svc.gateway.credits_remaining()
    if balance is None:
        balance = svc.store.get_settings().credits_remaining
        if balance is not None and spent:
            balance -= spent
            svc.store.update_settings(credits_remaining=balance)
    if balance is not None and balance < alert_below:
        svc.notifier.notify(
            "alerts",
            Notice(
                f"SMS credits low: {balance:,.0f} left",
                [f"alert below {alert_below:,.0f}"],
                level="warning",
            ),
        )
    return balance


@task(name="repair-leads", cache_policy=NO_CACHE)
def repair_leads(repairs: dict[str, dict]) -> int:
    """Write the plan's repairs: positions with no last-sent time, positions behind the ledger."""
    if repairs:
        services().store.update_leads(repairs)
    return len(repairs)
