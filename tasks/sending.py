"""Sending, exactly once: Reserved in the ledger before the provider call, Sent or Failed after.

One send re-reads the lead's stop flags right before the provider call, and its outcome says
what the ledger row and the lead become. A send whose answer never came stays Reserved for
reconciliation. tasks/send_pipeline.py runs these sends a chunk at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from uysp.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from uysp.models import (
    ErrorClass,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    SmsStatus,
    StopReason,
)
from uysp.phones import mask
from uysp.ports import Services
from uysp.sequence import MAX_STEPS

log = logging.getLogger(__name__)
WAVE = 10  # rows per store write: Airtable's batch size


@dataclass
class RunControl:
    """What the chunks of one run share: tallies, the error-rate brake and the halt flag."""

    run_id: str
    error_rate_pause: float
    min_attempts: int
    test_mode: bool = False
    test_phone: str | None = None
    booking_url: str | None = None
    attempts: int = 0
    sent: int = 0
    segments: int = 0
    credits: float = 0
    failed: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    unknown_keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    halt_reason: str | None = None
    auto_paused: bool = False
    under_way: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set once a chunk has handed texts to the gateway, or has ended without any."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def halted(self) -> bool:
        return self.halt_reason is not None

    def halt(self, reason: str) -> None:
        with self._lock:
            self.halt_reason = self.halt_reason or reason

    def hold(self, reason: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self.held[reason] += count

    def tally(self, outcome: SendOutcome) -> None:
        with self._lock:
            if outcome.skipped:
                self.held[outcome.skipped] += 1
                return
            self.attempts += 1
            if outcome.entry.status == LedgerStatus.SENT:
                self.sent += 1
                self.segments += outcome.entry.segments or 0
                self.credits += outcome.entry.credits or 0
            elif outcome.entry.status == LedgerStatus.RESERVED:
                self.failed["outcome_unknown"] += 1
                self.unknown_keys.append(outcome.entry.send_key)
            else:
                self.failed[outcome.entry.error_class or "error"] += 1
            if outcome.error and len(self.errors) < 20:
                self.errors.append(outcome.error)
            failures = sum(self.failed.values())
            if (
                self.attempts >= self.min_attempts
                and failures / self.attempts > self.error_rate_pause
                and not self.halt_reason
            ):
                self.halt_reason = (
                    f"error rate {failures}/{self.attempts} passed {self.error_rate_pause:.0%}"
                )
                self.auto_paused = True


@dataclass
class SendOutcome:
    entry: LedgerEntry
    lead_update: dict = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None  # a gate reason when the send was not attempted


def booking_link(base_url: str | None, campaign: str, lead_id: str) -> str:
    query = urlencode({"utm_source": "sms", "utm_campaign": campaign, "utm_content": lead_id})
    base = base_url or "https://calendly.com/"
    return f"{base}{'&' if '?' in base else '?'}{query}"


def sent_lead_update(lead: Lead, entry: LedgerEntry) -> dict:
    """The lead fields a delivered-to-provider text moves forward (never backwards)."""
    step = max(lead.sequence_position, entry.step)
    return {
        "sequence_position": step,
        "sent_count": lead.sent_count + 1,
        "last_sent_at": entry.sent_at,
        "variant": entry.variant,
        "campaign_id": entry.campaign_id,
        "sms_status": SmsStatus.SENT,
        "processing_status": (
            ProcessingStatus.COMPLETE if step >= MAX_STEPS else ProcessingStatus.IN_SEQUENCE
        ),
    }


def failed_lead_update(lead: Lead, exc: SendError, now: datetime) -> dict:
    log_line = f"{now:%Y-%m-%d %H:%M} {exc}"
    update: dict = {"error_log": log_line}
    if isinstance(exc, PermanentSendError):
        stopped_by_person = exc.stop_reason == StopReason.STOP
        update |= {
            "sms_stop": True,
            "stop_reason": exc.stop_reason,
            "sms_status": SmsStatus.FAILED,
            "processing_status": (
                ProcessingStatus.STOPPED if stopped_by_person else ProcessingStatus.FAILED
            ),
        }
        if not stopped_by_person:
            update["phone_valid"] = False
    return update


def _not_sent(entry: LedgerEntry, why: str, reason: str) -> SendOutcome:
    """Release a reservation that was never attempted: a later run may take the key again."""
    update = {"status": LedgerStatus.FAILED, "error_class": ErrorClass.NOT_SENT, "error": why}
    return SendOutcome(entry.model_copy(update=update), skipped=reason)


def send_one(svc: Services, control: RunControl, entry: LedgerEntry, lead: Lead) -> SendOutcome:
    if control.halted:
        return _not_sent(entry, f"run halted: {control.halt_reason}", "halted")
    if not control.test_mode:
        try:
            stopped = svc.store.stopped_among([lead.id])
        except Exception:  # a text whose lead might have said STOP is not sent
            log.exception("stop flags of lead %s unreadable", lead.id)
            return _not_sent(entry, "stop flags unreadable", "stop_check_failed")
        if stopped:
            return _not_sent(entry, "stopped before send", "stopped_mid_run")
    now = svc.clock.now()
    try:
        receipt = svc.gateway.send(
            entry.phone, entry.text or "", first_name=lead.first_name, new_contact=entry.step == 1
        )
    except OutcomeUnknownError as exc:
        return SendOutcome(entry, error=f"{mask(entry.phone)}: {exc}")
    except (PermanentSendError, TransientSendError, ConfigurationError) as exc:
        failed = entry.model_copy(
            update={
                "status": LedgerStatus.FAILED,
                "error_class": exc.error_class,
                "error": str(exc),
            }
        )
        if isinstance(exc, ConfigurationError):
            control.halt(f"configuration error: {exc}")
        update = {} if control.test_mode else failed_lead_update(lead, exc, now)
        return SendOutcome(failed, update, error=f"{mask(entry.phone)}: {exc}")
    except Exception as exc:  # unclassified: it may have gone out, so it is not retried blindly
        log.exception("unclassified send error for %s", mask(entry.phone))
        return SendOutcome(entry, error=f"{mask(entry.phone)}: {type(exc).__name__}: {exc}")
    sent = entry.model_copy(
        update={
            "status": LedgerStatus.SENT,
            "provider_message_id": receipt.message_id,
            "segments": receipt.segments or entry.segments,
            "credits": receipt.credits,
            "sent_at": now,
        }
    )
    return SendOutcome(sent, {} if control.test_mode else sent_lead_update(lead, sent))
