"""The booking, inbound and delivery flows on a real Prefect test server, over every store.

Each event goes in as the flow's `payload` (kept in the inbox first, as the receiver would), so
these tests run the same processing the receiver's worker runs, plus the flow around it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey
from prefect.client.schemas.sorting import FlowRunSort
from typer.testing import CliRunner

from flows.booking import booking
from flows.delivery import delivery
from flows.inbound import inbound
from tasks.events import event_inbox, keep_payload
from tests.builders import make_lead
from tests.webhooks import payloads
from uysp.cli_events import events_app
from uysp.events import InboxEvent
from uysp.models import LedgerEntry, LedgerStatus, ProcessingStatus, SmsStatus, StopReason
from webhooks.dispatch import handler

START_1 = "2026-11-19T15:00:00.000000Z"
START_2 = "2026-11-20T18:30:00.000000Z"


def lead_by_id(svc, lead):
    (after,) = svc.store.get_leads([lead.id])
    return after


def alerts(svc, channel="alerts"):
    return [notice for sent_to, notice in svc.notifier.sent if sent_to == channel]


def text_from(lead, text, **options):
    return inbound(
        payload=payloads.incoming(text, contact=payloads.us_digits(lead.phone), **options)
    )


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)


# Bookings
def test_a_booking_stops_the_lead_and_records_the_meeting(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1, click_count=3, clicked_link=True)])

    result = booking(payload=payloads.invitee(lead_id=lead.id, start=START_1))

    assert result["status"] == "done"
    after = lead_by_id(svc, lead)
    assert (after.booked, after.booked_at) == (True, at(START_1))
    assert (after.sms_stop, after.stop_reason) == (True, StopReason.BOOKED)
    assert svc.store.stopped_among([lead.id]) == {lead.id}
    assert after.click_count == 3  # never zeroed


def test_every_lead_of_the_same_person_is_stopped_and_the_duplicates_reported(installed):
    svc = installed
    by_link, by_email, by_phone, stranger = svc.store.add_leads(
        [
            make_lead(1, email="ann@example.com"),
            make_lead(2, email="ANN@example.com"),
            make_lead(3, phone=make_lead(1).phone, email="other@example.com"),
            make_lead(4),
        ]
    )

    booking(payload=payloads.invitee(lead_id=by_link.id, email="ann@example.com"))

    same_person = [by_link.id, by_email.id, by_phone.id]
    assert svc.store.stopped_among([*same_person, stranger.id]) == set(same_person)
    (duplicates,) = [n for n in alerts(svc) if "duplicates" in n.title]
    assert [line.split("(")[1].split(",")[0] for line in duplicates.lines] == same_person


def test_the_invitee_is_found_by_email_then_by_phone_when_the_link_was_not_used(installed):
    svc = installed
    by_email, by_phone = svc.store.add_leads([make_lead(1), make_lead(2)])

    booking(payload=payloads.invitee(email="LEAD1@example.com", invitee_id="A"))
    booking(
        payload=payloads.invitee(
            email="someone@else.com",
            invitee_id="B",
            questions_and_answers=[{"question": "Mobile phone", "answer": by_phone.phone}],
        )
    )

    assert svc.store.stopped_among([by_email.id, by_phone.id]) == {by_email.id, by_phone.id}


@pytest.mark.parametrize("cancel_first", [False, True], ids=["in-order", "cancel-first"])
def test_a_reschedule_moves_the_meeting_and_nothing_else(installed, cancel_first):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    booking(payload=payloads.invitee(lead_id=lead.id, invitee_id="OLD", start=START_1))
    pair = [
        payloads.invitee("invitee.canceled", lead_id=lead.id, invitee_id="OLD", rescheduled=True),
        payloads.invitee(lead_id=lead.id, invitee_id="NEW", start=START_2),
    ]
    for payload in reversed(pair) if cancel_first else pair:
        assert booking(payload=payload)["status"] == "done"

    after = lead_by_id(svc, lead)
    assert (after.booked, after.booked_at, after.stop_reason) == (True, at(START_2), "BOOKED")
    assert not [n for n in alerts(svc) if "canceled" in n.title]


def test_a_plain_cancellation_clears_booked_keeps_texting_stopped_and_alerts(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    booking(payload=payloads.invitee(lead_id=lead.id, start=START_1))

    booking(payload=payloads.invitee("invitee.canceled", lead_id=lead.id, start=START_1))

    after = lead_by_id(svc, lead)
    assert (after.booked, after.booked_at) == (False, None)
    assert (after.sms_stop, after.stop_reason) == (True, StopReason.BOOKED)
    (alert,) = [n for n in alerts(svc) if "canceled" in n.title]
    assert lead.id in alert.lines[0]


def test_a_cancellation_that_arrives_before_its_booking_still_wins(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])

    booking(payload=payloads.invitee("invitee.canceled", lead_id=lead.id, start=START_1))
    booking(payload=payloads.invitee(lead_id=lead.id, start=START_1))

    after = lead_by_id(svc, lead)
    assert (after.booked, after.sms_stop) == (False, True)


def test_a_booking_with_no_lead_is_kept_and_replayed_after_the_import(installed):
    svc = installed
    payload = payloads.invitee(email="new.person@example.com", lead_id="recNotImportedYet")

    result = booking(payload=payload)

    assert result["status"] == "dead"
    assert "no lead matches" in result["detail"]
    assert [n.title for n in alerts(svc)] == ["Calendly invitee.created matches no lead"]
    (lead,) = svc.store.add_leads([make_lead(1, email="new.person@example.com")])

    replayed = CliRunner().invoke(events_app, ["replay"])

    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1, still dead 0" in replayed.output
    assert lead_by_id(svc, lead).booked
    assert event_inbox().get(result["id"]).status == "done"
    listed = CliRunner().invoke(events_app, ["list", "--status", "dead", "--json"])
    assert listed.output.strip() == "[]"


# Texts from leads
@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop.",
        "Opt-Out",
        "OPT OUT",
        "Unsubscribe",
        "please stop texting me",
        "Wrong number",
        "cancel",
        "Leave me alone!!",
    ],
)
def test_an_opt_out_stops_every_lead_with_the_number(installed, text):
    svc = installed
    first, second = svc.store.add_leads([make_lead(1), make_lead(2, phone=make_lead(1).phone)])

    result = text_from(first, text)

    assert result["status"] == "done"
    for lead in (first, second):
        after = lead_by_id(svc, lead)
        assert (after.sms_stop, after.stop_reason) == (True, StopReason.STOP)
        assert after.processing_status == ProcessingStatus.STOPPED
    assert alerts(svc, "sales") == []


def test_an_unsubscribe_report_is_an_opt_out(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])

    inbound(payload=payloads.unsubscribe(payloads.us_digits(lead.phone)))

    assert lead_by_id(svc, lead).stop_reason == StopReason.STOP


def test_start_opts_back_in_only_after_a_stop(installed):
    svc = installed
    opted_out, booked = svc.store.add_leads([make_lead(1, sequence_position=1), make_lead(2)])
    text_from(opted_out, "STOP", message_id="m1")
    booking(payload=payloads.invitee(lead_id=booked.id))

    text_from(opted_out, "START", message_id="m2")
    text_from(booked, "Yes", message_id="m3")

    after = lead_by_id(svc, opted_out)
    assert (after.sms_stop, after.stop_reason) == (False, None)
    assert after.processing_status == ProcessingStatus.IN_SEQUENCE
    still = lead_by_id(svc, booked)
    assert (still.sms_stop, still.stop_reason) == (True, StopReason.BOOKED)
    assert [n.lines[0] for n in alerts(svc, "sales")] == ["Yes"]


def test_help_gets_one_help_reply_and_the_sequence_goes_on(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1, processing_status=ProcessingStatus.IN_SEQUENCE)])

    result = text_from(lead, "help?")
    replayed = CliRunner().invoke(events_app, ["replay", result["id"]])

    assert "help reply already sent" in replayed.output
    (reply,) = svc.gateway.outbox()
    assert reply.phone == lead.phone
    for words in ("UYSP", "msgs per campaign", "Msg & data rates may apply", "Reply STOP"):
        assert words in reply.text
    (row,) = svc.store.ledger_rows(lead_ids=[lead.id])
    assert (row.event, row.status, row.send_key) == ("help", "Sent", f"help:{result['id']}")
    after = lead_by_id(svc, lead)
    assert (after.sms_stop, after.processing_status) == (False, ProcessingStatus.IN_SEQUENCE)
    assert svc.store.stopped_among([lead.id]) == set()


def test_a_person_answering_stops_the_sequence_and_tells_sales(installed):
    svc = installed
    first, second = svc.store.add_leads([make_lead(1), make_lead(2, phone=make_lead(1).phone)])

    text_from(first, "Sounds good, what times do you have Thursday?")

    for lead in (first, second):
        after = lead_by_id(svc, lead)
        assert (after.sms_stop, after.stop_reason) == (True, StopReason.REPLY)
        assert after.last_reply_text == "Sounds good, what times do you have Thursday?"
        assert after.last_reply_at == at("2020-04-28T23:20:08.489Z")
    (notice,) = alerts(svc, "sales")
    assert notice.lines[0] == "Sounds good, what times do you have Thursday?"
    assert first.phone not in " ".join(notice.lines)  # masked to the last 4 digits


def test_a_late_older_reply_does_not_overwrite_the_latest(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])

    text_from(lead, "newer", message_id="m2", timestamp="2026-11-17T15:00:00Z")
    text_from(lead, "older", message_id="m1", timestamp="2026-11-17T14:00:00Z")

    assert lead_by_id(svc, lead).last_reply_text == "newer"


# Delivery receipts
def sent_text(svc, lead, step: int, message_id: str) -> LedgerEntry:
    row = LedgerEntry(
        send_key=f"{lead.id}:c1:{step}",
        status=LedgerStatus.RESERVED,
        lead_id=lead.id,
        phone=lead.phone,
        campaign_id="c1",
        step=step,
        text=f"step {step}",
        reserved_at=svc.clock.now(),
    )
    svc.store.reserve_sends([row])
    sent = row.model_copy(update={"status": LedgerStatus.SENT, "provider_message_id": message_id})
    svc.store.record_sends([sent], {lead.id: {"sequence_position": step}})
    return sent


def ledger(svc, message_id):
    (row,) = svc.store.ledger_by_message_ids([message_id])
    return row


def test_a_delivery_receipt_marks_the_message_delivered_quietly(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    sent_text(svc, lead, 1, "m1")

    delivery(payload=payloads.receipt("m1"))

    assert ledger(svc, "m1").status == LedgerStatus.DELIVERED
    assert lead_by_id(svc, lead).sms_status == SmsStatus.DELIVERED
    assert svc.notifier.sent == []


def test_a_failed_delivery_records_the_carrier_and_alerts(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    sent_text(svc, lead, 1, "m1")

    delivery(payload=payloads.receipt("m1", delivered=False, carrier="T-Mobile"))

    row = ledger(svc, "m1")
    assert (row.status, row.carrier) == (LedgerStatus.UNDELIVERED, "T-Mobile")
    assert lead_by_id(svc, lead).sms_status == SmsStatus.FAILED
    (alert,) = alerts(svc)
    assert "not delivered" in alert.title.lower()


def test_the_first_final_status_of_a_message_stands(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    sent_text(svc, lead, 1, "m1")

    delivery(payload=payloads.receipt("m1"))
    late = delivery(payload=payloads.receipt("m1", delivered=False))

    assert "late receipt ignored" in late["detail"]
    assert ledger(svc, "m1").status == LedgerStatus.DELIVERED
    assert lead_by_id(svc, lead).sms_status == SmsStatus.DELIVERED
    assert svc.notifier.sent == []


def test_a_receipt_for_an_earlier_step_leaves_the_lead_as_it_is(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    sent_text(svc, lead, 1, "m1")
    sent_text(svc, lead, 2, "m2")
    delivery(payload=payloads.receipt("m2"))

    delivery(payload=payloads.receipt("m1", delivered=False))

    assert ledger(svc, "m1").status == LedgerStatus.UNDELIVERED
    assert lead_by_id(svc, lead).sms_status == SmsStatus.DELIVERED


def test_a_receipt_that_beats_the_record_of_its_send_is_tried_again(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])

    first = delivery(payload=payloads.receipt("m1"))
    sent_text(svc, lead, 1, "m1")
    svc.clock.advance(timedelta(seconds=5))
    second = delivery(event_id=first["id"])

    assert first["status"] == "pending"
    assert second["status"] == "done"
    assert ledger(svc, "m1").status == LedgerStatus.DELIVERED


# Dispatch to a Prefect server
def keep(source: str, payload: dict) -> InboxEvent:
    """Keep a payload in the inbox, as the receiver does, without processing it."""
    return event_inbox().get(keep_payload.fn(source, payload))


@pytest.fixture
def deployments():
    """`<flow>/<flow>` for the three event flows, with no work pool: runs wait, unworked."""
    with get_client(sync_client=True) as client:
        ids = [
            client.create_deployment(client.create_flow_from_name(name), name)
            for name in ("booking", "inbound", "delivery")
        ]
    yield
    with get_client(sync_client=True) as client:
        for deployment_id in ids:
            client.delete_deployment(deployment_id)


def test_with_a_server_each_event_starts_its_flow_once(installed, deployments):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    event = keep("calendly", payloads.invitee(lead_id=lead.id, invitee_id=uuid4().hex))
    dispatch = handler("prefect", svc, event_inbox())

    dispatch([event])
    dispatch([event])  # a second start, say after a crash, finds the first run

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                idempotency_key=FlowRunFilterIdempotencyKey(any_=[event.id])
            ),
            sort=FlowRunSort.ID_DESC,
            limit=10,
        )
    assert [r.parameters for r in runs] == [{"event_id": event.id}]
    assert event_inbox().status(event.id) == "dispatched"
    assert not lead_by_id(svc, lead).booked  # the flow run does the work
    assert booking(event_id=event.id)["status"] == "done"
    assert lead_by_id(svc, lead).booked


def test_without_its_deployment_an_event_is_processed_here(installed):
    svc = installed
    (lead,) = svc.store.add_leads([make_lead(1)])
    event = keep("simpletexting", payloads.incoming("STOP", contact=payloads.us_digits(lead.phone)))

    handler("prefect", svc, event_inbox())([event])

    assert event_inbox().status(event.id) == "done"
    assert lead_by_id(svc, lead).stop_reason == StopReason.STOP
