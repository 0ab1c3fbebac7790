"""The rollout plan's phases: how big and how often the scheduler runs in each.

prefect.yaml's deployments and the demo read the same numbers from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    batch_size: int
    daily_cap: int
    run_hours: tuple[int, ...]  # local hours (America/New_York) of the weekday runs

    @property
    def runs_per_day(self) -> int:
        return len(self.run_hours)


PHASES = (
    Phase("phase-1-validation", batch_size=20, daily_cap=60, run_hours=(10, 13, 16)),
    Phase("phase-2-scale-up", batch_size=50, daily_cap=300, run_hours=(9, 11, 13, 15, 17, 19)),
    Phase(
        "phase-3-production",
        batch_size=100,
        daily_cap=1000,
        run_hours=(9, 10, 11, 12, 13, 14, 15, 16, 17, 19),
    ),
)

PHASE_VARIABLE = "uysp_rollout_phase"
"""The Prefect Variable naming the current phase; its last update is when that phase began."""
SENDING_VARIABLE = "uysp_sms_sending"
"""A second kill switch, in the Prefect UI: Paused here or in Settings stops sending."""


def phase_named(name: str) -> Phase:
    for phase in PHASES:
        if phase.name == name:
            return phase
    raise ValueError(f"no rollout phase {name!r}; phases: {', '.join(p.name for p in PHASES)}")


def phase_step(phase: Phase, step: int) -> Phase | None:
    """The phase `step` places after (1) or before (-1) this one; None past either end."""
    index = PHASES.index(phase) + step
    return PHASES[index] if 0 <= index < len(PHASES) else None
