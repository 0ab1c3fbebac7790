"""Processing events from the inbox: bookings, texts from leads, delivery receipts.

`process` is the one path every event takes: the receiver's embedded worker calls it directly
with each batch of due events (a flow run per event would cost more than the 1-second budget for
stopping a booked lead), and the booking, inbound and delivery flows call it for their one event
through the `process-event` task. Processing is idempotent: lead updates set values rather than
add to them and never touch a counter, the help reply is reserved in the ledger under the
event's id, and a receipt never overwrites a message's first final status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from integrations import calendly, simpletexting_events
from integrations.sqlite_store import SqliteDatabase
from tasks.runtime import services
from uysp.errors import OutcomeUnknownError, SendError, TransientSendError
from uysp.events import (
    INVITEE_CANCELED,
    INVITEE_CREATED,
    Booking,
    InboxEvent,
    Outcome,
    PayloadError,
    ReportType,
    TextReport,
    opt_in_fields,
    reply_fields,
    stop_fields,
)
from uysp.models import Lead, LedgerEntry, LedgerStatus, SmsStatus, StopReason
from uysp.phones import mask
from uysp.ports import Channel, Notice, Services
from uysp.replies import ReplyKind, classify, help_text
from uysp.segments import segment_count
from uysp.settings import get_settings
from webhooks.inbox import MAX_ATTEMPTS, Inbox

log = logging.getLogger(__name__)
FINAL = (LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED)


def read_event(source: str, body: bytes) -> tuple[str, str, Booking | TextReport]:
    """The id, kind and parsed form of a body from this source. Raises PayloadError."""
    if source == "calendly":
        booking = calendly.parse(body)
        return calendly.event_id(booking, body), booking.event, booking
    if source == "simpletexting":
        report, report_id = simpletexting_events.parse(body)
        return simpletexting_events.event_id(report, report_id, body), report.type, report
    raise PayloadError("source", f"unknown event source {source!r}")


class Batch:
    """The effects of a batch of events, written to the store at once: each event reads the
    leads and ledger rows as the events before it left them, and the batch's changes are one
    store write (one transaction on SQLite, ten records a request on Airtable). Notices go out
    once that write has succeeded."""

    def __init__(self, svc: Services, inbox: Inbox) -> None:
        self.svc = svc
        self.inbox = inbox
        self.lead_changes: dict[str, dict] = {}
        self.rows: dict[str, LedgerEntry] = {}
        self.notices: list[tuple[Channel, Notice]] = []

    @contextmanager
    def event(self) -> Iterator[None]:
        """One event's changes: kept when it succeeds, undone when it raises."""
        saved = (
            {lead_id: dict(fields) for lead_id, fields in self.lead_changes.items()},
            dict(self.rows),
            list(self.notices),
        )
        try:
            yield
        except BaseException:
            self.lead_changes, self.rows, self.notices = saved
            raise

    def find_leads(self, **identity: Sequence[str]) -> list[Lead]:
        return [self._current(lead) for lead in self.svc.store.find_leads(**identity)]

    def lead(self, lead_id: str) -> Lead | None:
        found = self.svc.store.get_leads([lead_id])
        return self._current(found[0]) if found else None

    def ledger_row(self, message_id: str) -> LedgerEntry | None:
        found = self.svc.store.ledger_by_message_ids([message_id])
        return self.rows.get(found[0].send_key, found[0]) if found else None

    def _current(self, lead: Lead) -> Lead:
        changes = self.lead_changes.get(lead.id)
        return lead.model_copy(update=changes) if changes else lead

    def update(self, lead_id: str, fields: dict) -> None:
        if fields:
            self.lead_changes.setdefault(lead_id, {}).update(fields)

    def update_row(self, row: LedgerEntry) -> None:
        self.rows[row.send_key] = row

    def notify(self, channel: Channel, notice: Notice) -> None:
        self.notices.append((channel, notice))

    def write(self) -> None:
        if self.rows or self.lead_changes:
            self.svc.store.record_sends(list(self.rows.values()), self.lead_changes)
        for channel, notice in self.notices:
            self.svc.notifier.notify(channel, notice)


def process(svc: Services, inbox: Inbox, events: Sequence[InboxEvent]) -> list[str]:
    """Apply events in order, write their effects, then settle them in the inbox; returns their
    statuses after. Events applied but not settled (a crash in between) are applied again."""
    batch = Batch(svc, inbox)
    results: list[tuple[Outcome, bool]] = []  # the outcome, and whether an error caused it
    for event in events:
        try:
            with batch.event():
                results.append((_apply(batch, event), False))
        except PayloadError as exc:
            results.append((Outcome.dead(f"invalid body: {exc}"), False))
        except Exception as exc:
            log.exception("event %s failed", event.id)
            results.append((Outcome.retry(f"{type(exc).__name__}: {exc}"), True))
    try:
        batch.write()
    except Exception as exc:
        log.exception("writing the effects of %d events failed", len(events))
        results = [(Outcome.retry(f"store write failed: {type(exc).__name__}: {exc}"), True)]
        results *= len(events)
    statuses = inbox.settle(
        [(event.id, outcome) for event, (outcome, _) in zip(events, results, strict=True)],
        svc.clock.now(),
    )
    for event, (outcome, failed), status in zip(events, results, statuses, strict=True):
        if failed and status == "dead":
            svc.notifier.notify(
                "alerts",
                Notice(
                    f"Event failed {MAX_ATTEMPTS} times and is dead-lettered: {event.id}",
                    [outcome.detail, "`uysp events replay` retries it"],
                    level="error",
                ),
            )
    return statuses


def _apply(batch: Batch, event: InboxEvent) -> Outcome:
    _, _, parsed = read_event(event.source, event.body)
    if isinstance(parsed, Booking):
        return apply_booking(batch, parsed)
    if parsed.type in (ReportType.INCOMING_MESSAGE, ReportType.UNSUBSCRIBE_REPORT):
        return apply_text(batch, event, parsed)
    if parsed.type in (ReportType.DELIVERY_REPORT, ReportType.NON_DELIVERED_REPORT):
        return apply_receipt(batch, event, parsed)
    return Outcome.done("outgoing message: nothing to do")


# Bookings
def apply_booking(batch: Batch, booking: Booking) -> Outcome:
    if booking.event not in (INVITEE_CREATED, INVITEE_CANCELED):
        return Outcome.done(f"Calendly {booking.event}: nothing to do")
    if booking.event == INVITEE_CANCELED and booking.rescheduled:
        return Outcome.done("rescheduled: the new booking follows")
    leads = same_person(batch, booking)
    who = _identity(booking)
    if not leads:
        batch.notify(
            "alerts",
            Notice(
                f"Calendly {booking.event} matches no lead",
                [who, "kept: `uysp events replay` retries it after an import"],
                level="warning",
            ),
        )
        return Outcome.dead(f"no lead matches {who}")
    if len(leads) > 1:
        batch.notify(
            "alerts",
            Notice(
                f"One booking, {len(leads)} lead records: duplicates of one person, all stopped",
                [_describe(lead) for lead in leads],
                level="warning",
            ),
        )
    if booking.event == INVITEE_CANCELED:
        return _cancel(batch, booking, leads)
    # Once this invitee's cancellation has arrived, in whatever order, the booking is void.
    canceled = batch.inbox.status(f"calendly:{INVITEE_CANCELED}:{booking.invitee_uri}") is not None
    booked = {} if canceled else {"booked": True, "booked_at": booking.start_time}
    for lead in leads:
        batch.update(lead.id, stop_fields(lead, StopReason.BOOKED) | booked)
    ids = ", ".join(lead.id for lead in leads)
    if canceled:
        return Outcome.done(f"booking already canceled: texting stopped for {ids}")
    return Outcome.done(f"booked {booking.start_time:%Y-%m-%d %H:%M}Z: stopped {ids}")


def _cancel(batch: Batch, booking: Booking, leads: list[Lead]) -> Outcome:
    for lead in leads:
        fields = stop_fields(lead, StopReason.BOOKED)
        # A later meeting of the same person stands when an earlier one's cancellation is late.
        if lead.booked_at is None or lead.booked_at == booking.start_time:
            fields |= {"booked": False, "booked_at": None}
        batch.update(lead.id, fields)
    batch.notify(
        "alerts",
        Notice(
            "Booking canceled: texting stays stopped, follow up by hand",
            [_describe(lead) for lead in leads],
            level="warning",
        ),
    )
    return Outcome.done(f"canceled: Booked cleared for {', '.join(lead.id for lead in leads)}")


def same_person(batch: Batch, booking: Booking) -> list[Lead]:
    """Leads matching the invitee by lead id (utm_content), email or phone, and every lead that
    shares an email or phone with those: one person, however many rows. In that order."""
    found = batch.find_leads(
        ids=[booking.lead_id] if booking.lead_id else [],
        emails=[booking.email] if booking.email else [],
        phones=[booking.phone] if booking.phone else [],
    )
    emails = {lead.email.lower() for lead in found if lead.email} - {booking.email}
    phones = {lead.phone for lead in found if lead.phone} - {booking.phone}
    if emails or phones:
        known = {lead.id for lead in found}
        more = batch.find_leads(emails=sorted(emails), phones=sorted(phones))
        found += [lead for lead in more if lead.id not in known]

    def rank(lead: Lead) -> int:
        if lead.id == booking.lead_id:
            return 0
        if booking.email and (lead.email or "").lower() == booking.email:
            return 1
        return 2 if lead.phone == booking.phone else 3

    return sorted(found, key=rank)


def _identity(booking: Booking) -> str:
    return (
        f"utm_content={booking.lead_id or '-'}, email={booking.email or '-'},"
        f" phone={mask(booking.phone) if booking.phone else '-'}"
    )


def _describe(lead: Lead) -> str:
    return f"{lead.name} ({lead.id}, {lead.email or 'no email'}, {mask(lead.phone)})"


# Texts from leads
def apply_text(batch: Batch, event: InboxEvent, report: TextReport) -> Outcome:
    leads = batch.find_leads(phones=[report.phone]) if report.phone else []
    at = report.sent_at or event.received_at
    replied = report.type == ReportType.INCOMING_MESSAGE
    kind = classify(report.text) if replied else ReplyKind.OPT_OUT
    opted_out = {lead.id for lead in leads if lead.sms_stop and lead.stop_reason == StopReason.STOP}
    if kind == ReplyKind.OPT_IN and not opted_out:
        kind = ReplyKind.ANSWER  # "yes" from someone who never opted out is an answer
    for lead in leads:
        fields = reply_fields(lead, report.text, at) if replied else {}
        if kind == ReplyKind.OPT_OUT:
            fields |= stop_fields(lead, StopReason.STOP)
        elif kind == ReplyKind.OPT_IN and lead.id in opted_out:
            fields |= opt_in_fields(lead)
        elif kind == ReplyKind.ANSWER:
            fields |= stop_fields(lead, StopReason.REPLY)
        batch.update(lead.id, fields)
    number = mask(report.phone)
    if kind == ReplyKind.OPT_OUT:
        if not leads:
            batch.notify(
                "alerts",
                Notice(
                    f"Opt-out from {number} matches no lead",
                    [
                        f"text: {report.text!r}",
                        "kept: `uysp events replay` retries it after an import",
                    ],
                    level="warning",
                ),
            )
            return Outcome.dead(f"opt-out from {number} matches no lead")
        return Outcome.done(f"opted out {len(leads)} lead(s) at {number}")
    if kind == ReplyKind.OPT_IN:
        return Outcome.done(f"opted back in {len(opted_out)} lead(s) at {number}")
    if kind == ReplyKind.HELP:
        return send_help(batch.svc, event, report.phone or "", leads)
    lines = [report.text or "(no text)"]
    lines += [_describe(lead) for lead in leads] or [f"from {number}"]
    title = f"Reply from {leads[0].name if leads else 'an unknown number'}"
    batch.notify("sales", Notice(title, lines, fields={"phone": number}))
    return Outcome.done(f"reply from {number}: sequence stopped for {len(leads)} lead(s)")


def send_help(svc: Services, event: InboxEvent, phone: str, leads: list[Lead]) -> Outcome:
    """Answer HELP once per message, at once: the ledger row is reserved under the event's id
    before the provider is called, under a key no sequence step can have."""
    text = help_text()
    lead = leads[0] if leads else None
    entry = LedgerEntry(
        send_key=f"help:{event.id}",
        status=LedgerStatus.RESERVED,
        event="help",
        lead_id=lead.id if lead else "",
        phone=phone,
        campaign_id="",
        step=0,
        text=text,
        segments=segment_count(text),
        reserved_at=svc.clock.now(),
    )
    if not svc.store.reserve_sends([entry]):
        return Outcome.done("help reply already sent")
    try:
        receipt = svc.gateway.send(phone, text, first_name=lead.first_name if lead else None)
    except OutcomeUnknownError as exc:
        return Outcome.done(f"help reply outcome unknown, left for reconciliation: {exc}")
    except SendError as exc:
        failed = {"status": LedgerStatus.FAILED, "error_class": exc.error_class, "error": str(exc)}
        svc.store.record_sends([entry.model_copy(update=failed)], {})
        if isinstance(exc, TransientSendError):
            return Outcome.retry(f"help reply failed, will retry: {exc}")
        return Outcome.done(f"help reply failed: {exc}")
    sent = {
        "status": LedgerStatus.SENT,
        "provider_message_id": receipt.message_id,
        "segments": receipt.segments or entry.segments,
        "credits": receipt.credits,
        "sent_at": svc.clock.now(),
    }
    svc.store.record_sends([entry.model_copy(update=sent)], {})
    return Outcome.done(f"help reply sent to {mask(phone)}")


# Delivery receipts
def apply_receipt(batch: Batch, event: InboxEvent, report: TextReport) -> Outcome:
    message_id = report.message_id or ""
    row = batch.ledger_row(message_id)
    if row is None:  # the receipt may beat our own record of the send: look again later
        return Outcome.retry(f"no ledger row has provider message id {message_id}")
    if row.status in FINAL:
        return Outcome.done(f"message {message_id} already {row.status}: late receipt ignored")
    delivered = report.type == ReportType.DELIVERY_REPORT
    carrier = report.carrier or row.carrier
    failure = None if delivered else f"not delivered (carrier: {carrier or 'unknown'})"
    receipt = {
        "status": LedgerStatus.DELIVERED if delivered else LedgerStatus.UNDELIVERED,
        "delivery_at": event.received_at,
        "carrier": carrier,
        "webhook_raw": event.body.decode(errors="replace"),
    }
    batch.update_row(row.model_copy(update=receipt | ({"error": failure} if failure else {})))
    lead = batch.lead(row.lead_id) if row.event == "send" else None
    if lead and lead.sequence_position <= row.step:  # a receipt for an earlier step is history
        fields: dict = {"sms_status": SmsStatus.DELIVERED if delivered else SmsStatus.FAILED}
        if failure:
            fields["error_log"] = f"{event.received_at:%Y-%m-%d %H:%M} {failure}"
        batch.update(lead.id, fields)
    if failure:
        batch.notify(
            "alerts",
            Notice(
                f"Text not delivered to {lead.name if lead else mask(row.phone)}",
                [f"{row.send_key}: {failure}", f"to {mask(row.phone)}"],
                level="warning",
            ),
        )
    return Outcome.done(f"message {message_id} {'delivered' if delivered else failure}")


# Prefect
@cache
def _inbox_at(path: Path) -> Inbox:
    return Inbox(SqliteDatabase(path))


def event_inbox() -> Inbox:
    """The inbox in this process's SQLite file."""
    return _inbox_at(Path(get_settings().sqlite_path).resolve())


@task(name="keep-event", cache_policy=NO_CACHE)
def keep_payload(source: str, payload: dict[str, Any]) -> str:
    """Put a payload handed to a flow into the inbox, as the receiver would; returns its id."""
    body = json.dumps(payload).encode()
    event_id, kind, _ = read_event(source, body)
    event_inbox().add(InboxEvent(event_id, source, kind, body, services().clock.now()))
    return event_id


@task(name="process-event", cache_policy=NO_CACHE)
def process_kept_event(event_id: str) -> dict[str, Any]:
    inbox = event_inbox()
    event = inbox.get(event_id)
    if event is None:
        raise ValueError(f"no event {event_id} in the inbox")
    if event.status != "done":
        process(services(), inbox, [event])
        event = inbox.get(event_id) or event
    return {"id": event.id, "kind": event.kind, "status": event.status, "detail": event.detail}
