"""`uysp reconcile`: the ledger, the leads and the provider's message log, read through the
ports and compared by uysp/audit.py. With `fix`, the safe repairs are made under the send lock
(no scheduler run sends meanwhile), in batched writes, and the records are read again, so what
the report calls remaining is what the stores and the provider now hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasks.scheduling import reconcile_row
from tasks.sending import sent_lead_update
from uysp.audit import (
    EVIDENCE_MARGIN,
    OPEN,
    CatchUp,
    Disagreement,
    Kind,
    Recover,
    Settle,
    audit,
    in_order,
    leads_in_scope,
)
from uysp.models import Lead, LedgerEntry, ProcessingStatus, Template
from uysp.ports import SEND_LOCK, ProviderMessage, Services
from uysp.settings import get_settings

MOVED_BY_SENDS = frozenset({ProcessingStatus.READY, ProcessingStatus.IN_SEQUENCE})


class AuditError(RuntimeError):
    """The audit could not be made; nothing was judged."""


@dataclass(frozen=True)
class Records:
    rows: list[LedgerEntry]
    leads: list[Lead]
    messages: list[ProviderMessage]
    templates: list[Template]

    def audit(self, since: datetime) -> list[Disagreement]:
        return audit(self.rows, self.leads, self.messages, since=since, templates=self.templates)


@dataclass
class Item:
    disagreement: Disagreement
    fixed: bool = False


@dataclass
class AuditReport:
    since: datetime
    checked: dict[str, int]
    items: list[Item] = field(default_factory=list)

    @property
    def fixed(self) -> int:
        return sum(item.fixed for item in self.items)

    @property
    def remaining(self) -> int:
        return len(self.items) - self.fixed

    def to_json(self) -> dict:
        counts = Counter(item.disagreement.kind for item in self.items)
        return {
            "since": self.since.isoformat(),
            "checked": self.checked,
            "disagreements": {kind.value: counts[kind] for kind in Kind},
            "items": [
                {
                    "kind": item.disagreement.kind.value,
                    "lead_id": item.disagreement.lead_id,
                    "send_key": item.disagreement.send_key,
                    "message_id": item.disagreement.message_id,
                    "detail": item.disagreement.detail,
                    "fixed": item.fixed,
                }
                for item in self.items
            ],
            "fixed": self.fixed,
            "remaining": self.remaining,
        }


def reconcile_all(svc: Services, *, since: datetime, fix: bool) -> AuditReport:
    """Audit the texts since `since`; with `fix`, repair what is safe to repair."""
    if not fix:
        records = read_records(svc, since)
        return _report(since, records, [Item(d) for d in records.audit(since)])
    settings = get_settings()
    with svc.lock.hold(SEND_LOCK, "uysp-reconcile", settings.run_lock_ttl_seconds) as held:
        if not held:
            raise AuditError("a scheduler run holds the send lock: try --fix again when it ends")
        records = read_records(svc, since)
        found = records.audit(since)
        grace = timedelta(seconds=settings.reconcile_grace_seconds)
        repaired = repair(svc, records, found, since=since, grace=grace)
        after = read_records(svc, since).audit(since) if repaired else found
    remaining = {d.key for d in after}
    items = {d.key: Item(d) for d in found}
    for d in repaired:
        items.setdefault(d.key, Item(d)).fixed = d.key not in remaining
    for d in after:
        items.setdefault(d.key, Item(d))
    return _report(since, records, list(items.values()))


def _report(since: datetime, records: Records, items: list[Item]) -> AuditReport:
    checked = {
        "ledger_rows": len(records.rows),
        "leads": len(records.leads),
        "provider_messages": len(records.messages),
    }
    return AuditReport(since, checked, items)


def read_records(svc: Services, since: datetime) -> Records:
    """The provider's log and the ledger from a little before `since`, every row still open, the
    leads texted in the window by any record, each with its whole ledger, and their templates."""
    messages = svc.gateway.messages_since(since - EVIDENCE_MARGIN)
    if messages is None:
        raise AuditError("the provider's message log could not be read: nothing was checked")
    recent = svc.store.ledger_rows(since=since - EVIDENCE_MARGIN)
    recent += svc.store.ledger_rows(statuses=OPEN)
    leads = leads_in_scope(svc.store.all_leads(), recent, messages, since)
    if leads:
        recent += svc.store.ledger_rows(lead_ids=[lead.id for lead in leads])
    campaigns = sorted({lead.campaign_id for lead in leads if lead.campaign_id})
    templates = [t for campaign in campaigns for t in svc.store.list_templates(campaign)]
    rows = list({row.model_dump_json(): row for row in recent}.values())
    return Records(rows, leads, messages, templates)


def repair(
    svc: Services,
    records: Records,
    found: Sequence[Disagreement],
    *,
    since: datetime,
    grace: timedelta,
) -> list[Disagreement]:
    """Settle Reserved rows, write recovered rows, then move leads forward over the ledger as it
    now stands, in one ledger-then-leads write. Returns the disagreements repaired, with the
    leads that fell behind only because a row was just settled or recovered."""
    repaired: list[Disagreement] = []
    written: list[LedgerEntry] = []
    for d in found:
        if isinstance(d.repair, Settle):
            verdict = reconcile_row(svc, d.repair.row, grace)
            if verdict is not None:
                written.append(verdict)
                repaired.append(d)
    recover = {
        d.repair.row.send_key: (d, d.repair.row) for d in found if isinstance(d.repair, Recover)
    }
    # A new row is written Reserved first, as every send's is; it goes Sent with the others.
    taken = svc.store.reserve_sends([row for _, row in recover.values()]) if recover else []
    for reserved in taken:
        d, row = recover[reserved.send_key]
        written.append(row)
        repaired.append(d)
    keys = {row.send_key for row in written}
    now_holds = Records(
        [r for r in records.rows if r.send_key not in keys] + written,
        records.leads,
        records.messages,
        records.templates,
    )
    behind = [d for d in now_holds.audit(since) if isinstance(d.repair, CatchUp)]
    updates = {d.repair.lead.id: caught_up(d.repair.lead, d.repair.rows) for d in behind}
    svc.store.record_sends(written, updates)
    return repaired + behind


def caught_up(lead: Lead, rows: Sequence[LedgerEntry]) -> dict:
    """The scheduler's own update for each Sent row the lead missed, oldest first, never moving a
    field back: a later last-sent time stands, and so does a status no send moves (Stopped,
    Complete, Hold)."""
    fields: dict = {}
    for row in in_order(rows):
        fields |= sent_lead_update(lead.model_copy(update=fields), row)
    fields["last_sent_at"] = max(
        (t for t in (lead.last_sent_at, fields["last_sent_at"]) if t), default=None
    )
    if lead.processing_status not in MOVED_BY_SENDS:
        del fields["processing_status"]
    return fields
