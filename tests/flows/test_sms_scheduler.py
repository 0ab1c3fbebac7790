"""The sms-scheduler flow on a real Prefect test server, real SQLite and the sandbox gateway.

Texts are counted from the gateway's own outbox, never from the flow's counters.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client

from flows.sms_scheduler import sms_scheduler, staggered_chunks
from integrations.sandbox_sms import Failure, SandboxGateway
from tests.builders import make_lead, seed_campaign
from uysp.models import LedgerEntry, LedgerStatus, ProcessingStatus, StopReason, send_key


def texts_by_phone(svc) -> Counter[str]:
    return Counter(m.phone for m in svc.gateway.outbox())


def run(**params):
    return sms_scheduler(**({"batch_size": 100, "daily_cap": 1000} | params))


def test_sends_step_one_and_moves_leads_into_sequence(installed):
    svc = installed
    seed_campaign(svc.store)
    leads = svc.store.add_leads(make_lead(n) for n in range(12))

    summary = run()

    assert summary["sent"] == 12
    assert texts_by_phone(svc) == {lead.phone: 1 for lead in leads}
    after = {lead.id: lead for lead in svc.store.get_leads([x.id for x in leads])}
    for lead in after.values():
        assert lead.sequence_position == 1
        assert lead.processing_status == ProcessingStatus.IN_SEQUENCE
        assert lead.variant in {"A", "B"}
        assert lead.short_link_url and lead.short_link_url in _text_to(svc, lead.phone)
        assert f"Lead{lead.phone[-2:].lstrip('0') or '0'}" in _text_to(svc, lead.phone)
    rows = svc.store.ledger_rows(statuses=[LedgerStatus.SENT])
    assert {r.send_key for r in rows} == {send_key(x.id, "c1", 1) for x in leads}
    assert all(r.provider_message_id and r.segments for r in rows)


def _text_to(svc, phone: str) -> str:
    (message,) = [m for m in svc.gateway.outbox() if m.phone == phone]
    return message.text


def test_the_sequence_runs_to_completion_over_days(installed):
    svc = installed
    seed_campaign(svc.store, delay_days=2)
    (lead,) = svc.store.add_leads([make_lead(1)])
    sent_days = []
    for day in range(8):
        if run()["sent"]:
            sent_days.append(day)
        svc.clock.advance(timedelta(days=1))
    assert sent_days == [0, 2, 4]
    (after,) = svc.store.get_leads([lead.id])
    assert after.processing_status == ProcessingStatus.COMPLETE
    assert texts_by_phone(svc)[lead.phone] == 3


def test_incident_284_leads_at_position_zero_run_three_times_in_an_hour(installed):
    """The old system texted these leads on every run: position 0, In Sequence, no time."""
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(
        make_lead(n, processing_status=ProcessingStatus.IN_SEQUENCE, sequence_position=0)
        for n in range(284)
    )
    for _ in range(3):
        run()
        svc.clock.advance(timedelta(minutes=20))
    counts = texts_by_phone(svc)
    assert len(counts) == 284
    assert max(counts.values()) == 1


def test_position_without_last_sent_time_is_repaired_not_sent(installed):
    svc = installed
    seed_campaign(svc.store)
    (lead,) = svc.store.add_leads(
        [make_lead(1, processing_status=ProcessingStatus.IN_SEQUENCE, sequence_position=1)]
    )
    summary = run()
    assert summary["held"] == {"repaired_missing_last_sent": 1}
    assert texts_by_phone(svc) == {}
    (after,) = svc.store.get_leads([lead.id])
    assert after.last_sent_at == svc.clock.now()


class _StoreThatFailsAfterSend:
    """The store, except that writing the send outcomes fails once (Airtable down mid-run)."""

    def __init__(self, store) -> None:
        self._store = store
        self.failures_left = 1

    def __getattr__(self, name):
        return getattr(self._store, name)

    def record_sends(self, entries, lead_updates):
        if self.failures_left and entries:
            self.failures_left -= 1
            raise ConnectionError("store unreachable after the send")
        return self._store.record_sends(entries, lead_updates)


def test_incident_store_write_fails_after_the_send(installed):
    svc = installed
    seed_campaign(svc.store)
    leads = svc.store.add_leads(make_lead(n) for n in range(5))
    real_store = svc.store
    svc.store = _StoreThatFailsAfterSend(real_store)

    state = sms_scheduler(batch_size=100, daily_cap=1000, return_state=True)
    assert state.is_failed()
    svc.store = real_store
    svc.clock.advance(timedelta(hours=2))
    second = run()

    assert second["reconciled"]["sent"] == 5
    assert second["sent"] == 0
    assert max(texts_by_phone(svc).values()) == 1
    for lead in svc.store.get_leads([x.id for x in leads]):
        assert lead.sequence_position == 1


def test_incident_stop_recorded_mid_batch(installed, config):
    config(send_concurrency=1)
    svc = installed
    seed_campaign(svc.store)
    leads = svc.store.add_leads(make_lead(n) for n in range(30))
    first_texted: list[str] = []

    class StopArrivesDuringFirstSend(SandboxGateway):
        """While the first text is in flight, everyone else in the batch replies STOP."""

        def send(self, phone, text, **kwargs):
            if not first_texted:
                first_texted.append(phone)
                svc.store.update_leads(
                    {
                        lead.id: {"sms_stop": True, "stop_reason": StopReason.STOP}
                        for lead in leads
                        if lead.phone != phone
                    }
                )
            return super().send(phone, text, **kwargs)

    svc.gateway = StopArrivesDuringFirstSend(svc.gateway.db, svc.clock)
    summary = run()

    assert texts_by_phone(svc) == {first_texted[0]: 1}
    assert summary["sent"] == 1
    assert summary["held"]["stopped_mid_run"] == 29


def test_incident_missing_template_for_variant_b_step_2(installed):
    svc = installed
    seed_campaign(svc.store, skip={("B", 2)})
    three_days_ago = svc.clock.now() - timedelta(days=3)
    leads = svc.store.add_leads(
        make_lead(
            n,
            variant="AB"[n % 2],
            sequence_position=1,
            last_sent_at=three_days_ago,
            processing_status=ProcessingStatus.IN_SEQUENCE,
        )
        for n in range(10)
    )
    summary = run()

    assert summary["sent"] == 5
    assert summary["held"] == {"missing_template": 5}
    texted = set(texts_by_phone(svc))
    assert texted == {lead.phone for lead in leads if lead.variant == "A"}
    alerts = [n.title for channel, n in svc.notifier.sent if channel == "alerts"]
    assert any("variant B step 2" in title for title in alerts)


def test_bad_input_is_counted_with_the_lead_and_field_and_the_batch_goes_on(installed):
    svc = installed
    seed_campaign(svc.store)
    good = svc.store.add_leads([make_lead(1), make_lead(2)])
    svc.store.add_leads([make_lead(3, phone="555-12"), make_lead(4, first_name=None)])
    summary = run()
    assert summary["sent"] == 2
    assert summary["held"] == {"phone_invalid": 1, "missing_name": 1}
    assert set(texts_by_phone(svc)) == {lead.phone for lead in good}


def test_unknown_campaign_holds_every_lead_and_alerts(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(3))
    summary = run(campaign="no-such-campaign")
    assert summary["held"] == {"unknown_campaign": 3}
    assert any("no-such-campaign" in n.title for _, n in svc.notifier.sent)
    assert texts_by_phone(svc) == {}


def test_quiet_hours_hold_the_leads_whose_local_time_is_out(installed):
    svc = installed
    seed_campaign(svc.store)
    # 16:00 UTC: 11:00 in New York, 06:00 in Honolulu.
    ny, _hawaii = svc.store.add_leads([make_lead(1, area="212"), make_lead(2, area="808")])
    summary = run()
    assert set(texts_by_phone(svc)) == {ny.phone}
    assert summary["held"] == {"outside_federal_hours": 1}


def test_permanent_error_marks_the_lead_and_is_never_retried(installed):
    svc = installed
    seed_campaign(svc.store)
    bad, _good = svc.store.add_leads([make_lead(1), make_lead(2)])
    svc.gateway.fail_phone(bad.phone, Failure.INVALID_NUMBER)

    first = run()
    svc.clock.advance(timedelta(days=1))
    second = run()

    assert first["failed"] == {"permanent": 1}
    (after,) = svc.store.get_leads([bad.id])
    assert after.sms_stop and after.stop_reason == "INVALID"
    assert after.processing_status == ProcessingStatus.FAILED
    assert "INVALID_PHONE" in (after.error_log or "")
    assert second["failed"] == {}
    assert second["sent"] == 0


def test_unsubscribed_number_stops_the_lead_as_stop(installed):
    svc = installed
    seed_campaign(svc.store)
    (lead,) = svc.store.add_leads([make_lead(1)])
    svc.gateway.fail_phone(lead.phone, Failure.UNSUBSCRIBED)
    run()
    (after,) = svc.store.get_leads([lead.id])
    assert after.sms_stop and after.stop_reason == "STOP"
    assert after.processing_status == ProcessingStatus.STOPPED


def test_transient_error_is_left_for_the_next_run(installed):
    svc = installed
    seed_campaign(svc.store)
    (lead,) = svc.store.add_leads([make_lead(1)])
    svc.gateway.fail_next(Failure.SERVER_ERROR)
    first = run()
    svc.clock.advance(timedelta(hours=3))
    second = run()
    assert first["failed"] == {"transient": 1}
    assert second["sent"] == 1
    assert texts_by_phone(svc) == {lead.phone: 1}


def test_configuration_error_halts_the_run_and_alerts(installed, config):
    config(send_concurrency=1)
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(30))
    svc.gateway.fail_next(Failure.BAD_TOKEN)
    summary = run()
    assert summary["status"] == "halted"
    assert "configuration" in summary["halt_reason"]
    assert summary["sent"] < 10  # the rest of the wave at most, never the whole batch
    assert any(n.level == "error" for channel, n in svc.notifier.sent if channel == "alerts")


def test_error_rate_over_five_percent_pauses_sending(installed, config):
    config(send_concurrency=1)
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(60))
    svc.gateway.fail_next(Failure.SERVER_ERROR, times=2)
    svc.gateway.failure_rate = 0.0
    failing = svc.store.select_active_leads()[20:25]
    for lead in failing:
        svc.gateway.fail_phone(lead.phone, Failure.RATE_LIMITED)

    summary = run()

    assert summary["status"] == "halted"
    assert "error rate" in summary["halt_reason"]
    assert not svc.store.get_settings().sending_on
    assert run()["status"] == "paused"


def test_kill_switch_paused_sends_nothing(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads([make_lead(1)])
    svc.store.update_settings(sms_sending="Paused")
    assert run()["status"] == "paused"
    assert texts_by_phone(svc) == {}


def test_dry_run_plans_without_sending_or_writing(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(4))
    summary = run(dry_run=True)
    assert summary["would_send"] == 4
    assert texts_by_phone(svc) == {}
    assert svc.store.ledger_rows() == []


def test_test_mode_texts_the_test_phone_and_leaves_leads_alone(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.update_settings(test_phone="+12125559999")
    leads = svc.store.add_leads(make_lead(n) for n in range(3))
    run(test_mode=True)
    assert texts_by_phone(svc) == {"+12125559999": 3}
    assert all(x.sequence_position == 0 for x in svc.store.get_leads([x.id for x in leads]))


def test_batch_and_daily_caps(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(30))
    first = run(batch_size=10, daily_cap=15)
    second = run(batch_size=10, daily_cap=15)
    assert (first["sent"], second["sent"]) == (10, 5)
    assert second["held"]["daily_cap"] == 15


def test_daily_segment_cap(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(10))
    summary = run(daily_segment_cap=3)
    assert summary["sent"] == 3  # each step-1 text is one segment
    assert summary["held"]["daily_segment_cap"] == 7


def test_hard_caps_cannot_be_raised_by_parameters(installed):
    with pytest.raises(Exception, match="batch_size"):
        sms_scheduler(batch_size=101)


def test_unknown_outcome_is_alerted_and_never_resent(installed):
    svc = installed
    seed_campaign(svc.store)
    (lead,) = svc.store.add_leads([make_lead(1)])
    # An interrupted run left a Reserved row; the provider log shows a different text.
    svc.gateway.send(lead.phone, "an unrelated text")
    svc.store.reserve_sends(
        [
            LedgerEntry(
                send_key=send_key(lead.id, "c1", 1),
                status=LedgerStatus.RESERVED,
                lead_id=lead.id,
                phone=lead.phone,
                campaign_id="c1",
                step=1,
                text="the text we meant to send",
                reserved_at=svc.clock.now() - timedelta(hours=1),
            )
        ]
    )
    summary = run()
    svc.clock.advance(timedelta(days=2))
    later = run()

    assert summary["reconciled"]["unknown"] == 1
    assert summary["sent"] == later["sent"] == 0
    assert later["held"] == {"unknown_outcome": 1}
    assert texts_by_phone(svc) == {lead.phone: 1}
    assert any("unknown outcome" in n.title for _, n in svc.notifier.sent)


def test_dropped_connection_after_accept_is_reconciled_not_resent(installed):
    svc = installed
    seed_campaign(svc.store)
    (lead,) = svc.store.add_leads([make_lead(1)])
    svc.gateway.fail_next(Failure.DROPPED_AFTER_ACCEPT)
    summary = run()
    svc.clock.advance(timedelta(days=1))
    run()
    assert summary["reconciled_after"]["sent"] == 1
    assert texts_by_phone(svc) == {lead.phone: 1}
    (row,) = svc.store.ledger_rows(lead_ids=[lead.id])
    assert row.status == LedgerStatus.SENT


def test_each_run_leaves_held_table_and_summary_artifacts(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads([make_lead(1), make_lead(2, area="808")])
    state = sms_scheduler(batch_size=100, daily_cap=1000, return_state=True)
    artifacts = asyncio.run(_artifacts_of(state.state_details.flow_run_id))
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    assert "outside_federal_hours" in str(by_key["sms-scheduler-held"]["data"])
    assert "1 sent" in str(by_key["sms-scheduler-summary"]["data"])
    assert any(a["type"] == "progress" for a in artifacts)


async def _artifacts_of(flow_run_id) -> list[dict]:
    # Posted by hand: this client sends null filters that this server rejects or joins on.
    body = {
        "flow_runs": {"id": {"any_": [str(flow_run_id)]}},
        "limit": 50,
        "offset": 0,
        "sort": "CREATED_DESC",
    }
    async with get_client() as client:
        response = await client.request("POST", "/artifacts/filter", json=body)
    return response.json()


def test_credits_falling_under_1000_alert(installed):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(10))
    svc.gateway.starting_credits = 1005
    summary = run()
    assert summary["sent"] == 10
    assert summary["credits_left"] == 995
    assert any("credits low" in n.title for _, n in svc.notifier.sent)


def test_credit_floor_holds_sends(installed, config):
    config(credit_floor=1000)
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(10))
    svc.gateway.starting_credits = 1003
    summary = run()
    assert summary["sent"] == 3
    assert summary["held"] == {"credit_floor": 7}


@pytest.mark.parametrize(
    ("total", "parallel", "sizes"),
    [
        (450, 2, [50, 100, 100, 100, 100]),
        (450, 4, [25, 50, 75, 100, 100, 100]),
        (30, 2, [30]),
        (450, 1, [100, 100, 100, 100, 50]),
    ],
)
def test_chunks_running_side_by_side_are_staggered_and_cover_every_send(total, parallel, sizes):
    sends = list(range(total))

    chunks = list(staggered_chunks(sends, 100, parallel))

    assert [len(chunk) for chunk in chunks] == sizes
    assert [send for chunk in chunks for send in chunk] == sends


def test_sends_go_out_with_old_objects_out_of_the_collector_and_it_is_restored(
    installed, monkeypatch
):
    svc = installed
    seed_campaign(svc.store)
    svc.store.add_leads(make_lead(n) for n in range(5))
    frozen_during_sends = []
    send = svc.gateway.send

    def recording_send(*args, **kwargs):
        frozen_during_sends.append(gc.get_freeze_count())
        return send(*args, **kwargs)

    monkeypatch.setattr(svc.gateway, "send", recording_send)
    run()

    assert len(frozen_during_sends) == 5 and min(frozen_during_sends) > 0
    assert gc.get_freeze_count() == 0  # a long-lived worker collects everything again
