"""Staging rules: tiers by ICP Score, Hold below 40, the day's capacity, and the order leads
move in."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import make_lead
from uysp.models import Lead, ProcessingStatus, Template
from uysp.tiers import capacity_left, plan_staging, texts_due_by, tier_of

NOW = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
END_OF_DAY = datetime(2026, 11, 18, 5, 0, tzinfo=UTC)  # midnight in New York


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (100, 1),
        (80.5, 1),
        (80, 2),
        (60, 2),
        (59.9, 3),
        (40, 3),
        (39.9, None),
        (0, None),
        (None, None),
    ],
)
def test_tier_of(score, tier):
    assert tier_of(score) == tier


def queued(n: int, score: float | None, **fields) -> Lead:
    lead = make_lead(n, icp_score=score, processing_status=ProcessingStatus.QUEUED, **fields)
    return lead.model_copy(update={"id": f"rec{n}"})


def test_best_tier_first_then_score_then_oldest_import_within_capacity():
    leads = [
        queued(1, 65),
        queued(2, 95, imported_at=NOW),
        queued(3, 95, imported_at=NOW - timedelta(days=3)),
        queued(4, 45),
        queued(5, 81),
        queued(6, 70),
    ]
    plan = plan_staging(leads, capacity=4, campaign="c1")
    assert [lead.id for lead in plan.ready] == ["rec3", "rec2", "rec5", "rec6"]
    assert plan.ready_by_tier == {1: 3, 2: 1}
    assert plan.waiting == 2
    assert plan.held == {}


def test_low_unscored_and_unsendable_leads_go_to_hold_whatever_the_capacity():
    leads = [
        queued(1, 30),
        queued(2, None),
        queued(3, 90, current_client=True),
        queued(4, 90, phone="555-12", phone_valid=False),
        queued(5, 90),
    ]
    plan = plan_staging(leads, capacity=0, campaign="c1")
    assert plan.ready == []
    assert plan.held == {
        "rec1": "ICP Score 30, below 40",
        "rec2": "ICP Score none, below 40",
        "rec3": "lead rec3: Current Coaching Client",
        "rec4": "lead rec4: Phone Valid is not checked",
    }
    assert plan.waiting == 1


def test_leads_imported_for_another_campaign_wait():
    leads = [queued(1, 90, campaign_id="c2"), queued(2, 90, campaign_id="c1"), queued(3, 90)]
    plan = plan_staging(leads, capacity=10, campaign="c1")
    assert [lead.id for lead in plan.ready] == ["rec2", "rec3"]
    assert plan.other_campaign == 1


@pytest.mark.parametrize(
    ("cap", "sent", "owed", "left"),
    [(60, 0, 0, 60), (60, 10, 20, 30), (60, 50, 20, 0), (300, 0, 300, 0)],
)
def test_capacity_left(cap, sent, owed, left):
    assert capacity_left(cap, sent, owed) == left


def templates(delay_days: float = 2) -> dict[str, dict[int, Template]]:
    return {
        "A": {
            step: Template(
                campaign="c1",
                variant="A",
                step=step,
                body="{Link}",
                delay_days=0 if step == 1 else delay_days,
            )
            for step in (1, 2, 3)
        }
    }


def in_sequence(n: int, position: int, last_sent: datetime | None, **fields) -> Lead:
    return make_lead(
        n,
        processing_status=ProcessingStatus.IN_SEQUENCE,
        sequence_position=position,
        last_sent_at=last_sent,
        variant="A",
        **fields,
    )


def test_texts_owed_today_counts_due_follow_ups_and_waiting_ready_leads():
    leads = [
        in_sequence(1, 1, NOW - timedelta(days=2)),  # step 2 due
        in_sequence(2, 2, NOW - timedelta(days=1, hours=20)),  # step 3 due before midnight
        in_sequence(3, 1, NOW - timedelta(hours=3)),  # texted today: within 24 h
        in_sequence(4, 1, NOW - timedelta(days=1)),  # step 2 due in a day
        in_sequence(5, 1, NOW - timedelta(days=3), sms_stop=True),  # stopped
        in_sequence(6, 3, NOW - timedelta(days=5)),  # all steps sent
        make_lead(7),  # Ready for SMS: step 1 owed
        make_lead(8, phone_valid=False),  # Ready but never sendable
    ]
    assert texts_due_by(leads, templates(), END_OF_DAY, fast_mode=False) == 3
