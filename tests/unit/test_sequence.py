"""The sequence gate and the 24-hour gate. Steps 2 and 3 wait 2 days, or 30 minutes in fast
mode; the 24-hour floor applies on top of either, at every position."""

from datetime import UTC, datetime, timedelta

import pytest

from uysp.models import Lead, Template
from uysp.sequence import MAX_STEPS, MIN_GAP, Due, Held, next_step, step_delay

NOW = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)


def template(step: int, delay_days: float = 2, fast_delay_minutes: float = 30) -> Template:
    return Template(
        campaign="c1",
        variant="A",
        step=step,
        body=f"step {step} {{Link}}",
        delay_days=0 if step == 1 else delay_days,
        fast_delay_minutes=0 if step == 1 else fast_delay_minutes,
    )


def steps(delay_days: float = 2, fast_delay_minutes: float = 30) -> dict[int, Template]:
    return {s: template(s, delay_days, fast_delay_minutes) for s in (1, 2, 3)}


def make_lead(position: int) -> Lead:
    return Lead(id="recL1", sequence_position=position)


def decide(position, ago, *, fast=False, table=None):
    """next_step for a lead at `position`, last texted `ago` before NOW (None: never)."""
    last_sent_at = None if ago is None else NOW - ago
    return next_step(
        make_lead(position),
        steps() if table is None else table,
        NOW,
        fast_mode=fast,
        last_sent_at=last_sent_at,
    )


def outcome(decision: Due | Held) -> int | str:
    """The step when due, the reason when held."""
    return decision.step if isinstance(decision, Due) else decision.reason


def test_constants():
    assert MAX_STEPS == 3
    assert timedelta(hours=24) == MIN_GAP


@pytest.mark.parametrize(
    ("position", "ago", "fast", "expected"),
    [
        # Step 1 at once.
        (0, None, False, 1),
        (0, None, True, 1),
        # Position 0, but a text is known (the caller passes the ledger's time): 24 h still holds.
        (0, 1 * H, False, "within_24h"),
        (0, 24 * H - S, False, "within_24h"),
        (0, 24 * H, False, 1),  # step 1 has no delay of its own
        # A position with no last-sent time is repaired, never due.
        (1, None, False, "repaired_missing_last_sent"),
        (2, None, False, "repaired_missing_last_sent"),
        (1, None, True, "repaired_missing_last_sent"),
        # Step 2 after Delay Days (2 days), and never inside 24 hours.
        (1, 1 * H, False, "within_24h"),
        (1, 24 * H - S, False, "within_24h"),
        (1, 24 * H, False, "not_due"),
        (1, 48 * H - S, False, "not_due"),
        (1, 48 * H, False, 2),  # exactly the delay
        (1, 30 * 24 * H, False, 2),
        (2, 24 * H - S, False, "within_24h"),
        (2, 47 * H, False, "not_due"),
        (2, 48 * H, False, 3),
        # Fast mode: 30 minutes of Fast Delay, but the 24-hour floor still rules.
        (1, 29 * M, True, "within_24h"),
        (1, 30 * M, True, "within_24h"),
        (1, 23 * H, True, "within_24h"),
        (1, 24 * H - S, True, "within_24h"),
        (1, 24 * H, True, 2),  # exactly 24 h
        (2, 24 * H - S, True, "within_24h"),
        (2, 24 * H, True, 3),
        # At most 3 steps, whatever the times say.
        (3, None, False, "sequence_complete"),
        (3, 30 * 24 * H, False, "sequence_complete"),
        (3, 30 * 24 * H, True, "sequence_complete"),
        (4, 30 * 24 * H, False, "sequence_complete"),
    ],
)
def test_next_step(position, ago, fast, expected):
    assert outcome(decide(position, ago, fast=fast)) == expected


@pytest.mark.parametrize(
    ("table", "position", "ago", "fast", "expected"),
    [
        # Delay shorter than a day: the 24-hour floor is the binding gate.
        (steps(delay_days=0.5), 1, 12 * H, False, "within_24h"),
        (steps(delay_days=0.5), 1, 24 * H - S, False, "within_24h"),
        (steps(delay_days=0.5), 1, 24 * H, False, 2),
        # Delay longer than a day, in either mode; the other mode's delay is ignored.
        (steps(delay_days=3, fast_delay_minutes=30), 1, 48 * H, False, "not_due"),
        (steps(delay_days=3, fast_delay_minutes=30), 1, 72 * H, False, 2),
        (steps(delay_days=3, fast_delay_minutes=30), 1, 24 * H, True, 2),
        (steps(delay_days=0, fast_delay_minutes=25 * 60), 1, 24 * H, True, "not_due"),
        (steps(delay_days=0, fast_delay_minutes=25 * 60), 1, 25 * H - S, True, "not_due"),
        (steps(delay_days=0, fast_delay_minutes=25 * 60), 1, 25 * H, True, 2),
        (steps(delay_days=0, fast_delay_minutes=25 * 60), 1, 24 * H, False, 2),
        # Per-step delays: step 3's own delay counts, not step 2's.
        ({1: template(1), 2: template(2, 1), 3: template(3, 4)}, 2, 72 * H, False, "not_due"),
        ({1: template(1), 2: template(2, 1), 3: template(3, 4)}, 2, 96 * H, False, 3),
        # No template for the step: due, so the template gate can hold it and alert.
        ({1: template(1)}, 1, 24 * H, False, 2),
        ({}, 0, None, False, 1),
    ],
)
def test_next_step_delays(table, position, ago, fast, expected):
    assert outcome(decide(position, ago, fast=fast, table=table)) == expected


def test_held_messages_name_the_lead_and_fields():
    assert decide(1, None) == Held(
        "repaired_missing_last_sent",
        "lead recL1: SMS Sequence Position 1 with no SMS Last Sent At",
    )
    assert decide(3, None) == Held("sequence_complete", "lead recL1: all 3 steps sent")
    assert decide(1, 2 * H) == Held("within_24h", "lead recL1: texted at 2026-11-17T14:00:00+00:00")
    # Last sent 2026-11-16 16:00, step 2 due two days later.
    assert decide(1, 24 * H) == Held("not_due", "lead recL1: step 2 due 2026-11-18T16:00:00+00:00")


@pytest.mark.parametrize(
    ("delay_days", "fast_delay_minutes", "fast", "expected"),
    [
        (2, 30, False, timedelta(days=2)),
        (2, 30, True, timedelta(minutes=30)),
        (0.5, 30, False, timedelta(hours=12)),
        (0, 0, False, timedelta(0)),
        (0, 0, True, timedelta(0)),
        (1, 90, True, timedelta(hours=1, minutes=30)),
    ],
)
def test_step_delay(delay_days, fast_delay_minutes, fast, expected):
    assert step_delay(template(2, delay_days, fast_delay_minutes), fast) == expected
