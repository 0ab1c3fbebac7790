"""The Airtable-shaped models: legacy spellings, blank cells, aliases and derived settings."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from uysp.models import (
    CampaignSettings,
    ErrorClass,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    Template,
    send_key,
)


def lead_from_fields(**fields) -> Lead:
    """A lead as the store hands it over: an Airtable record id plus its `fields` dict."""
    return Lead.model_validate({"id": "rec1", **fields})


def ledger_row(status: LedgerStatus, error_class: ErrorClass | None = None) -> LedgerEntry:
    return LedgerEntry(
        send_key="rec1:c1:1",
        status=status,
        lead_id="rec1",
        phone="+12125551234",
        campaign_id="c1",
        step=1,
        error_class=error_class,
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Completed", ProcessingStatus.COMPLETE),  # the old workflows' spelling
        ("  Completed ", ProcessingStatus.COMPLETE),
        ("Complete", ProcessingStatus.COMPLETE),
        ("Ready for SMS", ProcessingStatus.READY),
        (" In Sequence ", ProcessingStatus.IN_SEQUENCE),
        ("Backlog", ProcessingStatus.BACKLOG),
        ("Stopped", ProcessingStatus.STOPPED),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_processing_status_reads_legacy_and_blank_cells(cell, expected):
    assert lead_from_fields(**{"Processing Status": cell}).processing_status == expected


def test_processing_status_rejects_an_unknown_value():
    with pytest.raises(ValidationError):
        lead_from_fields(**{"Processing Status": "Done-ish"})


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("SMS Sequence Position", "sequence_position"),
        ("SMS Sent Count", "sent_count"),
        ("Click Count", "click_count"),
    ],
)
@pytest.mark.parametrize(("cell", "expected"), [("", 0), (None, 0), ("2", 2), (3, 3)])
def test_blank_numeric_cells_read_as_zero(field, attribute, cell, expected):
    assert getattr(lead_from_fields(**{field: cell}), attribute) == expected


def test_missing_numeric_cells_default_to_zero():
    lead = lead_from_fields()
    assert (lead.sequence_position, lead.sent_count, lead.click_count) == (0, 0, 0)


def test_lead_reads_airtable_field_names():
    lead = lead_from_fields(
        **{
            "Phone": "+12125551234",
            "First Name": "Ana",
            "Location Country": "US",
            "Phone Valid": True,
            "Current Coaching Client": True,
            "HRQ Status": "Archive",
            "SMS Stop": True,
            "SMS Stop Reason": "STOP",
            "SMS Variant": "B",
            "SMS Last Sent At": "2026-11-17T16:00:00.000Z",
            "Booked": True,
            "Unrelated Column": "ignored",
        }
    )
    assert lead.phone == "+12125551234"
    assert lead.first_name == "Ana"
    assert lead.location_country == "US"
    assert lead.phone_valid is True
    assert lead.current_client is True
    assert lead.hrq_status == "Archive"
    assert lead.sms_stop is True
    assert lead.stop_reason == "STOP"
    assert lead.variant == "B"
    assert lead.last_sent_at == datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
    assert lead.booked is True


def test_lead_airtable_fields_uses_aliases_drops_none_and_id():
    lead = Lead(
        id="rec1",
        first_name="Ana",
        phone="+12125551234",
        processing_status=ProcessingStatus.IN_SEQUENCE,
        sequence_position=2,
        last_sent_at=datetime(2026, 11, 17, 16, 0, tzinfo=UTC),
    )
    assert lead.airtable_fields() == {
        "First Name": "Ana",
        "Phone": "+12125551234",
        "Processing Status": "In Sequence",
        "SMS Sequence Position": 2,
        "SMS Last Sent At": "2026-11-17T16:00:00Z",
        # Defaults that are not None are written too.
        "Phone Valid": False,
        "Current Coaching Client": False,
        "SMS Sent Count": 0,
        "SMS Stop": False,
        "Click Count": 0,
        "Clicked Link": False,
        "Booked": False,
    }


def test_lead_airtable_fields_round_trips():
    lead = Lead(
        id="rec1",
        phone="+12125551234",
        processing_status=ProcessingStatus.READY,
        booked_at=datetime(2026, 11, 17, 16, 0, tzinfo=UTC),
        icp_score=87.5,
    )
    assert Lead.model_validate({"id": "rec1", **lead.airtable_fields()}) == lead


def test_airtable_fields_exclude():
    lead = Lead(id="rec1", first_name="Ana", phone="+12125551234")
    fields = lead.airtable_fields(exclude={"first_name", "phone_valid"})
    assert "First Name" not in fields
    assert "Phone Valid" not in fields
    assert fields["Phone"] == "+12125551234"


def test_template_reads_and_writes_airtable_field_names():
    fields = {
        "Campaign": "c1",
        "Variant": "A",
        "Step": 2,
        "Body": "Hi {Name} {Link}",
        "Delay Days": 2,
        "Fast Delay Minutes": 30,
        "Active": False,
    }
    template = Template.model_validate(fields)
    assert (template.campaign, template.variant, template.step) == ("c1", "A", 2)
    assert (template.delay_days, template.fast_delay_minutes, template.active) == (2, 30, False)
    assert template.airtable_fields() == fields


def test_template_defaults():
    template = Template.model_validate({"Campaign": "c1", "Variant": "A", "Step": 1, "Body": "x"})
    assert (template.delay_days, template.fast_delay_minutes, template.active) == (0, 0, True)


def test_ledger_entry_airtable_fields():
    row = ledger_row(LedgerStatus.SENT)
    assert row.airtable_fields() == {
        "Send Key": "rec1:c1:1",
        "Status": "Sent",
        "Lead Record ID": "rec1",
        "Phone": "+12125551234",
        "Campaign ID": "c1",
        "Step": 1,
        "Event": "send",
    }


def test_send_key():
    assert send_key("rec1", "c1", 2) == "rec1:c1:2"


@pytest.mark.parametrize(
    ("ab_ratio_a", "expected"),
    [
        (0.6, 0.6),
        (60, 0.6),
        (50, 0.5),
        (0.5, 0.5),
        (100, 1.0),
        (1, 1.0),  # 1 is read as a share (everyone in A), not as 1 %
        (0, 0.0),
        (150, 1.0),  # clamped
        (-10, 0.0),  # clamped
    ],
)
def test_ratio_a_accepts_share_and_percent(ab_ratio_a, expected):
    settings = CampaignSettings.model_validate({"ab_ratio_a": ab_ratio_a})
    assert settings.ratio_a == pytest.approx(expected)


def test_ratio_a_defaults_to_an_even_split():
    assert CampaignSettings().ratio_a == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("On", True),
        ("on", True),
        (" ON ", True),
        ("Paused", False),
        ("Off", False),
        ("", False),
    ],
)
def test_sending_on(cell, expected):
    assert CampaignSettings.model_validate({"SMS Sending": cell}).sending_on is expected


def test_sending_is_on_by_default():
    assert CampaignSettings().sending_on is True


@pytest.mark.parametrize(
    ("status", "error_class", "expected"),
    [
        (LedgerStatus.FAILED, ErrorClass.TRANSIENT, True),
        (LedgerStatus.FAILED, ErrorClass.CONFIGURATION, True),
        (LedgerStatus.FAILED, ErrorClass.NOT_SENT, True),
        (LedgerStatus.FAILED, ErrorClass.PERMANENT, False),
        (LedgerStatus.FAILED, None, False),  # failed for an unrecorded reason: not retried
        (LedgerStatus.SENT, ErrorClass.TRANSIENT, False),
        (LedgerStatus.RESERVED, None, False),
        (LedgerStatus.UNKNOWN, ErrorClass.TRANSIENT, False),
        (LedgerStatus.DELIVERED, None, False),
        (LedgerStatus.UNDELIVERED, None, False),
    ],
)
def test_ledger_entry_retryable(status, error_class, expected):
    assert ledger_row(status, error_class).retryable is expected


def test_ledger_entry_reads_error_class_by_alias():
    row = LedgerEntry.model_validate(
        {
            "Send Key": "rec1:c1:1",
            "Status": "Failed",
            "Lead Record ID": "rec1",
            "Phone": "+12125551234",
            "Campaign ID": "c1",
            "Step": 1,
            "Error Class": "transient",
        }
    )
    assert row.error_class is ErrorClass.TRANSIENT
    assert row.retryable is True
