"""The data model, field for field as the operators' Airtable base names it.

Every model takes the Airtable field names as aliases, so a record's `fields` dict validates
directly (`Lead.model_validate({"id": rec_id, **fields})`) and `model_dump(by_alias=True)` writes
it back. Python code uses the snake_case attribute names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ProcessingStatus(StrEnum):
    BACKLOG = "Backlog"
    QUEUED = "Queued"
    HOLD = "Hold"
    READY = "Ready for SMS"
    IN_SEQUENCE = "In Sequence"
    COMPLETE = "Complete"
    STOPPED = "Stopped"
    FAILED = "Failed"


class SmsStatus(StrEnum):
    NOT_SENT = "Not Sent"
    QUEUED = "Queued"
    SENT = "Sent"
    DELIVERED = "Delivered"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class StopReason(StrEnum):
    STOP = "STOP"
    BOOKED = "BOOKED"
    REPLY = "REPLY"
    INVALID = "INVALID"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    MANUAL = "MANUAL"


class LedgerStatus(StrEnum):
    RESERVED = "Reserved"
    SENT = "Sent"
    FAILED = "Failed"
    UNKNOWN = "Unknown"
    DELIVERED = "Delivered"
    UNDELIVERED = "Undelivered"


class ErrorClass(StrEnum):
    """Why a send failed, which decides what happens to the lead and the run."""

    PERMANENT = "permanent"  # the lead can never be texted at this number
    TRANSIENT = "transient"  # try again on a later run
    CONFIGURATION = "configuration"  # our account or settings are wrong: halt the run
    NOT_SENT = "not_sent"  # reconciliation proved the provider never got it


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", use_enum_values=False)

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        """A time without a zone (a date-only cell, a CSV value) is read as UTC, so every time
        compares with the clock's."""
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def airtable_fields(self, *, exclude: set[str] | None = None) -> dict[str, Any]:
        """The record as Airtable fields: aliases as keys, None dropped, times as ISO text."""
        data = self.model_dump(by_alias=True, exclude_none=True, exclude=exclude, mode="json")
        data.pop("id", None)
        return data


class Lead(_Record):
    id: str
    email: str | None = Field(None, alias="Email")
    phone: str | None = Field(None, alias="Phone")
    first_name: str | None = Field(None, alias="First Name")
    last_name: str | None = Field(None, alias="Last Name")
    company: str | None = Field(None, alias="Company")
    location_country: str | None = Field(None, alias="Location Country")
    lead_source: str | None = Field(None, alias="Lead Source")
    imported_at: datetime | None = Field(None, alias="Imported At")
    icp_score: float | None = Field(None, alias="ICP Score")
    phone_valid: bool = Field(False, alias="Phone Valid")
    current_client: bool = Field(False, alias="Current Coaching Client")
    hrq_status: str | None = Field(None, alias="HRQ Status")
    processing_status: ProcessingStatus | None = Field(None, alias="Processing Status")
    sms_status: str | None = Field(None, alias="SMS Status")
    sequence_position: int = Field(0, alias="SMS Sequence Position")
    sent_count: int = Field(0, alias="SMS Sent Count")
    variant: str | None = Field(None, alias="SMS Variant")
    last_sent_at: datetime | None = Field(None, alias="SMS Last Sent At")
    campaign_id: str | None = Field(None, alias="SMS Campaign ID")
    sms_stop: bool = Field(False, alias="SMS Stop")
    stop_reason: str | None = Field(None, alias="SMS Stop Reason")
    error_log: str | None = Field(None, alias="Error Log")
    short_link_id: str | None = Field(None, alias="Short Link ID")
    short_link_url: str | None = Field(None, alias="Short Link URL")
    click_count: int = Field(0, alias="Click Count")
    clicked_link: bool = Field(False, alias="Clicked Link")
    booked: bool = Field(False, alias="Booked")
    booked_at: datetime | None = Field(None, alias="Booked At")
    last_reply_at: datetime | None = Field(None, alias="Last Reply At")
    last_reply_text: str | None = Field(None, alias="Last Reply Text")

    @field_validator("processing_status", mode="before")
    @classmethod
    def _legacy_status(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value == "Completed":  # the old workflows wrote this spelling
                return ProcessingStatus.COMPLETE
            return value or None
        return value

    @field_validator("sequence_position", "sent_count", "click_count", mode="before")
    @classmethod
    def _blank_is_zero(cls, value: Any) -> Any:
        return 0 if value in (None, "") else value

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.id


class Template(_Record):
    campaign: str = Field(alias="Campaign")
    variant: str = Field(alias="Variant")
    step: int = Field(alias="Step")
    body: str = Field(alias="Body")
    delay_days: float = Field(0, alias="Delay Days")
    fast_delay_minutes: float = Field(0, alias="Fast Delay Minutes")
    active: bool = Field(True, alias="Active")


class CampaignSettings(_Record):
    """The one-row Settings table, plus the campaign's own sending hours."""

    active_campaign: str | None = Field(None, alias="Active Campaign")
    fast_mode: bool = Field(False, alias="Fast Mode")
    ab_ratio_a: float = Field(50, alias="ab_ratio_a")
    calendly_url: str | None = Field(None, alias="Calendly URL")
    test_mode: bool = Field(False, alias="Test Mode")
    test_phone: str | None = Field(None, alias="Test Phone")
    sms_sending: str = Field("On", alias="SMS Sending")
    send_start_hour: int = Field(9, alias="Send Start Hour")
    send_end_hour: int = Field(20, alias="Send End Hour")
    send_weekdays: str = Field("Mon,Tue,Wed,Thu,Fri", alias="Send Weekdays")
    # For providers that do not report a balance: set on top-up, lowered by each run's spend.
    credits_remaining: float | None = Field(None, alias="Credits Remaining")

    @property
    def sending_on(self) -> bool:
        return self.sms_sending.strip().lower() == "on"

    @property
    def ratio_a(self) -> float:
        """Share of leads drawn into variant A, accepting both 0.6 and 60."""
        ratio = self.ab_ratio_a / 100 if self.ab_ratio_a > 1 else self.ab_ratio_a
        return min(max(ratio, 0.0), 1.0)


class LedgerEntry(_Record):
    send_key: str = Field(alias="Send Key")
    status: LedgerStatus = Field(alias="Status")
    lead_id: str = Field(alias="Lead Record ID")
    phone: str = Field(alias="Phone")
    campaign_id: str = Field(alias="Campaign ID")
    step: int = Field(alias="Step")
    event: str = Field("send", alias="Event")
    variant: str | None = Field(None, alias="Variant")
    text: str | None = Field(None, alias="Text")
    provider_message_id: str | None = Field(None, alias="Provider Message ID")
    segments: int | None = Field(None, alias="Segments")
    credits: float | None = Field(None, alias="Credits")
    reserved_at: datetime | None = Field(None, alias="Reserved At")
    sent_at: datetime | None = Field(None, alias="Sent At")
    error: str | None = Field(None, alias="Error")
    error_class: ErrorClass | None = Field(None, alias="Error Class")
    carrier: str | None = Field(None, alias="Carrier")
    delivery_at: datetime | None = Field(None, alias="Delivery At")
    webhook_raw: str | None = Field(None, alias="Webhook Raw")

    @property
    def retryable(self) -> bool:
        """A failed row whose key may be reserved again by a later run."""
        return self.status == LedgerStatus.FAILED and self.error_class in (
            ErrorClass.TRANSIENT,
            ErrorClass.CONFIGURATION,
            ErrorClass.NOT_SENT,
        )


def send_key(lead_id: str, campaign: str, step: int) -> str:
    return f"{lead_id}:{campaign}:{step}"
