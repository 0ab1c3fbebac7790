"""Calendly webhooks: the signature check and the invitee payload.

Signature (https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures): the
`Calendly-Webhook-Signature` header reads `t=<unix seconds>,v1=<hex>`, where v1 is the
HMAC-SHA256, keyed with the subscription's signing key, of `<t>.<raw body>`. A timestamp more
than 3 minutes from our clock is refused, so a captured request cannot be replayed later.

Payload (invitee.created / invitee.canceled): {"event", "created_at", "created_by", "payload":
{"uri", "email", "first_name", "last_name", "name", "status", "rescheduled", "old_invitee",
"new_invitee", "text_reminder_number", "questions_and_answers": [{"question", "answer",
"position"}], "tracking": {"utm_source", "utm_campaign", "utm_content", ...},
"scheduled_event": {"uri", "start_time", "end_time", ...}, "cancellation": {...}}}.
A rescheduled meeting arrives as an invitee.canceled with rescheduled=true for the old invitee
and an invitee.created for the new one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from uysp.events import INVITEE_CANCELED, INVITEE_CREATED, Booking, PayloadError
from uysp.phones import InvalidPhone, to_e164

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
TOLERANCE = timedelta(minutes=3)
_PHONE_QUESTION = re.compile(r"phone|mobile|cell|sms|text", re.IGNORECASE)


class SignatureError(Exception):
    """The request cannot be shown to come from Calendly."""


def sign(body: bytes, key: str, at: datetime) -> str:
    """The header value Calendly sends for this body at this time."""
    timestamp = int(at.timestamp())
    return f"t={timestamp},v1={_digest(key, timestamp, body)}"


def verify(header: str | None, body: bytes, key: str, now: datetime) -> None:
    """Raise SignatureError unless `header` signs `body` with `key` within the tolerance."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    timestamp, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or not given:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
    expected = _digest(key, int(timestamp), body).encode()
    if not hmac.compare_digest(expected, given.lower().encode()):
        raise SignatureError("signature does not match")
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
        raise SignatureError("signature timestamp is outside the 3-minute tolerance")


def _digest(key: str, timestamp: int, body: bytes) -> str:
    return hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Envelope(_Wire):
    event: str
    payload: dict[str, Any]


class _Tracking(_Wire):
    utm_content: str | None = None


class _Answer(_Wire):
    question: str = ""
    answer: str | None = None


class _ScheduledEvent(_Wire):
    start_time: datetime | None = None


class _Invitee(_Wire):
    uri: str
    email: str | None = None
    rescheduled: bool = False
    text_reminder_number: str | None = None
    questions_and_answers: list[_Answer] | None = None
    tracking: _Tracking | None = None
    scheduled_event: _ScheduledEvent | None = None


def parse(body: bytes) -> Booking:
    """The booking in a Calendly webhook body. Raises PayloadError naming the bad field."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError("body", f"not JSON ({exc})") from exc
    envelope = _validate(_Envelope, data, "")
    if envelope.event not in (INVITEE_CREATED, INVITEE_CANCELED):
        return Booking(event=envelope.event, invitee_uri=envelope.payload.get("uri"))
    invitee = _validate(_Invitee, envelope.payload, "payload.")
    start = invitee.scheduled_event.start_time if invitee.scheduled_event else None
    if envelope.event == INVITEE_CREATED and start is None:
        raise PayloadError("payload.scheduled_event.start_time", "required for invitee.created")
    return Booking(
        event=envelope.event,
        invitee_uri=invitee.uri,
        lead_id=(invitee.tracking.utm_content or None) if invitee.tracking else None,
        email=(invitee.email or "").strip().lower() or None,
        phone=_phone(invitee),
        start_time=start,
        rescheduled=invitee.rescheduled,
    )


def event_id(booking: Booking, body: bytes) -> str:
    """Calendly's invitee uri names the event; a created and a canceled share it, so the event
    name is part of the id. Events without a uri fall back to the body's hash."""
    if booking.invitee_uri:
        return f"calendly:{booking.event}:{booking.invitee_uri}"
    return f"calendly:{booking.event}:sha256:{hashlib.sha256(body).hexdigest()}"


def _validate(model: type[_Wire], data: Any, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise PayloadError(f"{prefix}{field}".rstrip(".") or "body", error["msg"]) from exc


def _phone(invitee: _Invitee) -> str | None:
    """The SMS reminder number, else an answer to a question that asks for a phone."""
    candidates = [invitee.text_reminder_number] + [
        qa.answer
        for qa in invitee.questions_and_answers or ()
        if _PHONE_QUESTION.search(qa.question)
    ]
    for raw in candidates:
        try:
            return to_e164(raw)
        except InvalidPhone:
            continue
    return None
