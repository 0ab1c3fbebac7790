"""The LeadStore contract: the same assertions over every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import START
from uysp.models import (
    ErrorClass,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    Template,
    send_key,
)


def lead(n: int, **fields) -> Lead:
    defaults = {
        "phone": f"+1212555{n:04d}",
        "first_name": f"Lead{n}",
        "phone_valid": True,
        "processing_status": ProcessingStatus.READY,
    }
    return Lead(id="", **(defaults | fields))


def entry(lead_id: str, step: int = 1, **fields) -> LedgerEntry:
    defaults = {
        "send_key": send_key(lead_id, "c1", step),
        "status": LedgerStatus.RESERVED,
        "lead_id": lead_id,
        "phone": "+12125550000",
        "campaign_id": "c1",
        "step": step,
        "text": f"step {step}",
        "reserved_at": START,
    }
    return LedgerEntry(**(defaults | fields))


def test_settings_round_trip(store):
    store.update_settings(active_campaign="c1", sms_sending="On", ab_ratio_a=60)
    store.update_settings(sms_sending="Paused")
    settings = store.get_settings()
    assert settings.active_campaign == "c1"
    assert settings.ab_ratio_a == 60
    assert not settings.sending_on


def test_templates_are_listed_by_campaign(store):
    store.save_templates(
        [
            Template(campaign="c1", variant="A", step=1, body="Hi {Name} {Link}", delay_days=0),
            Template(campaign="c1", variant="B", step=2, body="Again {Link}", delay_days=3),
            Template(campaign="c2", variant="A", step=1, body="Other", delay_days=0),
        ]
    )
    found = {(t.variant, t.step, t.delay_days) for t in store.list_templates("c1")}
    assert found == {("A", 1, 0), ("B", 2, 3)}


def test_active_selection_is_only_ready_and_in_sequence(store):
    added = store.add_leads(
        [
            lead(1),
            lead(2, processing_status=ProcessingStatus.IN_SEQUENCE),
            lead(3, processing_status=ProcessingStatus.QUEUED),
            lead(4, processing_status=ProcessingStatus.COMPLETE),
            lead(5, processing_status=ProcessingStatus.STOPPED),
        ]
    )
    assert all(x.id for x in added) and len({x.id for x in added}) == 5
    selected = {x.phone for x in store.select_active_leads()}
    assert selected == {"+12125550001", "+12125550002"}


def test_partial_updates_keep_other_fields(store):
    (one,) = store.add_leads([lead(1, company="Acme", click_count=3)])
    store.update_leads({one.id: {"sequence_position": 2, "last_sent_at": START}})
    (again,) = store.get_leads([one.id])
    assert again.sequence_position == 2
    assert again.last_sent_at == START
    assert again.company == "Acme" and again.click_count == 3


def test_unknown_field_names_the_field(store):
    (one,) = store.add_leads([lead(1)])
    with pytest.raises(Exception, match="no_such_field"):
        store.update_leads({one.id: {"no_such_field": 1}})


def test_stopped_among_sees_stop_booking_and_status(store):
    leads = store.add_leads(
        [
            lead(1),
            lead(2, sms_stop=True),
            lead(3, booked=True),
            lead(4, processing_status=ProcessingStatus.COMPLETE),
        ]
    )
    ids = [x.id for x in leads]
    assert store.stopped_among(ids) == set(ids[1:])


def test_a_send_key_is_reserved_once(store):
    first = store.reserve_sends([entry("recA"), entry("recB")])
    again = store.reserve_sends([entry("recA"), entry("recC")])
    assert {e.send_key for e in first} == {send_key("recA", "c1", 1), send_key("recB", "c1", 1)}
    assert [e.send_key for e in again] == [send_key("recC", "c1", 1)]


@pytest.mark.parametrize(
    ("error_class", "reservable"),
    [
        (ErrorClass.TRANSIENT, True),
        (ErrorClass.NOT_SENT, True),
        (ErrorClass.CONFIGURATION, True),
        (ErrorClass.PERMANENT, False),
    ],
)
def test_only_retryable_failures_can_be_reserved_again(store, error_class, reservable):
    (row,) = store.reserve_sends([entry("recA")])
    failed = row.model_copy(update={"status": LedgerStatus.FAILED, "error_class": error_class})
    store.record_sends([failed], {})
    assert bool(store.reserve_sends([entry("recA")])) is reservable


def test_unknown_and_sent_rows_are_never_reserved_again(store):
    rows = store.reserve_sends([entry("recA"), entry("recB")])
    store.record_sends(
        [
            rows[0].model_copy(update={"status": LedgerStatus.SENT, "provider_message_id": "m1"}),
            rows[1].model_copy(update={"status": LedgerStatus.UNKNOWN}),
        ],
        {},
    )
    assert store.reserve_sends([entry("recA"), entry("recB")]) == []


def test_record_sends_writes_ledger_and_leads_together(store):
    (one,) = store.add_leads([lead(1)])
    (row,) = store.reserve_sends([entry(one.id)])
    sent = row.model_copy(
        update={"status": LedgerStatus.SENT, "provider_message_id": "m1", "sent_at": START}
    )
    store.record_sends([sent], {one.id: {"sequence_position": 1, "last_sent_at": START}})
    (ledger_row,) = store.ledger_rows(lead_ids=[one.id])
    assert ledger_row.status == LedgerStatus.SENT
    assert ledger_row.provider_message_id == "m1"
    assert store.get_leads([one.id])[0].sequence_position == 1


def test_ledger_rows_filter_by_status_time_and_lead(store):
    store.reserve_sends(
        [
            entry("recA", reserved_at=START - timedelta(days=2)),
            entry("recB"),
            entry("recC", step=2),
        ]
    )
    (b,) = store.ledger_rows(lead_ids=["recB"])
    store.update_ledger([b.model_copy(update={"status": LedgerStatus.UNKNOWN})])
    assert {r.lead_id for r in store.ledger_rows(since=START - timedelta(hours=1))} == {
        "recB",
        "recC",
    }
    assert [r.lead_id for r in store.ledger_rows(statuses=[LedgerStatus.UNKNOWN])] == ["recB"]
    assert {r.lead_id for r in store.ledger_rows(statuses=[LedgerStatus.RESERVED])} == {
        "recA",
        "recC",
    }


def test_find_leads_by_id_email_any_case_and_phone(store):
    one, two, three = store.add_leads(
        [lead(1, email="Ann@Example.com"), lead(2), lead(3, email="c@example.com")]
    )
    assert {x.id for x in store.find_leads(ids=[one.id])} == {one.id}
    assert {x.id for x in store.find_leads(emails=["ann@example.COM"])} == {one.id}
    assert {x.id for x in store.find_leads(phones=[two.phone])} == {two.id}
    found = store.find_leads(ids=[one.id], emails=["c@example.com"], phones=[one.phone])
    assert sorted(x.id for x in found) == sorted([one.id, three.id])
    assert store.find_leads(emails=["nobody@example.com"]) == []


def test_leads_with_links_in_the_tracking_window(store):
    recent, old, unlinked = store.add_leads([lead(1), lead(2), lead(3)])
    store.update_leads(
        {
            recent.id: {"short_link_id": "aaa111", "last_sent_at": START},
            old.id: {"short_link_id": "bbb222", "last_sent_at": START - timedelta(days=40)},
            unlinked.id: {"last_sent_at": START},
        }
    )
    found = store.leads_with_links(START - timedelta(days=30))
    assert [x.id for x in found] == [recent.id]


def test_ledger_by_provider_message_id(store):
    rows = store.reserve_sends([entry("recA"), entry("recB")])
    store.record_sends(
        [rows[0].model_copy(update={"status": LedgerStatus.SENT, "provider_message_id": "m-1"})],
        {},
    )
    (found,) = store.ledger_by_message_ids(["m-1", "m-unknown"])
    assert found.lead_id == "recA"
