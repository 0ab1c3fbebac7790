"""The audit behind `uysp reconcile`: the send ledger, the leads and the provider's own message
log, compared. Pure: records in, disagreements out, each with the repair that is safe to make,
if one is; tasks/audit.py reads the records, makes the repairs and reports.

They agree when every message in the provider's log is some ledger row's, every Sent row is in
the log, no row is left Reserved or Unknown, every lead has taken in its Sent rows and shows no
step the ledger lacks, no text went out after a stop, and no step went out twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from uysp.models import Lead, LedgerEntry, LedgerStatus, Template, send_key
from uysp.phones import mask
from uysp.ports import ProviderMessage
from uysp.replies import ReplyKind, classify
from uysp.segments import segment_count
from uysp.templates import MissingField, render

EVIDENCE_MARGIN = timedelta(minutes=5)
"""Records are read this much before the window judged: a row reserved just before it may own
a message sent inside it, and our clock and the provider's may differ by this much."""
SENT = frozenset({LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED})
OPEN = frozenset({LedgerStatus.RESERVED, LedgerStatus.UNKNOWN})
RECOVERED = "recovered by uysp reconcile from the provider's message log"
# Stores keep times to different precision (Airtable to the millisecond): a lead's last-sent
# time within this of its row's is the same moment.
SAME_MOMENT = timedelta(seconds=1)


class Kind(StrEnum):
    RESERVED = "reserved"
    UNKNOWN = "unknown"
    SENT_NOT_IN_PROVIDER_LOG = "sent_not_in_provider_log"
    PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW = "provider_message_without_ledger_row"
    LEAD_BEHIND_LEDGER = "lead_behind_ledger"
    LEAD_AHEAD_OF_LEDGER = "lead_ahead_of_ledger"
    SENT_AFTER_STOP = "sent_after_stop"
    DUPLICATE_STEP = "duplicate_step"


LEAD_KINDS = frozenset({Kind.LEAD_BEHIND_LEDGER, Kind.LEAD_AHEAD_OF_LEDGER})


@dataclass(frozen=True)
class Settle:
    """Judge this Reserved row from the provider's log, as the scheduler's reconciliation does."""

    row: LedgerEntry


@dataclass(frozen=True)
class Recover:
    """Write this Sent row for a provider message no ledger row accounts for."""

    row: LedgerEntry


@dataclass(frozen=True)
class CatchUp:
    """Move the lead forward over the Sent rows it has not taken in."""

    lead: Lead
    rows: tuple[LedgerEntry, ...]


Repair = Settle | Recover | CatchUp


@dataclass(frozen=True)
class Disagreement:
    kind: Kind
    lead_id: str | None
    send_key: str | None
    message_id: str | None
    detail: str
    repair: Repair | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        """What makes it the same disagreement in a later audit: a lead's own kinds are one per
        lead, whichever row they name."""
        if self.kind in LEAD_KINDS:
            return (self.kind, self.lead_id, None, None)
        return (self.kind, self.lead_id, self.send_key, self.message_id)


def sent_time(row: LedgerEntry) -> datetime | None:
    return row.sent_at or row.reserved_at


def in_order(rows: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """Oldest text first."""
    return sorted(rows, key=lambda r: sent_time(r) or datetime.min.replace(tzinfo=UTC))


def leads_in_scope(
    leads: Iterable[Lead],
    rows: Iterable[LedgerEntry],
    messages: Iterable[ProviderMessage],
    since: datetime,
) -> list[Lead]:
    """The leads worth comparing: texted since then by the ledger, by their own fields or by the
    provider's log, or with a ledger row still open."""
    ids = {r.lead_id for r in rows if r.status in OPEN or _after(sent_time(r), since)}
    phones = {m.phone for m in messages if m.sent_at >= since}
    return [
        lead
        for lead in leads
        if lead.id in ids or lead.phone in phones or _after(lead.last_sent_at, since)
    ]


def audit(
    rows: Iterable[LedgerEntry],
    leads: Iterable[Lead],
    messages: Iterable[ProviderMessage],
    *,
    since: datetime,
    templates: Iterable[Template] = (),
) -> list[Disagreement]:
    """Every disagreement among these records. `rows` must hold the whole ledger of each lead
    given, and `messages` the provider's log from EVIDENCE_MARGIN before `since`."""
    rows, leads, messages = list(rows), list(leads), list(messages)
    by_lead: defaultdict[str, list[LedgerEntry]] = defaultdict(list)
    for row in rows:
        if row.event == "send":  # not HELP answers or test-mode texts
            by_lead[row.lead_id].append(row)
    found = _open_rows(rows, messages)
    found += _missing_from_log(rows, messages, since)
    found += _unexplained(rows, leads, messages, list(templates), by_lead, since)
    for lead in leads:
        found += _lead_checks(lead, by_lead[lead.id])
    found += _duplicates(by_lead)
    return found


def _open_rows(rows: list[LedgerEntry], messages: list[ProviderMessage]) -> list[Disagreement]:
    claimed = {r.provider_message_id for r in rows if r.provider_message_id}
    loose: dict[tuple[str, str], ProviderMessage] = {}
    for message in sorted(messages, key=lambda m: m.sent_at):
        if message.message_id not in claimed:
            loose.setdefault((message.phone, message.text), message)
    found = []
    for row in rows:
        if row.status not in OPEN:
            continue
        shown = loose.get((row.phone, row.text))
        evidence = (
            f"the provider's log shows this text as message {shown.message_id}"
            if shown
            else "the provider's log has no such text"
        )
        if row.status == LedgerStatus.RESERVED:
            detail = f"Reserved since {_at(row.reserved_at)} and never settled; {evidence}"
            repair: Repair | None = Settle(row)
        else:
            detail = f"outcome unknown ({row.error or 'no detail'}); {evidence}; a person decides"
            repair = None
        kind = Kind.RESERVED if row.status == LedgerStatus.RESERVED else Kind.UNKNOWN
        message_id = shown.message_id if shown else None
        lead_id = row.lead_id or None  # a HELP answer to a number no lead has
        found.append(Disagreement(kind, lead_id, row.send_key, message_id, detail, repair))
    return found


def _missing_from_log(
    rows: list[LedgerEntry], messages: list[ProviderMessage], since: datetime
) -> list[Disagreement]:
    logged = {m.message_id for m in messages}
    return [
        Disagreement(
            Kind.SENT_NOT_IN_PROVIDER_LOG,
            row.lead_id or None,
            row.send_key,
            row.provider_message_id,
            f"the ledger says {row.status} at {_at(sent_time(row))}"
            + (
                f" as message {row.provider_message_id}, which the provider's log does not have"
                if row.provider_message_id
                else " with no provider message id"
            ),
        )
        for row in rows
        if row.status in SENT
        and _after(sent_time(row), since)
        and row.provider_message_id not in logged
    ]


def _unclaimed(rows: list[LedgerEntry], messages: list[ProviderMessage]) -> list[ProviderMessage]:
    """Messages no ledger row accounts for: by message id, or for a row still open (its answer
    never came), by phone and text, one message per row."""
    claimed = {r.provider_message_id for r in rows if r.provider_message_id}
    waiting = Counter((r.phone, r.text) for r in rows if r.status in OPEN)
    left = []
    for message in sorted(messages, key=lambda m: m.sent_at):
        if message.message_id in claimed:
            continue
        if waiting[(message.phone, message.text)]:
            waiting[(message.phone, message.text)] -= 1
            continue
        left.append(message)
    return left


def _unexplained(
    rows: list[LedgerEntry],
    leads: list[Lead],
    messages: list[ProviderMessage],
    templates: list[Template],
    by_lead: dict[str, list[LedgerEntry]],
    since: datetime,
) -> list[Disagreement]:
    by_phone: defaultdict[str | None, list[Lead]] = defaultdict(list)
    for lead in leads:
        by_phone[lead.phone].append(lead)
    found = []
    recovering: set[str] = set()
    for message in _unclaimed(rows, messages):
        if message.sent_at < since:
            continue
        owners = by_phone[message.phone]
        if len(owners) == 1:
            lead = owners[0]
            found.append(_recovery(lead, message, by_lead[lead.id], templates, recovering))
            continue
        whose = f"{len(owners)} leads have that number" if owners else "no lead has that number"
        found.append(
            Disagreement(
                Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW,
                None,
                None,
                message.message_id,
                f"{_sent(message)} and no ledger row has it; {whose}",
            )
        )
    return found


def _recovery(
    lead: Lead,
    message: ProviderMessage,
    rows: list[LedgerEntry],
    templates: list[Template],
    recovering: set[str],
) -> Disagreement:
    """The row to write for a message of this lead's, when its step is known and its Send Key is
    free (or failed retryably); `recovering` holds the keys earlier messages will take."""

    def report(why: str, key: str | None = None, repair: Recover | None = None) -> Disagreement:
        detail = f"{_sent(message)} and no ledger row has it; {why}"
        kind = Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW
        return Disagreement(kind, lead.id, key, message.message_id, detail, repair)

    step = _step_of(lead, message, rows, templates)
    if step is None:
        return report("it matches no step of the lead's campaign")
    campaign, number, variant = step
    key = send_key(lead.id, campaign, number)
    taken = [r for r in rows if r.send_key == key and not r.retryable]
    if taken:
        return report(f"step {number} of {campaign} is already {taken[0].status}", key)
    if key in recovering:
        return report(f"an earlier text in the log is step {number} of {campaign} too", key)
    recovering.add(key)
    row = LedgerEntry(
        send_key=key,
        status=LedgerStatus.SENT,
        lead_id=lead.id,
        phone=message.phone,
        campaign_id=campaign,
        step=number,
        variant=variant,
        text=message.text,
        provider_message_id=message.message_id,
        segments=segment_count(message.text),
        reserved_at=message.sent_at,
        sent_at=message.sent_at,
        error=RECOVERED,
    )
    return report(f"it is step {number} of {campaign}", key, Recover(row))


def _step_of(
    lead: Lead, message: ProviderMessage, rows: list[LedgerEntry], templates: list[Template]
) -> tuple[str, int, str | None] | None:
    """The lead's campaign step this text is: a ledger row of the lead with the same text (one
    that failed, say), else the one template of the lead's campaign that renders to it."""
    for row in rows:
        if (row.phone, row.text) == (message.phone, message.text):
            return row.campaign_id, row.step, row.variant
    matches: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
    for template in templates:
        if template.campaign == lead.campaign_id and _renders(template, lead) == message.text:
            matches[(template.campaign, template.step)].add(template.variant)
    if len(matches) != 1:
        return None
    ((campaign, step), variants), *_ = matches.items()
    return campaign, step, lead.variant if lead.variant in variants else min(variants)


def _renders(template: Template, lead: Lead) -> str | None:
    try:
        return render(template, lead, lead.short_link_url or "")
    except MissingField:
        return None


def _lead_checks(lead: Lead, rows: list[LedgerEntry]) -> list[Disagreement]:
    ours = [r for r in rows if lead.campaign_id in (None, r.campaign_id)]
    sent = [r for r in rows if r.status in SENT]
    found = []
    taken_in_until = lead.last_sent_at + SAME_MOMENT if lead.last_sent_at else None
    missed = [
        r
        for r in sent
        if _after(sent_time(r), taken_in_until) or (r in ours and r.step > lead.sequence_position)
    ]
    if missed:
        top = max(in_order(missed), key=lambda r: r.step)
        found.append(
            Disagreement(
                Kind.LEAD_BEHIND_LEDGER,
                lead.id,
                top.send_key,
                top.provider_message_id,
                f"the lead is at step {lead.sequence_position}, last texted"
                f" {_at(lead.last_sent_at)}; the ledger has step {top.step} sent"
                f" {_at(sent_time(top))}",
                CatchUp(lead, tuple(missed)),
            )
        )
    highest = max((r.step for r in ours if r.status in SENT | OPEN), default=0)
    if lead.sequence_position > highest:
        found.append(
            Disagreement(
                Kind.LEAD_AHEAD_OF_LEDGER,
                lead.id,
                None,
                None,
                f"the lead is at step {lead.sequence_position} of {lead.campaign_id or 'its'}"
                f" campaign but the ledger's highest step is {highest}",
            )
        )
    stop = _stopped_at(lead)
    if stop is not None:
        at, why = stop
        found += [
            Disagreement(
                Kind.SENT_AFTER_STOP,
                lead.id,
                r.send_key,
                r.provider_message_id,
                f"step {r.step} was sent {_at(sent_time(r))}, after the lead's {why} {_at(at)}",
            )
            for r in sent
            if _after(sent_time(r), at)
        ]
    return found


def _stopped_at(lead: Lead) -> tuple[datetime, str] | None:
    """A time by which texting had surely stopped, and why. The lead keeps no stop time, so this
    is the booked meeting's start (the booking came before it) or the reply that stopped it."""
    bounds = []
    if lead.booked and lead.booked_at:
        bounds.append((lead.booked_at, "booked meeting at"))
    stopping = classify(lead.last_reply_text) in (ReplyKind.OPT_OUT, ReplyKind.ANSWER)
    if lead.sms_stop and lead.last_reply_at and stopping:
        bounds.append((lead.last_reply_at, "reply at"))
    return min(bounds, default=None)


def _duplicates(by_lead: dict[str, list[LedgerEntry]]) -> list[Disagreement]:
    steps: defaultdict[tuple[str, str, int], list[LedgerEntry]] = defaultdict(list)
    for rows in by_lead.values():
        for row in rows:
            if row.status in SENT:
                steps[(row.lead_id, row.campaign_id, row.step)].append(row)
    found = []
    for (lead_id, campaign, step), rows in steps.items():
        first, *again = in_order(rows)
        found += [
            Disagreement(
                Kind.DUPLICATE_STEP,
                lead_id,
                row.send_key,
                row.provider_message_id,
                f"step {step} of {campaign} sent again {_at(sent_time(row))}; first sent"
                f" {_at(sent_time(first))} as message {first.provider_message_id}",
            )
            for row in again
        ]
    return found


def _sent(message: ProviderMessage) -> str:
    return f"the provider sent {mask(message.phone)} a text {_at(message.sent_at)}"


def _after(moment: datetime | None, reference: datetime | None) -> bool:
    """Whether `moment` is later than `reference`; anything is later than no time at all."""
    return moment is not None and (reference is None or moment > reference)


def _at(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "never"
