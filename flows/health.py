"""health: the morning checklist, run on a schedule. It alerts only when something is wrong,
and leaves the whole checklist as a markdown artifact every run."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.health import Check, HealthOptions, run_checks
from tasks.runtime import services
from uysp.ports import Notice


def checklist_markdown(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "OK" if check.ok else "**PROBLEM**"
        lines.append(f"- {mark} **{check.name}**: {check.summary}")
        lines += [f"    - {detail}" for detail in check.details]
    return "\n".join(lines)


@flow(name="health", log_prints=False)
def health(
    flows: list[str] | None = None,
    webhook_url: str | None = None,
    stuck_hours: float = 48,
    reserved_minutes: float = 15,
    late_minutes: float = 15,
) -> dict[str, Any]:
    """Check flows, deployments, the ledger, stuck leads, templates, credits, the webhook
    receiver and lead statuses. `flows` limits the Prefect checks to these flow names;
    `webhook_url` defaults to UYSP_WEBHOOK_URL, else http://127.0.0.1:8787."""
    options = HealthOptions(
        flows=tuple(flows) if flows else None,
        webhook_url=webhook_url,
        stuck_hours=stuck_hours,
        reserved_minutes=reserved_minutes,
        late_minutes=late_minutes,
    )
    checks = run_checks(options)
    problems = [c for c in checks if not c.ok]
    create_markdown_artifact(
        key="health-checklist",
        markdown=checklist_markdown(checks),
        description="The morning checklist",
    )
    if problems:
        lines = []
        for check in problems:
            lines.append(f"{check.name}: {check.summary}")
            lines += [f"  {detail}" for detail in check.details[:5]]
        services().notifier.notify(
            "alerts", Notice(f"Health: {len(problems)} problem(s)", lines, level="error")
        )
    return {
        "ok": not problems,
        "problems": [c.name for c in problems],
        "checks": {c.name: c.summary for c in checks},
    }
