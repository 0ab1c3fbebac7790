"""The ports: every external effect the flows have goes through one of these.

Adapters live in `integrations/` and are chosen by settings, so one flow runs on the embedded
default (SQLite, sandbox gateway, local links, console), on the loopback fakes, and in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from uysp.models import (
    CampaignSettings,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    Template,
)

LeadFields = Mapping[str, Any]
"""A partial lead update keyed by Lead attribute names (snake_case)."""


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class LeadStore(Protocol):
    """Leads, settings, templates and the send ledger."""

    # Settings and templates
    def get_settings(self) -> CampaignSettings: ...

    def update_settings(self, **fields: Any) -> None: ...

    def list_templates(self, campaign: str) -> list[Template]: ...

    def save_templates(self, templates: Iterable[Template]) -> None: ...

    # Leads
    def add_leads(self, leads: Iterable[Lead]) -> list[Lead]:
        """Insert new leads; their ids are assigned by the store and returned."""
        ...

    def select_active_leads(self) -> list[Lead]:
        """Leads whose Processing Status is Ready for SMS or In Sequence, filtered by the store."""
        ...

    def all_leads(self) -> list[Lead]:
        """Every lead, for reports and checks; never on a send path."""
        ...

    def leads_in_status(self, statuses: Iterable[ProcessingStatus]) -> list[Lead]:
        """Leads whose Processing Status is one of these, filtered by the store."""
        ...

    def get_leads(self, lead_ids: Sequence[str]) -> list[Lead]: ...

    def find_leads(
        self,
        *,
        ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
    ) -> list[Lead]:
        """Leads matching any of these ids, emails (case-insensitive) or E.164 phones."""
        ...

    def leads_with_links(self, sent_since: datetime) -> list[Lead]:
        """Leads with a tracking link whose last text is at or after `sent_since`."""
        ...

    def stopped_among(self, lead_ids: Sequence[str]) -> set[str]:
        """Ids among these whose texting must not go on (stopped, booked, or out of sequence)."""
        ...

    def update_leads(self, updates: Mapping[str, LeadFields]) -> None:
        """Write partial updates, keyed by lead id, in as few requests as the backend allows."""
        ...

    # The ledger
    def reserve_sends(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Write these rows as Reserved where their Send Key is new, or where its row failed in a
        retryable way. Returns the rows this call reserved; the others are already taken.
        The caller holds the run lock."""
        ...

    def record_sends(
        self, entries: Sequence[LedgerEntry], lead_updates: Mapping[str, LeadFields]
    ) -> None:
        """Record send outcomes on their ledger rows (by Send Key) and the leads they touched."""
        ...

    def ledger_rows(
        self,
        *,
        statuses: Iterable[LedgerStatus] | None = None,
        since: datetime | None = None,
        lead_ids: Sequence[str] | None = None,
    ) -> list[LedgerEntry]:
        """Ledger rows filtered by status, reservation time and lead."""
        ...

    def ledger_by_message_ids(self, message_ids: Sequence[str]) -> list[LedgerEntry]:
        """Ledger rows by the provider's message id, for delivery receipts."""
        ...

    def update_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        """Overwrite ledger rows by Send Key."""
        ...


SEND_LOCK = "sms-send-lock"
"""The one lock name: only one scheduler send phase runs at a time."""


@runtime_checkable
class RunLock(Protocol):
    """A lock that holds across processes (and, with a Prefect server, across machines)."""

    def hold(self, name: str, owner: str, ttl_seconds: float) -> AbstractContextManager[bool]:
        """Enter to take the lock: the block sees True while it holds it, False when another
        holder has it (and then must not do the locked work)."""
        ...


@dataclass(frozen=True)
class SendReceipt:
    message_id: str
    segments: int | None = None
    credits: float | None = None


@dataclass(frozen=True)
class ProviderMessage:
    """One outbound message in the provider's own log, used to reconcile interrupted sends and
    to audit the ledger. `phone` is E.164."""

    message_id: str
    phone: str
    text: str
    sent_at: datetime


@runtime_checkable
class SmsGateway(Protocol):
    def send(
        self, phone: str, text: str, *, first_name: str | None = None, new_contact: bool = False
    ) -> SendReceipt:
        """Send one text. `new_contact` is set on a lead's first step, when a provider with a
        contact book should create the contact first. Raises uysp.errors.SendError subclasses
        for classified failures; OutcomeUnknownError when the request may have gone out."""
        ...

    def message_log(self, phone: str, since: datetime) -> list[ProviderMessage] | None:
        """Outbound messages to this phone since then, or None if the log cannot be read."""
        ...

    def messages_since(self, since: datetime) -> list[ProviderMessage] | None:
        """Every outbound message from the account since then, whatever the phone, read page by
        page; None if the log cannot be read. For the audit (`uysp reconcile`)."""
        ...

    def credits_remaining(self) -> float | None:
        """The account's credit balance, or None if the provider does not tell."""
        ...

    def flush(self) -> None:
        """Finish side work batched across sends (contact names); called after a send phase."""
        ...


@dataclass(frozen=True)
class ShortLink:
    id: str
    url: str


@runtime_checkable
class LinkShortener(Protocol):
    def create(self, target_url: str, *, lead_id: str, campaign: str) -> ShortLink: ...

    def clicks(self, link_ids: Sequence[str]) -> dict[str, int]: ...


Channel = Literal["alerts", "daily", "sales"]


@dataclass(frozen=True)
class Notice:
    title: str
    lines: Sequence[str] = ()
    level: Literal["info", "warning", "error"] = "info"
    fields: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Notifier(Protocol):
    def notify(self, channel: Channel, notice: Notice) -> bool:
        """Post a notice; returns False (and logs) on failure instead of raising."""
        ...


@dataclass
class Services:
    """The adapters one process runs on, bundled for the tasks."""

    store: LeadStore
    gateway: SmsGateway
    shortener: LinkShortener
    notifier: Notifier
    clock: Clock
    lock: RunLock
