"""Import rules: the headers operators' exports have, rows into lead fields, and merging a file
with itself and with the store."""

from datetime import UTC, datetime

import pytest

from uysp.ingest_rules import (
    ImportDefaults,
    Reject,
    Row,
    is_client,
    map_header,
    missing_identity,
    normalise_email,
    normalise_row,
    plan_import,
)
from uysp.models import Lead, ProcessingStatus

NOW = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
DEFAULTS = ImportDefaults(imported_at=NOW, file_name="leads.csv")


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("Phone Number (phone_number)", "phone"),
        ("Mobile Phone Number (mobile_phone_number)", "phone"),
        ("Email Address (email)", "email"),
        ("Company Name (custom_10)", "company"),
        ("Tags", "tags"),
        ("Phone", "phone"),
        ("Email", "email"),
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("LAST-NAME", "last_name"),
        ("Full Name", "full_name"),
        ("Country", "location_country"),
        ("ICP Score", "icp_score"),
        ("Lead Source", "lead_source"),
        ("Cell (x_77)", "phone"),
        ("Organisation", "company"),
    ],
)
def test_header_names_operators_use(column, field):
    header_map = map_header([column])
    assert header_map.used == {column: field}
    assert header_map.ignored == ()


def test_header_map_says_what_it_ignored():
    header_map = map_header(["Email", "Favourite Colour", "Notes (custom_3)"])
    assert header_map.used == {"Email": "email"}
    assert header_map.ignored == ("Favourite Colour", "Notes (custom_3)")
    assert not missing_identity(header_map)
    assert missing_identity(map_header(["First Name", "Company"]))


def row(values: dict[str, str], **options) -> Row | Reject:
    return normalise_row(list(values.values()), map_header(list(values)), 2, **options)


def test_phone_becomes_e164_and_email_is_normalised():
    result = row({"Phone": "(212) 555-0101", "Email": "  Ana.Lee@Example.COM ", "First": "Ana"})
    assert isinstance(result, Row)
    assert result.fields == {
        "phone": "+12125550101",
        "phone_valid": True,
        "email": "ana.lee@example.com",
        "first_name": "Ana",
    }
    assert result.problems == ()


def test_mobile_is_used_when_the_phone_column_is_blank_or_invalid():
    header = {"Phone Number (phone_number)": "555-12", "Mobile Phone Number": "416 555 0102"}
    result = row(header)
    assert result.fields["phone"] == "+14165550102"
    assert result.fields["phone_valid"] is True


def test_invalid_phone_is_kept_unchecked_with_the_reason_when_there_is_an_email():
    result = row({"Phone": "555-12", "Email": "ben@example.com"})
    assert isinstance(result, Row)
    assert result.fields["phone"] == "555-12"
    assert result.fields["phone_valid"] is False
    assert result.problems == ("Phone '555-12' is not a valid number",)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"Phone": "555-12", "Email": ""}, "no valid phone or email: Phone '555-12' is not"),
        ({"Phone": "", "Email": "chloe@example"}, "no valid phone or email: Phone blank; Email"),
        ({"Phone": "", "Email": ""}, "blank row"),
    ],
)
def test_rows_without_a_way_to_reach_anyone_are_rejected(values, reason):
    result = row(values)
    assert isinstance(result, Reject)
    assert result.line == 2
    assert result.reason.startswith(reason)


def test_a_row_longer_than_the_header_is_rejected_as_shifted():
    header_map = map_header(["Phone", "Email"])
    result = normalise_row(["+12125550101", "a@example.com", "surplus"], header_map, 7)
    assert isinstance(result, Reject)
    assert "columns may be shifted" in result.reason
    trailing_blank = normalise_row(["+12125550101", "a@example.com", ""], header_map, 8)
    assert isinstance(trailing_blank, Row)


def test_full_name_fills_first_and_last():
    result = row({"Phone": "2125550101", "Name": "Ana María Lee"})
    assert result.fields["first_name"] == "Ana"
    assert result.fields["last_name"] == "María Lee"


def test_icp_score_is_read_as_a_number():
    assert row({"Phone": "2125550101", "ICP Score": "85%"}).fields["icp_score"] == 85.0
    bad = row({"Phone": "2125550101", "ICP Score": "high"})
    assert "icp_score" not in bad.fields
    assert bad.problems == ("ICP Score 'high' is not a number",)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("Ana@Example.com", "ana@example.com"),
        ("mailto:ben@example.org", "ben@example.org"),
        ("no-at-sign.example.com", None),
        ("two@@example.com", None),
        ("x@example", None),
    ],
)
def test_email_normalisation(email, expected):
    assert normalise_email(email) == expected


@pytest.mark.parametrize(
    ("tags", "client"),
    [
        ("Client", True),
        ("vip, current-client", True),
        ("Coaching Client; webinar", True),
        ("active_customer", True),
        ("former client", False),
        ("client prospect", False),
        ("", False),
    ],
)
def test_current_clients_from_tags(tags, client):
    result = row({"Phone": "2125550101", "Tags": tags})
    assert result.fields.get("current_client", False) is client


def test_client_tag_patterns_are_configurable():
    result = row({"Phone": "2125550101", "Tags": "alumni"}, client_tag_patterns=["alumni"])
    assert result.fields["current_client"] is True
    assert not is_client("Client", ["alumni"])


def parsed(*rows: dict, start: int = 2) -> list[Row]:
    header = ["Phone", "Email", "First Name", "Company"]
    header_map = map_header(header)
    out = []
    for n, values in enumerate(rows):
        cells = [values.get(h, "") for h in header]
        result = normalise_row(cells, header_map, start + n)
        assert isinstance(result, Row)
        out.append(result)
    return out


def test_duplicates_within_the_file_merge_by_phone_and_by_email():
    rows = parsed(
        {"Phone": "(212) 555-0101", "Email": "ana@example.com", "First Name": "Ana"},
        {"Phone": "+1 212 555 0101", "Company": "Acme"},  # same phone, other spelling
        {"Email": "ANA@example.com", "First Name": "Anita"},  # same email
        {"Phone": "2125550102", "Email": "ben@example.com"},
    )
    plan = plan_import(rows, [], DEFAULTS)
    assert (plan.imported, plan.merged) == (2, 2)
    ana, ben = plan.new
    assert (ana.phone, ana.email, ana.first_name, ana.company) == (
        "+12125550101",
        "ana@example.com",
        "Anita",
        "Acme",
    )
    assert ben.phone == "+12125550102"
    for lead in plan.new:
        assert lead.processing_status == ProcessingStatus.QUEUED
        assert lead.imported_at == NOW
        assert lead.lead_source == "leads.csv"


def test_reimport_merges_into_the_stored_lead_and_never_resets_its_sequence():
    stored = Lead(
        id="recANA",
        phone="+12125550101",
        phone_valid=True,
        email="ana@example.com",
        first_name="Ana",
        processing_status=ProcessingStatus.IN_SEQUENCE,
        sequence_position=2,
        last_sent_at=NOW,
        lead_source="webinar",
    )
    rows = parsed(
        {"Phone": "212-555-0101", "First Name": "Ana", "Company": "Acme"},
        {"Email": "Ana@Example.com", "Company": "Acme Corp"},
    )
    plan = plan_import(rows, [stored], DEFAULTS)
    assert (plan.imported, plan.merged, plan.new) == (0, 2, [])
    assert plan.updates == {"recANA": {"company": "Acme Corp"}}


def test_nothing_to_change_writes_nothing():
    stored = Lead(id="recBEN", phone="+12125550102", phone_valid=True, first_name="Ben")
    plan = plan_import(parsed({"Phone": "2125550102", "First Name": "Ben"}), [stored], DEFAULTS)
    assert (plan.merged, plan.updates) == (1, {})


def test_a_merge_fills_a_missing_phone_but_never_takes_another_leads():
    by_email = Lead(id="recA", email="a@example.com", phone="555", phone_valid=False)
    has_phone = Lead(id="recB", phone="+12125550103", phone_valid=True)
    rows = parsed(
        {"Email": "a@example.com", "Phone": "2125550104"},
        {"Email": "a@example.com", "Phone": "2125550103"},
    )
    plan = plan_import(rows, [by_email, has_phone], DEFAULTS)
    assert plan.updates == {"recA": {"phone": "+12125550104", "phone_valid": True}}


def test_defaults_for_new_leads():
    defaults = ImportDefaults(
        imported_at=NOW,
        file_name="x.csv",
        source="webinar",
        status=ProcessingStatus.BACKLOG,
        campaign="c2",
    )
    (lead,) = plan_import(parsed({"Email": "c@example.com"}), [], defaults).new
    assert (lead.lead_source, lead.processing_status, lead.campaign_id) == (
        "webinar",
        ProcessingStatus.BACKLOG,
        "c2",
    )
    assert lead.error_log == "import: Phone blank"
