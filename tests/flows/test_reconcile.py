"""`uysp reconcile` through the CLI, on every store and the sandbox gateway: the real scheduler
texts step 1, each disagreement is then made for real (a run killed after its send, a lost lead
write, a text sent outside the ledger), reported, repaired with --fix, and gone on the next run.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from flows.sms_scheduler import sms_scheduler
from integrations.simpletexting import SimpleTextingGateway
from tasks.audit import caught_up
from tasks.runtime import using
from tests.builders import make_lead, seed_campaign
from tests.conftest import START
from tests.fakes.simpletexting import SimpleTextingFake
from uysp.audit import RECOVERED
from uysp.cli import app
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus, StopReason, send_key
from uysp.ports import SEND_LOCK
from uysp.templates import render

NOTHING = {
    "reserved": 0,
    "unknown": 0,
    "sent_not_in_provider_log": 0,
    "provider_message_without_ledger_row": 0,
    "lead_behind_ledger": 0,
    "lead_ahead_of_ledger": 0,
    "sent_after_stop": 0,
    "duplicate_step": 0,
}


def reconcile(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["reconcile", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict) -> list[tuple[str, str | None, bool]]:
    return sorted((i["kind"], i["lead_id"], i["fixed"]) for i in report["items"])


@pytest.fixture
def texted(installed) -> tuple[object, list[Lead]]:
    """Four leads texted step 1 by the scheduler, two days ago."""
    svc = installed
    seed_campaign(svc.store, delay_days=2)
    svc.store.add_leads(make_lead(n) for n in range(4))
    assert sms_scheduler(batch_size=100, daily_cap=1000)["sent"] == 4
    svc.clock.advance(timedelta(days=2))
    leads = sorted(svc.store.all_leads(), key=lambda lead: lead.phone)
    return svc, leads


def texted_at(day: int) -> datetime:
    return START + timedelta(days=day)


def step_text(svc, lead: Lead, step: int) -> str:
    (template,) = [
        t for t in svc.store.list_templates("c1") if (t.variant, t.step) == (lead.variant, step)
    ]
    return render(template, lead, lead.short_link_url)


def test_disagreements_are_reported_fixed_and_gone_on_the_next_run(texted):
    svc, leads = texted
    killed, lost_write, outside, fine = leads
    # A run killed after the provider took step 2 and before the ledger heard back.
    interrupted = LedgerEntry(
        send_key=send_key(killed.id, "c1", 2),
        status=LedgerStatus.RESERVED,
        lead_id=killed.id,
        phone=killed.phone,
        campaign_id="c1",
        step=2,
        variant=killed.variant,
        text=step_text(svc, killed, 2),
        reserved_at=svc.clock.now(),
    )
    svc.store.reserve_sends([interrupted])
    svc.gateway.send(killed.phone, interrupted.text)
    # A lead write lost after its step-1 row was recorded.
    svc.store.update_leads(
        {
            lost_write.id: {
                "sequence_position": 0,
                "sent_count": 0,
                "last_sent_at": None,
                "processing_status": ProcessingStatus.READY,
            }
        }
    )
    # Step 2 sent to a lead by hand, outside the ledger.
    by_hand = svc.gateway.send(outside.phone, step_text(svc, outside, 2))
    svc.clock.advance(timedelta(minutes=10))  # past the reconciliation grace
    texts = len(svc.gateway.outbox())

    code, report = reconcile()

    assert code == 1
    assert report["checked"] == {"ledger_rows": 5, "leads": 4, "provider_messages": 6}
    assert report["disagreements"] == NOTHING | {
        "reserved": 1,
        "lead_behind_ledger": 1,
        "provider_message_without_ledger_row": 1,
    }
    assert kinds(report) == sorted(
        [
            ("reserved", killed.id, False),
            ("lead_behind_ledger", lost_write.id, False),
            ("provider_message_without_ledger_row", outside.id, False),
        ]
    )
    assert (report["fixed"], report["remaining"]) == (0, 3)

    code, report = reconcile("--fix")

    assert code == 0, report
    assert kinds(report) == sorted(
        [
            ("reserved", killed.id, True),
            ("lead_behind_ledger", lost_write.id, True),
            ("provider_message_without_ledger_row", outside.id, True),
            ("lead_behind_ledger", killed.id, True),  # behind once its row was settled Sent
            ("lead_behind_ledger", outside.id, True),  # behind once its row was recovered
        ]
    )
    assert (report["fixed"], report["remaining"]) == (5, 0)
    (settled,) = [r for r in svc.store.ledger_rows(lead_ids=[killed.id]) if r.step == 2]
    (taken,) = [m for m in svc.gateway.outbox() if m.text == interrupted.text]
    assert (settled.status, settled.provider_message_id) == (LedgerStatus.SENT, taken.message_id)
    (recovered,) = [r for r in svc.store.ledger_rows(lead_ids=[outside.id]) if r.step == 2]
    assert recovered.status == LedgerStatus.SENT
    assert recovered.provider_message_id == by_hand.message_id
    assert recovered.error == RECOVERED
    after = {lead.id: lead for lead in svc.store.get_leads([x.id for x in leads])}
    assert [after[x.id].sequence_position for x in (killed, lost_write, outside, fine)] == [
        2,
        1,
        2,
        1,
    ]
    assert after[lost_write.id].processing_status == ProcessingStatus.IN_SEQUENCE
    assert after[lost_write.id].sent_count == 1
    assert after[lost_write.id].last_sent_at == lost_write.last_sent_at
    assert after[fine.id] == fine
    assert len(svc.gateway.outbox()) == texts  # reconciling never texts anyone

    code, report = reconcile()

    assert (code, report["items"], report["remaining"]) == (0, [], 0)
    table = CliRunner().invoke(app, ["reconcile"])
    assert table.exit_code == 0
    assert "0 remaining" in table.stdout


def test_what_a_person_must_decide_is_reported_and_left_alone(texted):
    svc, (unknown, missing, after_stop, ahead) = texted
    svc.store.reserve_sends(
        [
            LedgerEntry(
                send_key=send_key(unknown.id, "c1", 2),
                status=LedgerStatus.RESERVED,
                lead_id=unknown.id,
                phone=unknown.phone,
                campaign_id="c1",
                step=2,
                text="a text nobody can place",
                reserved_at=svc.clock.now(),
            )
        ]
    )
    unknown_row = svc.store.ledger_rows(lead_ids=[unknown.id], statuses=[LedgerStatus.RESERVED])
    svc.store.update_ledger(
        [unknown_row[0].model_copy(update={"status": LedgerStatus.UNKNOWN, "error": "timeout"})]
    )
    (row,) = svc.store.ledger_rows(lead_ids=[missing.id])
    svc.store.update_ledger([row.model_copy(update={"provider_message_id": "not-in-the-log"})])
    svc.store.update_leads(
        {
            after_stop.id: {
                "booked": True,
                "booked_at": after_stop.last_sent_at - timedelta(hours=1),
                "sms_stop": True,
                "stop_reason": StopReason.BOOKED,
            },
            ahead.id: {"sequence_position": 2},
        }
    )
    texts = len(svc.gateway.outbox())

    code, report = reconcile("--fix")

    assert code == 1
    assert kinds(report) == sorted(
        [
            ("unknown", unknown.id, False),
            ("sent_not_in_provider_log", missing.id, False),
            ("provider_message_without_ledger_row", missing.id, False),  # the same, seen back
            ("sent_after_stop", after_stop.id, False),
            ("lead_ahead_of_ledger", ahead.id, False),
        ]
    )
    assert report["remaining"] == 5
    (still,) = svc.store.ledger_rows(lead_ids=[unknown.id], statuses=[LedgerStatus.UNKNOWN])
    assert still.send_key == send_key(unknown.id, "c1", 2)
    (moved,) = svc.store.get_leads([ahead.id])
    assert moved.sequence_position == 2
    assert len(svc.gateway.outbox()) == texts


def test_an_unreadable_provider_log_is_an_error_not_an_all_clear(texted):
    svc, _ = texted
    with SimpleTextingFake() as fake:
        gateway = SimpleTextingGateway(
            "revoked-token", "8005550100", api_url=fake.api_url, cluster=False
        )
        with using(dataclasses.replace(svc, gateway=gateway)):
            result = CliRunner().invoke(app, ["reconcile", "--json"])
        gateway.close()

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "message log could not be read" in result.stderr


def test_fix_waits_for_no_send_phase(texted):
    svc, _ = texted
    with svc.lock.hold(SEND_LOCK, "a scheduler run", 60) as held:
        assert held
        result = CliRunner().invoke(app, ["reconcile", "--fix"])

    assert result.exit_code == 2
    assert "send lock" in result.stderr


def test_a_lead_caught_up_never_moves_back():
    stopped = Lead(
        id="rec1",
        sequence_position=1,
        sent_count=4,
        processing_status=ProcessingStatus.STOPPED,
        last_sent_at=texted_at(5),
    )
    rows = [
        LedgerEntry(
            send_key=send_key("rec1", "c1", step),
            status=LedgerStatus.SENT,
            lead_id="rec1",
            phone="+12125550101",
            campaign_id="c1",
            step=step,
            variant="B",
            sent_at=texted_at(step),
        )
        for step in (3, 2)
    ]

    fields = caught_up(stopped, rows)

    assert fields["sequence_position"] == 3
    assert fields["sent_count"] == 6
    assert fields["last_sent_at"] == texted_at(5)
    assert "processing_status" not in fields
