"""Every deployment and its schedule, in one table: prefect.yaml must agree with it (a unit test
compares them) and `uysp serve` builds its deployments from it.

The scheduler has one deployment per rollout phase; only the current phase's schedule is active.
Scheduled deployments admit one run at a time and cancel a newcomer (CANCEL_NEW), so a slow run
never has a second one stacked on it. Deployments without a schedule are started by the webhook
receiver (`<flow>/<flow>`), the CLI or the Prefect UI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from uysp.rollout import PHASES, Phase
from uysp.tiers import STAGING_HOURS

TIMEZONE = "America/New_York"
WEEKDAYS = "1-5"
SCHEDULER_FLOW = "sms-scheduler"


@dataclass(frozen=True)
class DeploymentSpec:
    flow: str  # the flow's name
    name: str  # the deployment's name: Prefect calls it `<flow>/<name>`
    module: str  # where the flow function lives, e.g. flows.sms_scheduler
    function: str
    cron: str | None = None  # in TIMEZONE; None: started on demand
    parameters: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True
    singleton: bool = False  # concurrency limit 1, collision strategy CANCEL_NEW

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"

    @property
    def entrypoint(self) -> str:
        """The file-path entrypoint prefect.yaml uses."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"


def hours_cron(hours: tuple[int, ...], days: str = "*") -> str:
    return f"0 {','.join(str(hour) for hour in hours)} * * {days}"


def scheduler_deployment(phase: Phase, *, active: bool) -> DeploymentSpec:
    return DeploymentSpec(
        SCHEDULER_FLOW,
        phase.name,
        "flows.sms_scheduler",
        "sms_scheduler",
        cron=hours_cron(phase.run_hours, WEEKDAYS),
        parameters={"batch_size": phase.batch_size, "daily_cap": phase.daily_cap},
        active=active,
        singleton=True,
    )


def on_demand(flow: str, module: str) -> DeploymentSpec:
    return DeploymentSpec(flow, flow, module, module.rsplit(".", 1)[1])


def scheduled(flow: str, module: str, cron: str) -> DeploymentSpec:
    return DeploymentSpec(flow, flow, module, module.rsplit(".", 1)[1], cron=cron, singleton=True)


def deployment_specs(current_phase: str = PHASES[0].name) -> tuple[DeploymentSpec, ...]:
    """Every deployment, with the scheduler's schedule active for `current_phase` only."""
    return (
        *(scheduler_deployment(phase, active=phase.name == current_phase) for phase in PHASES),
        scheduled("click-tracker", "flows.click_tracker", "*/10 * * * *"),
        scheduled("staging", "flows.staging", hours_cron(STAGING_HOURS, WEEKDAYS)),
        scheduled("daily-report", "flows.daily_report", hours_cron((21,))),
        scheduled("health", "flows.health", hours_cron((9,))),
        # After the day's last scheduler run (19:00 in phases 2 and 3) and its receipts.
        DeploymentSpec(
            "rollout-advisor",
            "rollout-advisor",
            "flows.rollout",
            "rollout_advisor",
            cron="30 20 * * 1-5",
            singleton=True,
        ),
        on_demand("booking", "flows.booking"),
        on_demand("inbound", "flows.inbound"),
        on_demand("delivery", "flows.delivery"),
        on_demand("ingestion", "flows.ingestion"),
    )
