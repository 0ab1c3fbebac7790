"""rollout-advisor: measures the current phase against the rollout plan's quality gates.

It reads the ledger since the later of `days` ago and the start of the current phase (the
Prefect variable's last update), leaves a markdown artifact with each gate's number and its
recommendation, and with `apply=True` switches the scheduler to the recommended phase: the
current phase's schedule is paused and the next (or, rolling back, the previous) one resumed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from tasks.rollout import current_phase, rollout_metrics, switch_phase
from tasks.runtime import services
from uysp.rollout_gates import MIN_SENDS_TO_ADVANCE, evaluate, report_markdown


@flow(name="rollout-advisor", log_prints=False)
def rollout_advisor(
    days: Annotated[float, Field(gt=0, le=60)] = 3,
    apply: bool = False,
    min_sends: Annotated[int, Field(ge=1)] = MIN_SENDS_TO_ADVANCE,
) -> dict[str, Any]:
    """Recommend advancing, holding or rolling back one phase; `apply` makes the switch."""
    now = services().clock.now()
    phase, phase_began = current_phase()
    since = now - timedelta(days=days)
    if phase_began and phase_began > since:
        since = phase_began
    metrics = rollout_metrics(since)
    recommendation = evaluate(phase, metrics, min_sends=min_sends)
    applied = apply and recommendation.target is not None
    changed = switch_phase(recommendation.target) if applied else []
    create_markdown_artifact(
        key="rollout-advisor",
        markdown=report_markdown(recommendation, metrics, since, now, applied),
        description=f"Rollout gates for {phase.name}",
    )
    get_run_logger().info(
        "%s: %s (%s)%s",
        phase.name,
        recommendation.action,
        recommendation.reason,
        f"; switched {', '.join(changed)}" if changed else "",
    )
    return {
        "phase": phase.name,
        "action": recommendation.action,
        "target": recommendation.target.name if recommendation.target else None,
        "reason": recommendation.reason,
        "applied": applied,
        "since": since.isoformat(),
        "metrics": vars(metrics),
    }
