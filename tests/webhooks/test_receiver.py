"""The receiver's promises over HTTP: verified, kept before the 2xx, processed once, visible."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from integrations import calendly
from tests.builders import make_lead
from tests.webhooks import payloads
from tests.webhooks.conftest import SIGNING_KEY
from uysp.models import LedgerEntry, LedgerStatus, StopReason

DOCUMENTED_PHONE = "+18001234567"  # contactPhone 8001234567 in SimpleTexting's examples
DOCUMENTED_MESSAGE = "507f191e810c19729de860ea"


@pytest.fixture
def lead(receiver):
    """The lead the providers' documented examples are about, with one text sent."""
    store = receiver.svc.store
    (lead,) = store.add_leads([make_lead(1, phone=DOCUMENTED_PHONE, email="test@example.com")])
    row = LedgerEntry(
        send_key=f"{lead.id}:c1:1",
        status=LedgerStatus.RESERVED,
        lead_id=lead.id,
        phone=lead.phone,
        campaign_id="c1",
        step=1,
        text="Hi",
        reserved_at=receiver.svc.clock.now(),
    )
    store.reserve_sends([row])
    sent = {"status": LedgerStatus.SENT, "provider_message_id": DOCUMENTED_MESSAGE}
    store.record_sends([row.model_copy(update=sent)], {lead.id: {"sequence_position": 1}})
    return lead


def fresh(receiver, lead):
    (after,) = receiver.svc.store.get_leads([lead.id])
    return after


def ledger_row(receiver):
    (row,) = receiver.svc.store.ledger_by_message_ids([DOCUMENTED_MESSAGE])
    return row


def test_a_signed_booking_is_kept_acknowledged_and_stops_its_lead(receiver, lead):
    response = receiver.calendly(payloads.invitee(lead_id=lead.id))

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    event = receiver.processed(response.json()["id"])
    assert event.status == "done"
    after = fresh(receiver, lead)
    assert (after.booked, after.sms_stop, after.stop_reason) == (True, True, StopReason.BOOKED)


@pytest.mark.parametrize(
    "signature",
    [
        "",  # no header at all
        "t=1,v1=",
        "v1=abc",
        "garbage",
        "t=notanumber,v1=00",
        "t=1,v1=\u00e9".encode("latin-1"),  # a header byte outside ASCII
    ],
)
def test_calendly_without_a_usable_signature_is_401_and_nothing_is_kept(receiver, lead, signature):
    response = receiver.calendly(payloads.invitee(lead_id=lead.id), signature=signature)

    assert response.status_code == 401
    assert receiver.inbox.counts()["pending"] + receiver.inbox.counts()["done"] == 0
    assert not fresh(receiver, lead).booked


def test_calendly_signed_with_another_key_or_for_another_body_is_401(receiver, lead):
    body = json.dumps(payloads.invitee(lead_id=lead.id)).encode()
    now = receiver.svc.clock.now()
    wrong_key = calendly.sign(body, "not-the-key", now)
    other_body = calendly.sign(body + b" ", SIGNING_KEY, now)

    assert receiver.calendly(body, signature=wrong_key).status_code == 401
    assert receiver.calendly(body, signature=other_body).status_code == 401
    assert receiver.inbox.events() == []


def test_a_stale_signature_is_401(receiver, lead):
    body = json.dumps(payloads.invitee(lead_id=lead.id)).encode()
    signed_4_minutes_ago = calendly.sign(
        body, SIGNING_KEY, receiver.svc.clock.now() - timedelta(minutes=4)
    )

    response = receiver.calendly(body, signature=signed_4_minutes_ago)

    assert response.status_code == 401
    assert "tolerance" in response.json()["error"]


def test_a_replayed_request_is_acknowledged_and_processed_once(receiver, lead):
    body = json.dumps(payloads.invitee(lead_id=lead.id)).encode()
    signature = calendly.sign(body, SIGNING_KEY, receiver.svc.clock.now())

    first = receiver.calendly(body, signature=signature)
    receiver.processed(first.json()["id"])
    again = receiver.calendly(body, signature=signature)

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    (event,) = receiver.inbox.events()
    assert event.attempts == 1
    receiver.svc.clock.advance(timedelta(minutes=4))
    assert receiver.calendly(body, signature=signature).status_code == 401


@pytest.mark.parametrize("token", ["", "st-test-tokeN", "st-test-token-and-more"])
def test_simpletexting_without_the_token_is_401(receiver, lead, token):
    response = receiver.simpletexting(payloads.incoming("STOP"), token=token)

    assert response.status_code == 401
    assert not fresh(receiver, lead).sms_stop


@pytest.mark.parametrize(
    ("kind", "payload", "lead_fields", "ledger_status"),
    [
        (
            "simpletexting",
            payloads.incoming(),
            {"sms_stop": True, "stop_reason": "REPLY", "last_reply_text": "Hello! How are you?"},
            LedgerStatus.SENT,
        ),
        (
            "simpletexting",
            payloads.incoming(type_="OUTGOING_MESSAGE", message_id="507f191e810c19729de860eb"),
            {"sms_stop": False},
            LedgerStatus.SENT,
        ),
        ("simpletexting", payloads.receipt(), {"sms_status": "Delivered"}, LedgerStatus.DELIVERED),
        (
            "simpletexting",
            payloads.receipt(delivered=False),
            {"sms_status": "Failed"},
            LedgerStatus.UNDELIVERED,
        ),
        (
            "simpletexting",
            payloads.unsubscribe(),
            {"sms_stop": True, "stop_reason": "STOP", "processing_status": "Stopped"},
            LedgerStatus.SENT,
        ),
        ("calendly", payloads.invitee(), {"booked": True, "stop_reason": "BOOKED"}, None),
        (
            "calendly",
            payloads.invitee("invitee.canceled"),
            {"booked": False, "sms_stop": True},
            None,
        ),
    ],
    ids=[
        "incoming",
        "outgoing",
        "delivered",
        "not-delivered",
        "unsubscribe",
        "created",
        "canceled",
    ],
)
def test_every_documented_payload_type_is_accepted_and_processed(
    receiver, lead, kind, payload, lead_fields, ledger_status
):
    event = receiver.send(kind, payload)

    assert event.status == "done", event.detail
    after = fresh(receiver, lead).model_dump()
    assert {name: after[name] for name in lead_fields} == lead_fields
    if ledger_status:
        assert ledger_row(receiver).status == ledger_status


@pytest.mark.parametrize("kind", ["calendly", "simpletexting"])
def test_a_body_over_256_kib_is_413_and_not_kept(receiver, kind):
    payload = payloads.incoming("x" * (256 * 1024))

    response = getattr(receiver, kind)(payload)

    assert response.status_code == 413
    assert receiver.inbox.events() == []


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("simpletexting", b"not json", "body"),
        ("simpletexting", b"[1, 2]", "body"),
        ("simpletexting", json.dumps({"values": {}}).encode(), "type"),
        ("simpletexting", json.dumps({"type": "SOMETHING", "values": {}}).encode(), "type"),
        ("simpletexting", json.dumps({"type": "INCOMING_MESSAGE"}).encode(), "values"),
        (
            "simpletexting",
            json.dumps({"type": "INCOMING_MESSAGE", "values": {"text": "hi"}}).encode(),
            "values.contactPhone",
        ),
        (
            "simpletexting",
            json.dumps({"type": "DELIVERY_REPORT", "values": {"carrier": "x"}}).encode(),
            "values.messageId",
        ),
        (
            "simpletexting",
            json.dumps(payloads.incoming(contact="12")).encode(),
            "values.contactPhone",
        ),
        ("calendly", b"\xff\xfe", "body"),
        ("calendly", json.dumps({"payload": {}}).encode(), "event"),
        (
            "calendly",
            json.dumps({"event": "invitee.created", "payload": {}}).encode(),
            "payload.uri",
        ),
    ],
)
def test_an_invalid_body_is_400_naming_the_field_and_its_bytes_are_kept(
    receiver, kind, body, field
):
    response = getattr(receiver, kind)(body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field in response.json()["error"]
    kept = receiver.inbox.get(response.json()["kept"])
    assert kept.body == body
    assert kept.status == "dead"


def test_a_booking_without_a_start_time_names_that_field(receiver):
    body = payloads.invitee()
    del body["payload"]["scheduled_event"]["start_time"]

    response = receiver.calendly(body)

    assert response.status_code == 400
    assert response.json()["field"] == "payload.scheduled_event.start_time"


def test_a_redelivered_receipt_is_acknowledged_and_processed_once(receiver, lead):
    first = receiver.simpletexting(payloads.receipt(delivered=False))
    receiver.processed(first.json()["id"])
    again = receiver.simpletexting(payloads.receipt(delivered=False))

    assert again.json()["status"] == "duplicate"
    failures = [n for channel, n in receiver.svc.notifier.sent if channel == "alerts"]
    assert len(failures) == 1


def test_healthz_shows_the_inbox(receiver, lead):
    receiver.send("simpletexting", payloads.receipt())
    receiver.simpletexting(b"junk")

    health = receiver.http.get("/healthz").json()

    assert health["status"] == "ok"
    assert health["dispatch"] == "embedded"
    assert health["inbox"] == {"pending": 0, "dispatched": 0, "done": 1, "dead": 1}
