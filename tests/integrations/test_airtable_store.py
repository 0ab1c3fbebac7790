"""The Airtable store over real HTTP against the loopback Airtable: what it asks of Airtable, how
it reads an operator's existing base, and what it does when Airtable refuses or fails."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from integrations.airtable import AirtableError, AirtableStore, AirtableTables
from integrations.airtable_setup import wanted_schema
from tests.conftest import START, UNTHROTTLED
from uysp.eligibility import ineligibility
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus, send_key


def make_store(fake, base: str, **tuning) -> AirtableStore:
    return AirtableStore(
        fake.token,
        base,
        api_url=fake.url,
        tuning=replace(UNTHROTTLED, **tuning),
        cluster_rate_limit=False,
    )


def lead(n: int, **fields) -> Lead:
    defaults = {
        "phone": f"+1212555{n:04d}",
        "first_name": f"Lead{n}",
        "phone_valid": True,
        "processing_status": ProcessingStatus.READY,
    }
    return Lead(id="", **(defaults | fields))


def entry(lead_id: str, step: int = 1) -> LedgerEntry:
    return LedgerEntry(
        send_key=send_key(lead_id, "c1", step),
        status=LedgerStatus.RESERVED,
        lead_id=lead_id,
        phone="+12125550000",
        campaign_id="c1",
        step=step,
        text=f"step {step}",
        reserved_at=START,
    )


def sent(row: LedgerEntry) -> LedgerEntry:
    return row.model_copy(
        update={"status": LedgerStatus.SENT, "provider_message_id": "m", "sent_at": START}
    )


@pytest.fixture
def store(airtable, airtable_base) -> AirtableStore:
    return make_store(airtable, airtable_base)


# What the store asks of Airtable


def test_selection_is_filtered_and_paged_by_airtable(airtable, store):
    store.add_leads(
        lead(n, processing_status=ProcessingStatus.READY if n < 150 else ProcessingStatus.QUEUED)
        for n in range(400)
    )
    airtable.reset_counts()

    active = store.select_active_leads()

    assert len(active) == 150
    assert airtable.counts["list"] == 2  # 100 and 50, by offset
    assert airtable.records_served == 150  # the 250 others never left Airtable


def test_every_write_carries_ten_records(airtable, store):
    leads = store.add_leads(lead(n) for n in range(25))
    assert airtable.counts["create"] == 3
    store.update_leads({x.id: {"sequence_position": 1, "last_sent_at": START} for x in leads})
    assert airtable.counts["update"] == 3
    assert all(x.sequence_position == 1 for x in store.get_leads([x.id for x in leads]))


def test_a_wave_costs_three_requests_once_its_ledger_rows_are_loaded(airtable, store):
    leads = store.add_leads(lead(n) for n in range(30))
    store.ledger_rows(lead_ids=[x.id for x in leads])  # as the scheduler's plan does
    airtable.reset_counts()

    for start in range(0, 30, 10):
        wave = leads[start : start + 10]
        reserved = store.reserve_sends([entry(x.id) for x in wave])
        assert len(reserved) == 10
        assert not any(store.stopped_among([x.id]) for x in wave)
        store.record_sends(
            [sent(row) for row in reserved], {x.id: {"sequence_position": 1} for x in wave}
        )

    assert airtable.total_requests == 9  # reserve, outcomes, leads: per wave, nothing else
    rows = store.ledger_rows(statuses=[LedgerStatus.SENT])
    assert {r.lead_id for r in rows} == {x.id for x in leads}


def test_unknown_send_keys_are_looked_up_in_one_request(airtable, airtable_base, store):
    leads = store.add_leads(lead(n) for n in range(10))
    store.reserve_sends([entry(leads[0].id)])
    fresh = make_store(airtable, airtable_base)  # another process: it knows no keys
    airtable.reset_counts()

    reserved = fresh.reserve_sends([entry(x.id) for x in leads])

    assert {r.lead_id for r in reserved} == {x.id for x in leads[1:]}
    assert (airtable.counts["list"], airtable.counts["update"]) == (1, 1)


def test_a_key_reserved_elsewhere_since_this_process_looked_is_not_sent(
    airtable, airtable_base, store
):
    (one,) = store.add_leads([lead(1)])
    store.ledger_rows(lead_ids=[one.id])  # no rows yet
    make_store(airtable, airtable_base).reserve_sends([entry(one.id)])  # another worker

    assert store.reserve_sends([entry(one.id)]) == []
    assert len(airtable.records(airtable_base, "SMS_Audit")) == 1


def test_long_id_lookups_go_as_post_list_records(store):
    leads = store.add_leads(lead(n) for n in range(450))
    ids = [x.id for x in leads]  # 450 ids make a formula far past the 16,000-character URL
    assert {x.id for x in store.get_leads(ids)} == set(ids)
    assert store.ledger_rows(lead_ids=ids) == []


# The stop check


def test_stop_checks_between_polls_cost_no_request(airtable, airtable_base):
    store = make_store(airtable, airtable_base, stop_check_seconds=60)
    leads = store.add_leads(lead(n) for n in range(10))
    ids = [x.id for x in leads]
    store.ledger_rows(lead_ids=ids)
    airtable.reset_counts()

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: store.stopped_among([i]), ids * 5))

    assert answers == [set()] * 50
    assert airtable.total_requests == 0


def test_own_writes_are_seen_at_once(airtable, airtable_base):
    store = make_store(airtable, airtable_base, stop_check_seconds=60)
    one, two = store.add_leads([lead(1), lead(2)])
    store.update_leads({one.id: {"sms_stop": True}, two.id: {"booked": True}})
    assert store.stopped_among([one.id, two.id]) == {one.id, two.id}
    store.update_leads({two.id: {"booked": False}})
    assert store.stopped_among([two.id]) == set()


def test_a_stop_made_elsewhere_is_seen_within_the_staleness_bound(airtable, airtable_base):
    bound = 0.3
    store = make_store(airtable, airtable_base, stop_check_seconds=bound)
    leads = store.add_leads(lead(n) for n in range(3))
    ids = [x.id for x in leads]
    store.ledger_rows(lead_ids=ids)
    airtable.update(airtable_base, "Leads", ids[0], {"SMS Stop": True})  # an operator
    airtable.update(airtable_base, "Leads", ids[1], {"Processing Status": "Completed"})
    time.sleep(bound)
    airtable.reset_counts()

    assert store.stopped_among([ids[2]]) == set()
    assert store.stopped_among([ids[0]]) == {ids[0]}
    assert store.stopped_among([ids[1]]) == {ids[1]}
    assert airtable.counts["list"] == 1  # one poll answered for every lead in flight


# An operator's existing base


def test_an_existing_base_reads_as_the_operator_expects(airtable, airtable_base, store):
    ids = airtable.insert(
        airtable_base,
        "Leads",
        [
            {"Phone": "(212) 555-0101", "Processing Status": "Completed", "Phone Valid": True},
            {"Phone": "+1 212 555 0102", "Processing Status": "Ready for SMS", "Phone Valid": True},
            {"Phone": "2125550103", "Processing Status": "In Sequence", "Phone Valid": True},
            {
                "Phone": "+44 20 7946 0958",
                "Processing Status": "Ready for SMS",
                "Phone Valid": True,
            },
        ],
    )
    leads = {x.id: x for x in store.all_leads()}

    assert leads[ids[0]].processing_status == ProcessingStatus.COMPLETE
    assert [leads[i].phone for i in ids[:3]] == ["+12125550101", "+12125550102", "+12125550103"]
    assert ineligibility(leads[ids[1]]) is None  # blank country, New York number: US
    assert ineligibility(leads[ids[3]])[0] == "not_us_canada"  # blank country, London number
    assert store.stopped_among([ids[0], ids[1]]) == {ids[0]}
    by_phone = store.find_leads(phones=["+12125550101", "+12125550103", "+12125550199"])
    assert {x.id for x in by_phone} == {ids[0], ids[2]}  # however the base spells them


def test_unticked_boxes_and_old_audit_rows(airtable, airtable_base, store):
    airtable.insert(
        airtable_base,
        "SMS_Templates",
        [
            {"Campaign": "c1", "Variant": "A", "Step": 1, "Body": "Hi", "Active": True},
            {"Campaign": "c1", "Variant": "A", "Step": 2, "Body": "Again"},
        ],
    )
    airtable.insert(airtable_base, "SMS_Audit", [{"Event": "sent", "Status": "Sent"}])  # n8n days

    assert {t.step: t.active for t in store.list_templates("c1")} == {1: True, 2: False}
    assert store.ledger_rows(statuses=[LedgerStatus.SENT]) == []


def test_computed_fields_are_never_written(airtable):
    schema = wanted_schema()
    schema["Leads"] = [
        {"name": "Click Count", "type": "count", "options": {"recordLinkFieldId": "fldX"}}
        if spec["name"] == "Click Count"
        else spec
        for spec in schema["Leads"]
    ]
    base = airtable.add_base(schema)
    store = make_store(airtable, base)

    (one,) = store.add_leads([lead(1, click_count=3)])
    store.update_leads({one.id: {"click_count": 4, "sequence_position": 1}})

    (record,) = airtable.records(base, "Leads")
    assert "Click Count" not in record["fields"]
    assert record["fields"]["SMS Sequence Position"] == 1


# Refusals and failures


def test_an_unknown_field_names_the_field_and_the_table(airtable):
    schema = wanted_schema()
    schema["Leads"] = [f for f in schema["Leads"] if f["name"] != "SMS Campaign ID"]
    store = make_store(airtable, airtable.add_base(schema))
    (one,) = store.add_leads([lead(1)])

    with pytest.raises(AirtableError) as refused:
        store.update_leads({one.id: {"campaign_id": "c1"}})

    assert refused.value.status == 422
    assert refused.value.error_type == "UNKNOWN_FIELD_NAME"
    assert "Leads" in str(refused.value) and '"SMS Campaign ID"' in str(refused.value)


def test_a_wrong_token_and_a_missing_table_are_errors_that_say_so(airtable, airtable_base):
    wrong = AirtableStore(
        "pat-wrong",
        airtable_base,
        api_url=airtable.url,
        tuning=UNTHROTTLED,
        cluster_rate_limit=False,
    )
    with pytest.raises(AirtableError, match="401 AUTHENTICATION_REQUIRED"):
        wrong.get_settings()
    missing = AirtableStore(
        airtable.token,
        airtable_base,
        api_url=airtable.url,
        tables=AirtableTables(leads="Contacts"),
        tuning=UNTHROTTLED,
        cluster_rate_limit=False,
    )
    with pytest.raises(AirtableError, match="Contacts: HTTP 403 INVALID_PERMISSIONS"):
        missing.select_active_leads()


def test_server_errors_and_broken_connections_are_retried(airtable, airtable_base):
    store = make_store(airtable, airtable_base, backoff_seconds=0.01)
    airtable.fail_next(503, times=2, kind="create")
    airtable.drop_next(kind="create")

    (one,) = store.add_leads([lead(1)])

    assert airtable.counts["create"] == 4
    assert [r["id"] for r in airtable.records(airtable_base, "Leads")] == [one.id]


def test_server_errors_give_up_after_the_bounded_retries(airtable, airtable_base):
    store = make_store(airtable, airtable_base, backoff_seconds=0.01, server_error_retries=2)
    airtable.fail_next(500, times=5)
    with pytest.raises(AirtableError, match="HTTP 500 SERVER_ERROR"):
        store.get_settings()
    assert airtable.counts["list"] == 3


def test_a_reservation_whose_answer_was_lost_is_retried_without_a_second_row(
    airtable, airtable_base, store
):
    (one,) = store.add_leads([lead(1)])
    store.ledger_rows(lead_ids=[one.id])
    airtable.drop_next(kind="update", after_processing=True)

    reserved = store.reserve_sends([entry(one.id)])

    (row,) = airtable.records(airtable_base, "SMS_Audit")
    assert row["fields"]["Status"] == "Reserved"
    # Airtable no longer says the row is new, so no text goes out now: the row waits, Reserved,
    # for reconciliation against the provider's log.
    assert reserved == []
