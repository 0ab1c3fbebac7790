"""Events from the outside world, and what each one does to a lead.

An event arrives at the webhook receiver, is kept in the inbox, and is processed once. The
models here are the parsed forms the processing works on; parsing each provider's body is the
job of its adapter (integrations/calendly.py, integrations/simpletexting_events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from uysp.models import Lead, ProcessingStatus, StopReason
from uysp.sequence import MAX_STEPS


class PayloadError(ValueError):
    """A body that is not the event it claims to be; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class InboxEvent:
    """One event as the inbox keeps it: the raw body, exactly as received."""

    id: str
    source: str
    kind: str
    body: bytes
    received_at: datetime
    status: str = "pending"
    attempts: int = 0
    detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What processing an event came to: done, worth another try later, or dead (kept in the
    dead-letter table until `uysp events replay` retries it)."""

    status: Literal["done", "retry", "dead"]
    detail: str

    @classmethod
    def done(cls, detail: str) -> Outcome:
        return cls("done", detail)

    @classmethod
    def retry(cls, detail: str) -> Outcome:
        return cls("retry", detail)

    @classmethod
    def dead(cls, detail: str) -> Outcome:
        return cls("dead", detail)


# Calendly
INVITEE_CREATED = "invitee.created"
INVITEE_CANCELED = "invitee.canceled"


@dataclass(frozen=True)
class Booking:
    """A Calendly invitee event."""

    event: str
    invitee_uri: str | None
    lead_id: str | None = None  # tracking.utm_content, which our links set to the lead id
    email: str | None = None
    phone: str | None = None  # E.164, when the invitee gave a usable number
    start_time: datetime | None = None
    rescheduled: bool = False


# SimpleTexting
class ReportType(StrEnum):
    INCOMING_MESSAGE = "INCOMING_MESSAGE"
    OUTGOING_MESSAGE = "OUTGOING_MESSAGE"
    DELIVERY_REPORT = "DELIVERY_REPORT"
    NON_DELIVERED_REPORT = "NON_DELIVERED_REPORT"
    UNSUBSCRIBE_REPORT = "UNSUBSCRIBE_REPORT"


@dataclass(frozen=True)
class TextReport:
    """A SimpleTexting webhook report."""

    type: ReportType
    phone: str | None = None  # the contact's number, E.164
    text: str = ""
    message_id: str | None = None
    carrier: str | None = None
    sent_at: datetime | None = None


STOPPING_KINDS = frozenset(
    {
        INVITEE_CREATED,
        INVITEE_CANCELED,
        ReportType.INCOMING_MESSAGE,
        ReportType.UNSUBSCRIBE_REPORT,
    }
)
"""Events that can stop texting someone: the inbox works them first."""


# The local shortener
# "bot" covers Slackbot, Twitterbot, Applebot and Googlebot; "preview" covers SkypeUriPreview.
PREVIEW_AGENTS = ("facebookexternalhit", "whatsapp", "google-pagerenderer", "bot", "preview")


def counts_as_click(method: str, user_agent: str | None) -> bool:
    """A HEAD request or a link-preview or scanner agent is kept, but is not a person clicking:
    only people count towards a lead's Click Count (which the click tracker syncs)."""
    agent = (user_agent or "").lower()
    return method.upper() == "GET" and not any(name in agent for name in PREVIEW_AGENTS)


# What events do to a lead. A stop reason only gives way to a weightier one: STOP is a legal
# opt-out and outranks a booking, which outranks a reply; any reason outranks none.
_WEIGHT = {StopReason.STOP: 3, StopReason.BOOKED: 2}
_ACTIVE = (ProcessingStatus.READY, ProcessingStatus.IN_SEQUENCE, ProcessingStatus.QUEUED)


def stop_fields(lead: Lead, reason: StopReason) -> dict:
    """Stop texting this lead, keeping a weightier stop reason it already has."""
    fields: dict = {"sms_stop": True}
    current = lead.stop_reason if lead.sms_stop else None
    if current is None or _WEIGHT.get(reason, 1) > _WEIGHT.get(current, 1):
        fields["stop_reason"] = reason
    if reason == StopReason.STOP:
        fields["processing_status"] = ProcessingStatus.STOPPED
    elif lead.processing_status in _ACTIVE or lead.processing_status is None:
        done = reason == StopReason.BOOKED
        fields["processing_status"] = (
            ProcessingStatus.COMPLETE if done else ProcessingStatus.STOPPED
        )
    return fields


def opt_in_fields(lead: Lead) -> dict:
    """Undo an opt-out: the sequence picks up where it stopped."""
    if lead.sequence_position >= MAX_STEPS:
        status = ProcessingStatus.COMPLETE
    elif lead.sequence_position:
        status = ProcessingStatus.IN_SEQUENCE
    else:
        status = ProcessingStatus.READY
    return {"sms_stop": False, "stop_reason": None, "processing_status": status}


def reply_fields(lead: Lead, text: str, at: datetime) -> dict:
    """The latest reply; one that arrives late never overwrites a newer one."""
    if lead.last_reply_at is not None and lead.last_reply_at > at:
        return {}
    return {"last_reply_at": at, "last_reply_text": text}
