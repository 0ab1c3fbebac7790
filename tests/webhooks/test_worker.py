"""The inbox worker's processing of a batch: in order, isolated, retried, stops first."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from integrations.sqlite_store import SqliteStore
from tasks.events import process, read_event
from tests.builders import make_lead
from tests.webhooks import payloads
from uysp.events import InboxEvent
from uysp.models import StopReason
from webhooks.inbox import MAX_ATTEMPTS


def keep(svc, inbox, source: str, payload: dict) -> InboxEvent:
    body = json.dumps(payload).encode()
    event_id, kind, _ = read_event(source, body)
    inbox.add(InboxEvent(event_id, source, kind, body, svc.clock.now()))
    return inbox.get(event_id)


def text(lead, words: str, message_id: str) -> dict:
    return payloads.incoming(words, contact=payloads.us_digits(lead.phone), message_id=message_id)


class FailingStore(SqliteStore):
    """The SQLite store, failing on demand: reads of one phone, or every write."""

    failing_phone: str | None = None
    writes_fail = False

    def find_leads(self, *, ids=(), emails=(), phones=()):
        if self.failing_phone in phones:
            raise ConnectionError("store unreachable")
        return super().find_leads(ids=ids, emails=emails, phones=phones)

    def record_sends(self, entries, lead_updates):
        if self.writes_fail:
            raise ConnectionError("store unreachable")
        super().record_sends(entries, lead_updates)


@pytest.fixture
def store(db):
    return FailingStore(db)


def test_events_that_can_stop_texting_are_worked_first(services, inbox):
    (lead,) = services.store.add_leads([make_lead(1)])
    receipts = [keep(services, inbox, "simpletexting", payloads.receipt(f"m{n}")) for n in range(5)]
    booking = keep(services, inbox, "calendly", payloads.invitee(lead_id=lead.id))
    reply = keep(services, inbox, "simpletexting", text(lead, "STOP", "m-stop"))

    due = inbox.due(services.clock.now())

    assert [e.id for e in due] == [booking.id, reply.id, *(r.id for r in receipts)]


def test_a_batch_applies_its_events_in_order_each_seeing_the_last(services, inbox):
    first, second = services.store.add_leads([make_lead(1), make_lead(2)])
    events = [
        keep(services, inbox, "simpletexting", text(first, "STOP", "m1")),
        keep(services, inbox, "simpletexting", text(first, "START", "m2")),
        keep(services, inbox, "calendly", payloads.invitee(lead_id=second.id)),
        keep(services, inbox, "calendly", payloads.invitee("invitee.canceled", lead_id=second.id)),
    ]

    assert process(services, inbox, events) == ["done"] * 4

    after = {lead.id: lead for lead in services.store.get_leads([first.id, second.id])}
    opted_in, canceled = after[first.id], after[second.id]
    assert (opted_in.sms_stop, opted_in.stop_reason) == (False, None)
    assert (canceled.booked, canceled.sms_stop) == (False, True)


def test_a_failing_event_is_retried_later_and_the_rest_of_its_batch_applied(services, inbox):
    unlucky, lucky = services.store.add_leads([make_lead(1), make_lead(2)])
    services.store.failing_phone = unlucky.phone
    events = [
        keep(services, inbox, "simpletexting", text(unlucky, "STOP", "m1")),
        keep(services, inbox, "simpletexting", text(lucky, "STOP", "m2")),
    ]

    assert process(services, inbox, events) == ["pending", "done"]
    assert services.store.stopped_among([unlucky.id, lucky.id]) == {lucky.id}
    assert inbox.due(services.clock.now()) == []  # it waits before the next try

    services.store.failing_phone = None
    services.clock.advance(timedelta(seconds=5))
    (again,) = inbox.due(services.clock.now())
    assert process(services, inbox, [again]) == ["done"]
    assert services.store.stopped_among([unlucky.id]) == {unlucky.id}


def test_a_failed_store_write_retries_the_whole_batch(services, inbox):
    (lead,) = services.store.add_leads([make_lead(1)])
    services.store.writes_fail = True
    event = keep(services, inbox, "calendly", payloads.invitee(lead_id=lead.id))

    assert process(services, inbox, [event]) == ["pending"]
    assert "store write failed" in inbox.get(event.id).detail
    assert services.notifier.sent == []  # nothing is announced that was not written


def test_an_event_failing_every_time_is_dead_lettered_with_an_alert(services, inbox):
    (lead,) = services.store.add_leads([make_lead(1)])
    services.store.failing_phone = lead.phone
    event = keep(services, inbox, "simpletexting", text(lead, "Hi", "m1"))

    statuses = [process(services, inbox, [inbox.get(event.id)])[0] for _ in range(MAX_ATTEMPTS)]

    assert statuses == ["pending"] * (MAX_ATTEMPTS - 1) + ["dead"]
    dead = inbox.db.query(
        "SELECT reason, attempts FROM dead_letters WHERE event_id = ?", (event.id,)
    )
    assert [(r["reason"], r["attempts"]) for r in dead] == [
        ("ConnectionError: store unreachable", MAX_ATTEMPTS)
    ]
    ((channel, alert),) = services.notifier.sent
    assert channel == "alerts" and event.id in alert.title


def test_the_stop_reason_keeps_the_weightiest_cause(services, inbox):
    (lead,) = services.store.add_leads([make_lead(1)])
    events = [
        keep(services, inbox, "simpletexting", text(lead, "STOP", "m1")),
        keep(services, inbox, "calendly", payloads.invitee(lead_id=lead.id)),
        keep(services, inbox, "simpletexting", text(lead, "thanks, see you then", "m2")),
    ]

    process(services, inbox, events)

    (after,) = services.store.get_leads([lead.id])
    assert (after.stop_reason, after.booked) == (StopReason.STOP, True)
