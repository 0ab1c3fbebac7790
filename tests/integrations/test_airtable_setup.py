"""`uysp setup airtable` against the loopback Airtable's Meta API."""

from __future__ import annotations

from integrations.airtable import AirtableStore
from integrations.airtable_setup import ensure_airtable_schema
from tests.conftest import UNTHROTTLED
from uysp.models import Lead, ProcessingStatus


def store_on(fake, base: str) -> AirtableStore:
    return AirtableStore(
        fake.token, base, api_url=fake.url, tuning=UNTHROTTLED, cluster_rate_limit=False
    )


def field_names(fake, base: str, table: str) -> set[str]:
    return {f["name"] for f in fake.table_fields(base, table)}


def test_an_empty_base_is_set_up_then_found_complete(airtable):
    base = airtable.add_base()
    store = store_on(airtable, base)

    first = ensure_airtable_schema(store.api, base)

    assert first.created_tables == ["Leads", "Settings", "SMS_Templates", "SMS_Audit"]
    assert {"Send Key", "Reserved At", "Error Class"} <= field_names(airtable, base, "SMS_Audit")
    assert {"Send Start Hour", "Send End Hour", "Send Weekdays"} <= field_names(
        airtable, base, "Settings"
    )
    assert "created the Settings row, with SMS Sending Paused" in first.lines()
    assert not store.get_settings().sending_on

    airtable.reset_counts()
    again = ensure_airtable_schema(store.api, base)

    assert not again.changed
    assert again.lines()[-1] == "nothing to do: every table and field is there"
    assert airtable.counts["meta"] == 1 and airtable.counts["create"] == 0


def test_an_existing_base_gets_what_it_lacks_and_keeps_what_it_has(airtable):
    base = airtable.add_base(
        {
            "Leads": [
                {"name": "Email", "type": "email"},
                {"name": "Phone", "type": "singleLineText"},
                {"name": "Click Count", "type": "count", "options": {"recordLinkFieldId": "fldX"}},
            ],
            "Settings": [{"name": "Active Campaign", "type": "singleLineText"}],
        }
    )
    airtable.insert(base, "Settings", [{"Active Campaign": "spring"}])
    store = store_on(airtable, base)

    report = ensure_airtable_schema(store.api, base)

    assert report.found_tables == ["Leads", "Settings"]
    assert report.created_tables == ["SMS_Templates", "SMS_Audit"]
    assert "Processing Status" in report.created_fields["Leads"]
    assert not {"Email", "Phone", "Click Count"} & set(report.created_fields["Leads"])
    assert any("Leads.Phone is singleLineText" in note for note in report.notes)
    assert any("Leads.Click Count is computed" in note for note in report.notes)
    phone = next(f for f in airtable.table_fields(base, "Leads") if f["name"] == "Phone")
    assert phone["type"] == "singleLineText"
    assert not report.settings_row_created
    assert store.get_settings().active_campaign == "spring"

    (lead,) = store.add_leads(
        [Lead(id="", phone="(212) 555-0101", processing_status=ProcessingStatus.READY)]
    )
    assert [x.phone for x in store.select_active_leads()] == ["+12125550101"]
    store.update_leads({lead.id: {"click_count": 2, "sequence_position": 1}})
