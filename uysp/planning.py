"""The scheduler's gates as one pure function: leads and facts in, a batch plan out.

Gates run in DESIGN.md's order (kill switch and auto-pause are checked by the flow before any
of this). One deliberate change: the template gate runs before the caps, so leads that cannot be
sent for want of a template never take a cap slot from leads that can.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from uysp.compliance import CampaignHours, window_reason
from uysp.eligibility import ineligibility
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus, Template, send_key
from uysp.phones import to_e164
from uysp.segments import segment_count
from uysp.sequence import MIN_GAP, Due, next_step
from uysp.templates import MissingField, render, variant_for

MESSAGES_KEPT_PER_REASON = 20
# Ledger rows that mean a text went out, or may have: they block a resend of their step.
SENT_OR_MAYBE = frozenset(
    {
        LedgerStatus.RESERVED,
        LedgerStatus.SENT,
        LedgerStatus.UNKNOWN,
        LedgerStatus.DELIVERED,
        LedgerStatus.UNDELIVERED,
    }
)
# Ledger rows that mean a text went out: the only ones a lead's fields are repaired from.
WENT_OUT = frozenset({LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED})


@dataclass(frozen=True)
class RunParams:
    campaign: str
    batch_size: int
    daily_cap: int
    daily_segment_cap: int | None = None
    fast_mode: bool = False
    credit_floor: float = 0


@dataclass(frozen=True)
class PlannedSend:
    lead: Lead
    phone: str
    step: int
    variant: str
    template: Template
    estimated_segments: int

    @property
    def key(self) -> str:
        return send_key(self.lead.id, self.template.campaign, self.step)


@dataclass
class Plan:
    sends: list[PlannedSend] = field(default_factory=list)
    held: Counter[str] = field(default_factory=Counter)
    messages: dict[str, list[str]] = field(default_factory=dict)
    repairs: dict[str, dict] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)

    def hold(self, reason: str, message: str) -> None:
        self.held[reason] += 1
        kept = self.messages.setdefault(reason, [])
        if len(kept) < MESSAGES_KEPT_PER_REASON:
            kept.append(message)


def gate_leads(
    leads: Iterable[Lead],
    templates: Mapping[str, Mapping[int, Template]],
    *,
    params: RunParams,
    ratio_a: float,
    hours: CampaignHours,
    now: datetime,
    link_placeholder: str,
) -> Plan:
    """Eligibility, sequence, 24 hours, send window and template, from the lead fields alone."""
    plan = Plan()
    if not templates:
        plan.alerts.append(f"campaign {params.campaign!r} has no active templates")
    missing_templates: Counter[tuple[str, int]] = Counter()
    for lead in leads:
        reason = ineligibility(lead)
        if reason:
            plan.hold(*reason)
            continue
        if not templates:
            plan.hold("unknown_campaign", f"lead {lead.id}: campaign {params.campaign!r}")
            continue
        variant = variant_for(lead, ratio_a, list(templates))
        steps = templates.get(variant, {})
        last_sent = lead.last_sent_at
        decision = next_step(lead, steps, now, fast_mode=params.fast_mode, last_sent_at=last_sent)
        if not isinstance(decision, Due):
            plan.hold(decision.reason, decision.message)
            if decision.reason == "repaired_missing_last_sent":
                plan.repairs[lead.id] = {"last_sent_at": now}
            elif decision.reason == "sequence_complete":
                plan.repairs[lead.id] = {"processing_status": ProcessingStatus.COMPLETE}
            continue
        phone = to_e164(lead.phone)
        window = window_reason(phone, now, hours)
        if window:
            plan.hold(window, f"lead {lead.id}: {window.replace('_', ' ')}")
            continue
        template = steps.get(decision.step)
        if template is None:
            missing_templates[(variant, decision.step)] += 1
            plan.hold(
                "missing_template",
                f"lead {lead.id}: no template for {params.campaign} {variant} step {decision.step}",
            )
            continue
        try:
            text = render(template, lead, lead.short_link_url or link_placeholder)
        except MissingField as exc:
            plan.hold("missing_name", str(exc))
            continue
        plan.sends.append(
            PlannedSend(lead, phone, decision.step, variant, template, segment_count(text))
        )
    # Follow-ups first: those leads have waited longest for their next step.
    plan.sends.sort(key=lambda s: (-s.step, s.lead.imported_at or now, s.lead.id))
    for (variant, step), count in sorted(missing_templates.items()):
        plan.alerts.append(
            f"no active template for campaign {params.campaign!r} variant {variant} step {step}:"
            f" {count} leads held"
        )
    return plan


def apply_ledger(plan: Plan, rows: Iterable[LedgerEntry], now: datetime) -> None:
    """Hold planned sends the ledger contradicts: a step already sent (or maybe sent) while the
    lead's fields say otherwise, or a text in the last 24 hours the lead does not show. The
    lead is repaired from the ledger's sent rows, so a lost store write never causes a second
    text; a position repaired for want of a last-sent time takes the ledger's time when it has
    one. A Reserved row holds its step but repairs nothing: until reconciliation judges it, it
    may yet prove never sent, and then the step is still owed. A lead with an Unknown row waits
    for a person: we cannot tell what it last received."""
    by_lead: dict[str, list[LedgerEntry]] = {}
    for row in rows:
        if row.status in SENT_OR_MAYBE and row.event == "send":  # not HELP replies or tests
            by_lead.setdefault(row.lead_id, []).append(row)
    for lead_id, repair in plan.repairs.items():
        taken = by_lead.get(lead_id)
        if taken and "last_sent_at" in repair:
            repair.update(_repair_from_ledger(taken, now))
    kept = []
    for send in plan.sends:
        campaign = send.template.campaign
        every = by_lead.get(send.lead.id, [])
        taken = [r for r in every if r.campaign_id == campaign]
        # The 24-hour rule is per person, whatever campaign texted them last.
        times = [t for r in every if (t := r.sent_at or r.reserved_at)]
        latest = max(times, default=None)
        if any(r.status == LedgerStatus.UNKNOWN for r in taken):
            plan.hold("unknown_outcome", f"lead {send.lead.id}: a send awaits review")
        elif any(r.step >= send.step for r in taken):
            plan.hold("already_sent", f"lead {send.lead.id}: step {send.step} is in the ledger")
            if repair := _repair_from_ledger(taken, now):
                plan.repairs[send.lead.id] = repair
        elif latest is not None and now - latest < MIN_GAP:
            plan.hold(
                "within_24h", f"lead {send.lead.id}: ledger has a text at {latest:%Y-%m-%d %H:%M}"
            )
            sent = [t for r in every if r.status in WENT_OUT and (t := r.sent_at or r.reserved_at)]
            repair = _repair_from_ledger(taken, now) | ({"last_sent_at": max(sent)} if sent else {})
            if repair:
                plan.repairs[send.lead.id] = repair
        else:
            kept.append(send)
    plan.sends = kept


def _repair_from_ledger(rows: list[LedgerEntry], now: datetime) -> dict:
    """The lead's fields as the ledger's sent rows have them; nothing when none went out."""
    rows = [r for r in rows if r.status in WENT_OUT]
    if not rows:
        return {}
    top = max(rows, key=lambda r: r.step)
    return {
        "sequence_position": top.step,
        "sent_count": len(rows),
        "last_sent_at": top.sent_at or top.reserved_at or now,
        "processing_status": ProcessingStatus.IN_SEQUENCE,
    }


def apply_caps(
    plan: Plan,
    params: RunParams,
    *,
    sent_today: int,
    segments_today: int,
    credits_remaining: float | None,
) -> None:
    """Batch cap, daily caps (messages and segments) and the credit floor, in send order."""
    kept = []
    segments = segments_today
    credits = credits_remaining
    for send in plan.sends:
        if len(kept) >= params.batch_size:
            plan.hold("batch_cap", f"lead {send.lead.id}: batch of {params.batch_size} is full")
        elif sent_today + len(kept) >= params.daily_cap:
            plan.hold("daily_cap", f"lead {send.lead.id}: {params.daily_cap} texts today")
        elif params.daily_segment_cap is not None and (
            segments + send.estimated_segments > params.daily_segment_cap
        ):
            plan.hold("daily_segment_cap", f"lead {send.lead.id}: segment cap reached")
        elif credits is not None and credits - send.estimated_segments < params.credit_floor:
            plan.hold("credit_floor", f"lead {send.lead.id}: credits at the floor")
        else:
            kept.append(send)
            segments += send.estimated_segments
            if credits is not None:
                credits -= send.estimated_segments
    plan.sends = kept
