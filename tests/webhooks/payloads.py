"""Webhook bodies as the providers document them, with the values a test needs swapped in.

Calendly: the invitee.created / invitee.canceled examples of developer.calendly.com (webhook
payload, sample webhook data). SimpleTexting: the "Webhook Reports" examples of
api-doc.simpletexting.com (SingleReportDto with WebhookMessageDto, WebhookDeliveryReportDto,
WebhookUnsubscribeReportDto values).
"""

from __future__ import annotations

import copy
from typing import Any

CALENDLY_INVITEE: dict[str, Any] = {
    "created_at": "2020-11-23T17:51:19.000000Z",
    "created_by": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
    "event": "invitee.created",
    "payload": {
        "cancel_url": "https://calendly.com/cancellations/AAAAAAAAAAAAAAAA",
        "created_at": "2020-11-23T17:51:18.327602Z",
        "email": "test@example.com",
        "event": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2",
        "first_name": "John",
        "last_name": "Doe",
        "name": "John Doe",
        "new_invitee": None,
        "old_invitee": None,
        "questions_and_answers": [],
        "reschedule_url": "https://calendly.com/reschedulings/AAAAAAAAAAAAAAAA",
        "rescheduled": False,
        "status": "active",
        "text_reminder_number": None,
        "timezone": "America/New_York",
        "tracking": {
            "utm_campaign": None,
            "utm_source": None,
            "utm_medium": None,
            "utm_content": None,
            "utm_term": None,
            "salesforce_uuid": None,
        },
        "updated_at": "2020-11-23T17:51:18.341657Z",
        "uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA",
        "scheduled_event": {
            "uri": "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2",
            "name": "15 Minute Meeting",
            "status": "active",
            "start_time": "2019-08-24T14:15:22.123456Z",
            "end_time": "2019-08-24T14:30:22.123456Z",
            "event_type": "https://api.calendly.com/event_types/GBGBDCAADAEDCRZ2",
            "location": {"type": "physical", "location": "Calendly Office"},
            "invitees_counter": {"total": 1, "active": 1, "limit": 1},
            "created_at": "2019-01-02T03:04:05.092125Z",
            "updated_at": "2019-01-02T03:04:05.092125Z",
            "event_memberships": [{"user": "https://api.calendly.com/users/GBGBDCAADAEDCRZ2"}],
            "event_guests": [],
        },
    },
}
CANCELLATION = {
    "canceled_by": "John Doe",
    "reason": "Something came up",
    "canceler_type": "invitee",
    "created_at": "2020-11-24T09:00:00.000000Z",
}


def invitee(
    event: str = "invitee.created",
    *,
    invitee_id: str = "AAAAAAAAAAAAAAAA",
    email: str = "test@example.com",
    lead_id: str | None = None,
    start: str = "2026-11-19T15:00:00.000000Z",
    rescheduled: bool = False,
    text_reminder_number: str | None = None,
    questions_and_answers: list[dict] | None = None,
) -> dict[str, Any]:
    body = copy.deepcopy(CALENDLY_INVITEE)
    body["event"] = event
    payload = body["payload"]
    payload["uri"] = f"{payload['event']}/invitees/{invitee_id}"
    payload["email"] = email
    payload["tracking"] |= {"utm_source": "sms", "utm_content": lead_id} if lead_id else {}
    payload["scheduled_event"]["start_time"] = start
    payload["rescheduled"] = rescheduled
    payload["text_reminder_number"] = text_reminder_number
    payload["questions_and_answers"] = questions_and_answers or []
    if event == "invitee.canceled":
        payload["status"] = "canceled"
        payload["cancellation"] = CANCELLATION
        if rescheduled:
            payload["new_invitee"] = f"{payload['event']}/invitees/NEW{invitee_id}"
    return body


def incoming(
    text: str = "Hello! How are you?",
    *,
    contact: str = "8001234567",
    message_id: str = "507f191e810c19729de860ea",
    timestamp: str = "2020-04-28T23:20:08.489Z",
    type_: str = "INCOMING_MESSAGE",
) -> dict[str, Any]:
    return {
        "reportId": "507f191e810c19729de860ea",
        "webhookId": "507f191e810c19729de860ea",
        "type": type_,
        "values": {
            "messageId": message_id,
            "subject": "Some message from SimpleTexting",
            "mediaItems": [],
            "text": text,
            "accountPhone": "8005551234",
            "contactPhone": contact,
            "timestamp": timestamp,
            "category": "SMS",
            "referenceType": "API",
        },
    }


def receipt(
    message_id: str = "507f191e810c19729de860ea",
    *,
    delivered: bool = True,
    contact: str = "8001234567",
    carrier: str = "Verizon",
) -> dict[str, Any]:
    return {
        "reportId": f"r-{message_id}",
        "webhookId": "507f191e810c19729de860ea",
        "type": "DELIVERY_REPORT" if delivered else "NON_DELIVERED_REPORT",
        "values": {
            "messageId": message_id,
            "category": "SMS",
            "referenceType": "API",
            "accountPhone": "8005551234",
            "contactPhone": contact,
            "carrier": carrier,
        },
    }


def unsubscribe(phone: str = "8001234567", *, report_id: str = "507f191e810c19729de860ea"):
    return {
        "reportId": report_id,
        "webhookId": "507f191e810c19729de860ea",
        "type": "UNSUBSCRIBE_REPORT",
        "values": {"contactId": "507f191e810c19729de860ea", "phone": phone},
    }


def us_digits(e164: str) -> str:
    """A lead's '+12125550001' as SimpleTexting writes it: '2125550001'."""
    return e164.removeprefix("+1")
