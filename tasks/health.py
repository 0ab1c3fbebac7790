"""The morning checklist as code. Each check says what it looked at and whether something is
wrong; `run_checks` runs them all, as task runs in the health flow or as plain calls in
`uysp doctor` (which must work when Prefect itself is down).

Leads stuck in a status: the model keeps no status-changed time, so a Queued or Ready for SMS
lead counts from its Imported At (a lead staged long after its import counts from the import),
and an In Sequence lead from its SMS Last Sent At plus the delay of its next step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client

from integrations.pacing import prefect_server_configured
from tasks.runtime import services
from tasks.scheduling import credit_balance
from uysp.models import Lead, LedgerStatus, ProcessingStatus
from uysp.phones import mask
from uysp.sequence import MAX_STEPS, step_delay
from uysp.settings import get_settings
from uysp.templates import templates_by_variant

SHOWN = 20  # detail lines kept per check
NO_SERVER = "not checked: no Prefect server configured (PREFECT_API_URL)"
FAILED_STATES = ("FAILED", "CRASHED")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthOptions:
    flows: tuple[str, ...] | None = None  # None: every flow the Prefect server knows
    webhook_url: str | None = None  # None: UYSP_WEBHOOK_URL
    stuck_hours: float = 48
    reserved_minutes: float = 15
    late_minutes: float = 15

    @property
    def webhook_base(self) -> str:
        return (self.webhook_url or get_settings().webhook_url).rstrip("/")


def _filter(client: Any, what: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST /{what}/filter with only the criteria given: this client's read_* methods send null
    criteria that the server (3.8, with our FastAPI pin) refuses with 422."""
    response = client.request("POST", f"/{what}/filter", json={"limit": 200, "offset": 0} | body)
    return response.json()


def _known_flows(client: Any, flows: tuple[str, ...] | None) -> dict[str, str]:
    """Flow names by id: these flows, or every flow the server knows."""
    body = {"flows": {"name": {"any_": list(flows)}}} if flows else {}
    return {f["id"]: f["name"] for f in _filter(client, "flows", body)}


def _prefect_unreachable(name: str, exc: Exception) -> Check:
    return Check(name, False, f"Prefect API unreachable: {type(exc).__name__}: {exc}")


@task(name="check-flow-runs", cache_policy=NO_CACHE)
def check_flow_runs(flows: tuple[str, ...] | None) -> Check:
    """The last run of each flow and its state; a Failed or Crashed last run is wrong."""
    name = "flow runs"
    if not prefect_server_configured():
        return Check(name, True, NO_SERVER)
    lines, failed = [], []
    try:
        with get_client(sync_client=True) as client:
            known = _known_flows(client, flows)
            for flow_id, flow_name in sorted(known.items(), key=lambda item: item[1]):
                last = _filter(
                    client,
                    "flow_runs",
                    {
                        "flows": {"id": {"any_": [flow_id]}},
                        "flow_runs": {"start_time": {"is_null_": False}},
                        "sort": "START_TIME_DESC",
                        "limit": 1,
                    },
                )
                if not last:
                    lines.append(f"{flow_name}: never ran")
                    continue
                run = last[0]
                started = run["start_time"][:16].replace("T", " ")
                line = f"{flow_name}: {run['state']['name']} ({run['name']}, started {started} UTC)"
                lines.append(line)
                if run["state"]["type"] in FAILED_STATES:
                    failed.append(line)
    except httpx.HTTPError as exc:
        return _prefect_unreachable(name, exc)
    if failed:
        return Check(name, False, f"{len(failed)} flow(s) whose last run failed", tuple(failed))
    return Check(name, True, f"{len(lines)} flow(s), none failed last", tuple(lines))


@task(name="check-deployments", cache_policy=NO_CACHE)
def check_deployments(flows: tuple[str, ...] | None, late_minutes: float) -> Check:
    """Which deployments are active; runs of an active deployment still waiting to start
    `late_minutes` after their time mean no worker is picking them up."""
    name = "deployments"
    if not prefect_server_configured():
        return Check(name, True, NO_SERVER)
    # Prefect's times are real time, whatever clock the flows run on.
    late_before = datetime.now(UTC) - timedelta(minutes=late_minutes)
    try:
        with get_client(sync_client=True) as client:
            known = _known_flows(client, flows)
            deployments = [
                d
                for d in _filter(client, "deployments", {"flows": {"id": {"any_": list(known)}}})
                if d["flow_id"] in known
            ]
            active = [d["id"] for d in deployments if not d["paused"]]
            late = active and _filter(
                client,
                "flow_runs",
                {
                    "deployments": {"id": {"any_": active}},
                    "flow_runs": {
                        "state": {"type": {"any_": ["SCHEDULED", "PENDING"]}},
                        "expected_start_time": {"before_": late_before.isoformat()},
                    },
                },
            )
    except httpx.HTTPError as exc:
        return _prefect_unreachable(name, exc)
    if not deployments:
        return Check(name, True, "no deployments")
    label = {d["id"]: f"{known[d['flow_id']]}/{d['name']}" for d in deployments}
    lines = tuple(f"{label[d['id']]}: {'paused' if d['paused'] else 'active'}" for d in deployments)
    if late:
        waiting = Counter(label[run["deployment_id"]] for run in late)
        problems = tuple(
            f"{deployment}: {count} run(s) waiting more than {late_minutes:g} min to start"
            " (is a worker or `uysp serve` running?)"
            for deployment, count in sorted(waiting.items())
        )
        return Check(name, False, f"{len(late)} late run(s)", problems + lines)
    return Check(name, True, f"{len(active)} of {len(deployments)} active", lines)


@task(name="check-ledger", cache_policy=NO_CACHE)
def check_ledger(reserved_minutes: float) -> Check:
    """Rows Reserved for longer than a run takes (an interrupted send), and rows Unknown (a
    send whose outcome a person must settle)."""
    svc = services()
    cutoff = svc.clock.now() - timedelta(minutes=reserved_minutes)
    rows = svc.store.ledger_rows(statuses=[LedgerStatus.RESERVED, LedgerStatus.UNKNOWN])
    stuck = [
        r
        for r in rows
        if r.status == LedgerStatus.UNKNOWN or (r.reserved_at and r.reserved_at < cutoff)
    ]
    if not stuck:
        return Check("send ledger", True, "no rows stuck Reserved or Unknown")
    counts = Counter(LedgerStatus(r.status).value for r in stuck)
    lines = tuple(
        f"{r.send_key} to {mask(r.phone)}: {LedgerStatus(r.status).value}"
        f" since {r.reserved_at:%Y-%m-%d %H:%M} UTC{f' ({r.error})' if r.error else ''}"
        for r in stuck[:SHOWN]
    )
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return Check("send ledger", False, f"{summary}: review, never resent automatically", lines)


def _stuck_reason(
    lead: Lead, now: datetime, limit: timedelta, delays: Callable[[Lead], timedelta]
) -> str | None:
    status = lead.processing_status
    if status in (ProcessingStatus.QUEUED, ProcessingStatus.READY):
        if lead.imported_at and now - lead.imported_at > limit:
            return f"{status.value} since import {lead.imported_at:%Y-%m-%d %H:%M}"
    elif status == ProcessingStatus.IN_SEQUENCE:
        if lead.last_sent_at is None:
            return "In Sequence with no SMS Last Sent At"
        if now - lead.last_sent_at > delays(lead) + limit:
            return f"In Sequence, last text {lead.last_sent_at:%Y-%m-%d %H:%M}"
    return None


@task(name="check-leads", cache_policy=NO_CACHE)
def check_leads(stuck_hours: float) -> list[Check]:
    """Leads stuck in a status for more than `stuck_hours`, and the count in each status (a
    lead with none is never staged or texted)."""
    svc = services()
    now = svc.clock.now()
    settings = svc.store.get_settings()
    campaign = settings.active_campaign
    steps = templates_by_variant(svc.store.list_templates(campaign), campaign) if campaign else {}

    def next_delay(lead: Lead) -> timedelta:
        template = steps.get(lead.variant or "", {}).get(lead.sequence_position + 1)
        if template is None or lead.sequence_position >= MAX_STEPS:
            return timedelta(0)
        return step_delay(template, settings.fast_mode)

    leads = svc.store.all_leads()
    limit = timedelta(hours=stuck_hours)
    stuck = [
        (lead, reason) for lead in leads if (reason := _stuck_reason(lead, now, limit, next_delay))
    ]
    if stuck:
        by_status = Counter(lead.processing_status.value for lead, _ in stuck)
        stuck_check = Check(
            "stuck leads",
            False,
            f"{len(stuck)} lead(s) stuck more than {stuck_hours:g} h: "
            + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())),
            tuple(f"lead {lead.id}: {reason}" for lead, reason in stuck[:SHOWN]),
        )
    else:
        stuck_check = Check("stuck leads", True, f"none stuck more than {stuck_hours:g} h")

    counts = Counter(
        lead.processing_status.value if lead.processing_status else "(none)" for lead in leads
    )
    lines = tuple(f"{status}: {n}" for status, n in sorted(counts.items()))
    blank = counts.get("(none)", 0)
    statuses = Check(
        "processing status",
        not blank,
        f"{blank} lead(s) with no Processing Status: never staged or texted"
        if blank
        else f"{len(leads)} leads",
        lines,
    )
    return [stuck_check, statuses]


@task(name="check-templates", cache_policy=NO_CACHE)
def check_templates() -> Check:
    """Every step of every variant of the active campaign has an active template."""
    store = services().store
    campaign = store.get_settings().active_campaign
    if not campaign:
        return Check("templates", False, "no Active Campaign in Settings: nothing will be sent")
    table = templates_by_variant(store.list_templates(campaign), campaign)
    if not table:
        return Check("templates", False, f"campaign {campaign!r} has no active templates")
    missing = tuple(
        f"campaign {campaign!r} variant {variant}: no active template for step {step}"
        for variant, steps in sorted(table.items())
        for step in range(1, MAX_STEPS + 1)
        if step not in steps
    )
    if missing:
        return Check("templates", False, f"{len(missing)} step(s) without a template", missing)
    variants = ", ".join(sorted(table))
    return Check(
        "templates", True, f"campaign {campaign!r}: variants {variants}, steps 1-{MAX_STEPS}"
    )


@task(name="check-credits", cache_policy=NO_CACHE)
def check_credits() -> Check:
    svc = services()
    balance = credit_balance(svc, svc.store.get_settings())
    alert_below = get_settings().credit_alert_below
    if balance is None:
        return Check("credits", True, "balance not reported; set Credits Remaining in Settings")
    if balance < alert_below:
        return Check("credits", False, f"{balance:,.0f} credits left, under {alert_below:,.0f}")
    return Check("credits", True, f"{balance:,.0f} credits left")


@task(name="check-webhook-receiver", cache_policy=NO_CACHE)
def check_webhooks(base_url: str) -> Check:
    url = f"{base_url}/healthz"
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.HTTPError as exc:
        return Check("webhook receiver", False, f"{url} unreachable: {type(exc).__name__}")
    if response.status_code != 200:
        return Check("webhook receiver", False, f"{url} answered {response.status_code}")
    return Check("webhook receiver", True, f"{url} answered 200")


def run_checks(options: HealthOptions, *, as_tasks: bool = True) -> list[Check]:
    def step(fn):
        return fn if as_tasks else fn.fn

    return [
        step(check_flow_runs)(options.flows),
        step(check_deployments)(options.flows, options.late_minutes),
        step(check_ledger)(options.reserved_minutes),
        *step(check_leads)(options.stuck_hours),
        step(check_templates)(),
        step(check_credits)(),
        step(check_webhooks)(options.webhook_base),
    ]
