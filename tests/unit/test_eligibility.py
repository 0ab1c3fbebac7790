"""The original filter, gate by gate, in DESIGN.md's order: phone valid, US or Canada, not
stopped, not booked, not a current client, not archived, status Ready for SMS or In Sequence."""

import pytest

from uysp.eligibility import country_code, ineligibility
from uysp.models import Lead, ProcessingStatus

NEW_YORK = "+12125551234"
TORONTO = "+14165551234"
LONDON = "+442071234567"
JAMAICA = "+18765551234"  # +1, but neither the US nor Canada


def make_lead(**fields) -> Lead:
    """A lead every gate lets through; keyword arguments override one field at a time."""
    defaults = {
        "id": "recL1",
        "phone": NEW_YORK,
        "first_name": "Ana",
        "phone_valid": True,
        "location_country": "US",
        "processing_status": ProcessingStatus.READY,
    }
    return Lead(**(defaults | fields))


def reason_of(lead: Lead) -> str | None:
    result = ineligibility(lead)
    return None if result is None else result[0]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Eligible.
        ({}, None),
        ({"processing_status": ProcessingStatus.IN_SEQUENCE}, None),
        ({"phone": "(212) 555-1234"}, None),  # any format that normalises
        ({"location_country": "United States"}, None),
        ({"location_country": "usa"}, None),
        ({"location_country": "Canada", "phone": TORONTO}, None),
        ({"location_country": " canada "}, None),  # a Canadian lead on a US number
        ({"location_country": "CA", "phone": TORONTO}, None),
        ({"hrq_status": "Qualified"}, None),
        ({"stop_reason": "REPLY"}, None),  # a reason alone, without SMS Stop, stops nothing
        # Phone.
        ({"phone_valid": False}, "phone_invalid"),
        ({"phone": None}, "phone_invalid"),
        ({"phone": ""}, "phone_invalid"),
        ({"phone": "not a phone"}, "phone_invalid"),
        ({"phone": "+1 212 555 123"}, "phone_invalid"),  # one digit short
        ({"phone": "+15555551234"}, "phone_invalid"),  # 555 is not an area code
        # Country.
        ({"location_country": "Mexico"}, "not_us_canada"),
        ({"location_country": "United Kingdom"}, "not_us_canada"),
        ({"location_country": "UK", "phone": LONDON}, "not_us_canada"),
        ({"location_country": "US", "phone": LONDON}, "not_us_canada"),  # number decides too
        # Blank country: the number decides.
        ({"location_country": None}, None),
        ({"location_country": ""}, None),
        ({"location_country": "   ", "phone": TORONTO}, None),
        ({"location_country": None, "phone": TORONTO}, None),
        ({"location_country": None, "phone": LONDON}, "not_us_canada"),
        ({"location_country": "", "phone": JAMAICA}, "not_us_canada"),  # NANP is not US/CA
        # Stop, booking, client, archive.
        ({"sms_stop": True}, "stopped"),
        ({"sms_stop": True, "stop_reason": "STOP"}, "stopped"),
        ({"booked": True}, "booked"),
        ({"current_client": True}, "current_client"),
        ({"hrq_status": "Archive"}, "archived"),
        ({"hrq_status": "archive"}, "archived"),
        ({"hrq_status": "  ARCHIVE "}, "archived"),
        # Processing Status other than Ready for SMS / In Sequence.
        ({"processing_status": None}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.BACKLOG}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.QUEUED}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.HOLD}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.COMPLETE}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.STOPPED}, "status_not_ready"),
        ({"processing_status": ProcessingStatus.FAILED}, "status_not_ready"),
    ],
)
def test_single_gate(fields, expected):
    assert reason_of(make_lead(**fields)) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Every gate fails: the first in DESIGN.md's list wins, and so on down the list.
        (
            {
                "phone_valid": False,
                "location_country": "Mexico",
                "sms_stop": True,
                "booked": True,
                "current_client": True,
                "hrq_status": "Archive",
                "processing_status": ProcessingStatus.BACKLOG,
            },
            "phone_invalid",
        ),
        ({"phone": "not a phone", "location_country": "Mexico"}, "phone_invalid"),
        (
            {
                "location_country": "Mexico",
                "sms_stop": True,
                "booked": True,
                "current_client": True,
                "hrq_status": "Archive",
                "processing_status": ProcessingStatus.BACKLOG,
            },
            "not_us_canada",
        ),
        (
            {
                "sms_stop": True,
                "booked": True,
                "current_client": True,
                "hrq_status": "Archive",
                "processing_status": ProcessingStatus.BACKLOG,
            },
            "stopped",
        ),
        (
            {
                "booked": True,
                "current_client": True,
                "hrq_status": "Archive",
                "processing_status": ProcessingStatus.BACKLOG,
            },
            "booked",
        ),
        (
            {
                "current_client": True,
                "hrq_status": "Archive",
                "processing_status": ProcessingStatus.BACKLOG,
            },
            "current_client",
        ),
        ({"hrq_status": "Archive", "processing_status": ProcessingStatus.BACKLOG}, "archived"),
    ],
)
def test_first_failing_gate_wins(fields, expected):
    assert reason_of(make_lead(**fields)) == expected


def test_legacy_completed_status_is_read_as_complete_and_held():
    lead = Lead.model_validate(
        {
            "id": "recL1",
            "Phone": NEW_YORK,
            "Phone Valid": True,
            "Location Country": "US",
            "Processing Status": "Completed",
        }
    )
    assert ineligibility(lead) == ("status_not_ready", "lead recL1: Processing Status Complete")


def test_eligible_lead_has_no_reason():
    assert ineligibility(make_lead()) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"phone_valid": False}, ("phone_invalid", "lead recL1: Phone Valid is not checked")),
        ({"phone": None}, ("phone_invalid", "lead recL1: Phone blank")),
        (
            {"location_country": "Mexico"},
            ("not_us_canada", "lead recL1: Location Country 'Mexico'"),
        ),
        ({"sms_stop": True}, ("stopped", "lead recL1: SMS Stop (no reason)")),
        (
            {"sms_stop": True, "stop_reason": "STOP"},
            ("stopped", "lead recL1: SMS Stop (STOP)"),
        ),
        ({"booked": True}, ("booked", "lead recL1: Booked")),
        ({"current_client": True}, ("current_client", "lead recL1: Current Coaching Client")),
        ({"hrq_status": "archive"}, ("archived", "lead recL1: HRQ Status Archive")),
        (
            {"processing_status": ProcessingStatus.BACKLOG},
            ("status_not_ready", "lead recL1: Processing Status Backlog"),
        ),
    ],
)
def test_messages_name_the_lead_and_the_field(fields, expected):
    assert ineligibility(make_lead(**fields)) == expected


@pytest.mark.parametrize("phone", ["not a phone", "+1 212 555 123"])
def test_malformed_phone_message_names_lead_field_and_value(phone):
    reason, message = ineligibility(make_lead(id="recXYZ", phone=phone))
    assert reason == "phone_invalid"
    assert message.startswith(f"lead recXYZ: Phone {phone!r} ")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("United States", "US"),
        ("united states of america", "US"),
        (" Canada ", "CA"),
        ("CAN", "CA"),
        ("ca", "CA"),
        ("Mexico", "MEXICO"),  # other countries pass through, upper-cased
        ("gb", "GB"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_country_code(cell, expected):
    assert country_code(cell) == expected
