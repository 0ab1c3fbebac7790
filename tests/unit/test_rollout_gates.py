"""The rollout plan's quality gates: what the ledger shows, and what each phase does with it."""

from datetime import UTC, datetime

import pytest

from uysp.models import ErrorClass, Lead, LedgerEntry, LedgerStatus, StopReason
from uysp.rollout import PHASES, phase_named, phase_step
from uysp.rollout_gates import RolloutMetrics, evaluate, measure, report_markdown

P1, P2, P3 = PHASES
NOW = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)


def row(n: int, status: LedgerStatus, **fields) -> LedgerEntry:
    return LedgerEntry(
        send_key=f"lead{n}:c1:1",
        status=status,
        lead_id=f"lead{n}",
        phone=f"+1212555{n:04d}",
        campaign_id="c1",
        step=1,
        **fields,
    )


def failed(n: int, error_class: ErrorClass, error: str = "HTTP_503: unavailable") -> LedgerEntry:
    return row(n, LedgerStatus.FAILED, error_class=error_class, error=error)


def test_measure_counts_only_sends_with_a_verdict():
    rows = [
        row(1, LedgerStatus.DELIVERED),
        row(2, LedgerStatus.DELIVERED),
        row(3, LedgerStatus.UNDELIVERED),
        row(4, LedgerStatus.SENT),
        row(5, LedgerStatus.UNKNOWN),
        failed(6, ErrorClass.TRANSIENT, "HTTP_429: 429 TOO_MANY_REQUESTS: Too many requests"),
        failed(7, ErrorClass.PERMANENT, "INVALID_PHONE: Not a valid phone number"),
        row(8, LedgerStatus.RESERVED),  # in flight
        failed(9, ErrorClass.NOT_SENT, "run halted"),  # released before the provider call
    ]
    leads = [
        Lead(id="lead1", stop_reason=StopReason.STOP),
        Lead(id="lead2", stop_reason=StopReason.BOOKED),
        Lead(id="lead3", stop_reason=StopReason.UNSUBSCRIBED),
        Lead(id="lead7", stop_reason=StopReason.STOP),  # never texted: not an opt-out of ours
    ]

    metrics = measure(rows, leads)

    assert metrics == RolloutMetrics(
        attempted=7, went_out=4, delivered=2, rate_limited=1, texted_leads=4, opted_out=2
    )
    assert metrics.success_rate == pytest.approx(4 / 7)
    assert metrics.error_rate == pytest.approx(3 / 7)
    assert metrics.delivery_rate == pytest.approx(2 / 4)
    assert metrics.opt_out_rate == pytest.approx(2 / 4)


def test_an_empty_window_has_no_rates():
    metrics = measure([], [])
    assert (metrics.success_rate, metrics.delivery_rate, metrics.opt_out_rate) == (None,) * 3


def healthy(**changes) -> RolloutMetrics:
    """200 sends: 199 out (99.5%), 196 delivered (98.5%), 2 of 199 opted out (1.0%)."""
    base = {
        "attempted": 200,
        "went_out": 199,
        "delivered": 196,
        "rate_limited": 0,
        "texted_leads": 199,
        "opted_out": 2,
    }
    return RolloutMetrics(**(base | changes))


@pytest.mark.parametrize(
    ("phase", "metrics", "action", "target", "reason"),
    [
        (P1, healthy(), "advance", P2, "every gate passed"),
        (P1, healthy(went_out=197), "advance", P2, "every gate passed"),
        (P1, healthy(went_out=196), "hold", None, "execution success 98.0% (needs > 98.0%)"),
        (P1, healthy(went_out=189), "hold", None, "no earlier phase"),  # 5.5% errors
        (P1, healthy(attempted=49, went_out=49), "hold", None, "49 sends in the window"),
        (P2, healthy(), "advance", P3, "every gate passed"),
        (P2, healthy(went_out=190), "hold", None, "execution success 95.0% (needs > 95.0%)"),
        (P2, healthy(rate_limited=1), "hold", None, "rate-limit hits 1 (needs <= 0)"),
        (P2, healthy(opted_out=4), "hold", None, "opt-outs 2.0% (needs < 2.0%)"),
        (P2, healthy(delivered=189), "hold", None, "delivery 95.0% (needs > 95.0%)"),
        (P2, healthy(delivered=0), "hold", None, "delivery 0.0%"),
        (P2, healthy(went_out=189), "roll_back", P1, "error rate 5.5% (needs <= 5.0%)"),
        (P2, healthy(went_out=190, rate_limited=3), "hold", None, "rate-limit hits 3"),
        (P3, healthy(), "hold", None, "the last phase"),
        (P3, healthy(went_out=189), "roll_back", P2, "error rate 5.5%"),
        (P3, healthy(attempted=19, went_out=10), "hold", None, "the last phase"),  # too few
        (P2, healthy(attempted=20, went_out=18), "roll_back", P1, "error rate 10.0%"),
    ],
)
def test_each_phase_advances_holds_or_rolls_back_by_its_gates(
    phase, metrics, action, target, reason
):
    recommendation = evaluate(phase, metrics)
    assert (recommendation.action, recommendation.target) == (action, target)
    assert reason in recommendation.reason


def test_a_phase_only_ever_moves_by_one():
    for phase in PHASES:
        for metrics in (healthy(), healthy(went_out=150)):
            target = evaluate(phase, metrics).target
            assert target in (None, phase_step(phase, 1), phase_step(phase, -1))


def test_the_minimum_sample_is_the_callers_to_choose():
    assert evaluate(P1, healthy(), min_sends=201).action == "hold"
    assert evaluate(P1, healthy(attempted=10, went_out=10), min_sends=10).action == "advance"


def test_phase_names_resolve_and_unknown_ones_say_which_exist():
    assert phase_named("phase-2-scale-up") is P2
    with pytest.raises(ValueError, match="phase-1-validation"):
        phase_named("phase-9")


def test_the_report_shows_every_gate_against_its_number_and_the_recommendation():
    metrics = healthy(rate_limited=2)
    recommendation = evaluate(P2, metrics)

    text = report_markdown(recommendation, metrics, NOW.replace(day=14), NOW, applied=False)

    assert "| execution success | > 95.0% | 99.5% | pass |" in text
    assert "| rate-limit hits | <= 0 | 2 | FAIL |" in text
    assert "| opt-outs | < 2.0% | 1.0% | pass |" in text
    assert "| delivery | > 95.0% | 98.5% | pass |" in text
    assert "| error rate | <= 5.0% | 0.5% | pass |" in text
    assert "Recommendation: hold in **phase-2-scale-up**" in text
    assert "Window 2026-11-14 16:00 to 2026-11-17 16:00 UTC: 200 sends" in text
    assert "Nothing to switch." in text


def test_the_report_says_whether_the_switch_was_applied():
    recommendation = evaluate(P1, healthy())
    applied = report_markdown(recommendation, healthy(), NOW, NOW, applied=True)
    advised = report_markdown(recommendation, healthy(), NOW, NOW, applied=False)
    assert "advance to **phase-2-scale-up**" in applied
    assert "Applied: phase-2-scale-up's schedule is now the active one." in applied
    assert "Not applied: run the advisor with `apply=True`" in advised
