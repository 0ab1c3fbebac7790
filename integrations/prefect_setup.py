"""What `uysp setup prefect` creates on a Prefect server, idempotently, and the phase switch.

- Global concurrency limits that pace every worker together (see pacing.Pacer): each provider's
  is a rate limit, one slot decaying at the provider's rate, so at most `rate` requests per
  second go out across all processes and never a burst above it; Airtable's takes the shape the
  Airtable store fetches its slots in (AirtableTuning.cluster_limit); and the send lock.
- Variables: the current rollout phase and a second kill switch, created when missing and never
  overwritten (the phase's last update is when it began).
- An automation: when scheduler runs of one phase deployment fail `failures` times within
  `within`, pause that deployment and notify. A self-hosted server has no Slack integration, so
  the notification is a Custom Webhook block that posts to Slack's chat.postMessage with our bot
  token (UYSP_NOTIFY=slack); without Slack the automation only pauses.
- The phase schedules: only the current phase's scheduler deployment has an active schedule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from uuid import UUID

from prefect import get_client
from prefect.automations import (
    AutomationCore,
    EventTrigger,
    PauseDeployment,
    Posture,
    SendNotification,
)
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from integrations.airtable import CLUSTER_LIMIT as AIRTABLE_LIMIT
from integrations.airtable import TUNING_SETTINGS, AirtableTuning
from integrations.airtable_setup import ensure_airtable_rate_limit
from uysp.deployments import SCHEDULER_FLOW
from uysp.ports import SEND_LOCK
from uysp.rollout import PHASE_VARIABLE, PHASES, SENDING_VARIABLE, Phase, phase_named
from uysp.settings import Settings, get_settings

FAILURE_AUTOMATION = "uysp-pause-failing-scheduler"
ALERTS_BLOCK = "uysp-alerts"
FAILED_RUN_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}


def provider_rates(settings: Settings) -> dict[str, float]:
    """Requests per second for each provider: the numbers the adapters are built with."""
    return {
        "simpletexting": settings.simpletexting_rate_per_second,
        "switchy": settings.switchy_links_per_hour / 3600,
        "slack": settings.slack_rate_per_second,
    }


def airtable_tuning(settings: Settings) -> AirtableTuning:
    return AirtableTuning(
        **{field: getattr(settings, name) for field, name in TUNING_SETTINGS.items()}
    )


@contextmanager
def _client(client: SyncPrefectClient | None) -> Iterator[SyncPrefectClient]:
    if client is not None:
        yield client
        return
    with get_client(sync_client=True) as opened:
        yield opened


def ensure_prefect_limits(
    client: SyncPrefectClient | None = None, *, rates: Mapping[str, float] | None = None
) -> list[str]:
    """Create the providers' rate limits and the scheduler's send lock, or bring existing ones
    to the configured values; running it again changes nothing. Returns the limits' names."""
    rates = provider_rates(get_settings()) if rates is None else rates
    with _client(client) as prefect:
        for name, rate in rates.items():
            prefect.upsert_global_concurrency_limit_by_name(
                name, limit=1, slot_decay_per_second=rate
            )
        prefect.upsert_global_concurrency_limit_by_name(SEND_LOCK, limit=1)
    return [*rates, SEND_LOCK]


def ensure_variables(client: SyncPrefectClient | None = None) -> dict[str, str]:
    """The phase and kill-switch variables, created when missing; returns their values."""
    defaults = {PHASE_VARIABLE: PHASES[0].name, SENDING_VARIABLE: "On"}
    values = {}
    with _client(client) as prefect:
        for name, default in defaults.items():
            variable = prefect.read_variable_by_name(name)
            if variable is None:
                variable = prefect.create_variable(VariableCreate(name=name, value=default))
            values[name] = str(variable.value)
    return values


def read_phase(client: SyncPrefectClient | None = None) -> tuple[Phase, datetime | None]:
    """The current phase and when it began; phase 1, since always, before setup ran."""
    with _client(client) as prefect:
        variable = prefect.read_variable_by_name(PHASE_VARIABLE)
    if variable is None:
        return PHASES[0], None
    return phase_named(str(variable.value)), variable.updated


def _phase_deployment(prefect: SyncPrefectClient, phase: Phase) -> DeploymentResponse:
    name = f"{SCHEDULER_FLOW}/{phase.name}"
    try:
        return prefect.read_deployment_by_name(name)
    except ObjectNotFound:
        raise LookupError(
            f"no deployment {name}: run `prefect deploy --all` or `uysp serve`"
        ) from None


def activate_phase(phase: Phase, client: SyncPrefectClient | None = None) -> list[str]:
    """Make `phase`'s scheduler schedule the only active one and record it as the current
    phase. The others are switched off first, so two phases never run together. Raises
    LookupError if a phase's deployment does not exist. Returns the deployments changed."""
    changed = []
    with _client(client) as prefect:
        deployments = {p: _phase_deployment(prefect, p) for p in PHASES}
        for each in [*(p for p in PHASES if p is not phase), phase]:
            deployment, active = deployments[each], each is phase
            stale = [s for s in deployment.schedules if s.active != active]
            for schedule in stale:
                prefect.update_deployment_schedule(deployment.id, schedule.id, active=active)
            if stale:
                changed.append(f"{SCHEDULER_FLOW}/{each.name}")
        variable = prefect.read_variable_by_name(PHASE_VARIABLE)
        if variable is None:
            prefect.create_variable(VariableCreate(name=PHASE_VARIABLE, value=phase.name))
        elif variable.value != phase.name:
            prefect.update_variable(VariableUpdate(name=PHASE_VARIABLE, value=phase.name))
    return changed


def alerts_block(settings: Settings) -> UUID | None:
    """A notification block posting to the alerts channel, when Slack is configured."""
    if settings.notify != "slack" or settings.slack_token is None:
        return None
    block = CustomWebhookNotificationBlock(
        name=ALERTS_BLOCK,
        url=f"{settings.slack_api_url.rstrip('/')}/chat.postMessage",
        headers={"Authorization": "Bearer {{token}}"},
        json_data={"channel": settings.slack_channel_alerts, "text": "*{{subject}}*\n{{body}}"},
        secrets={"token": settings.slack_token.get_secret_value()},
    )
    return block.save(ALERTS_BLOCK, overwrite=True)


def failure_automation(block_id: UUID | None, failures: int, within: timedelta) -> AutomationCore:
    minutes = round(within.total_seconds() / 60)
    actions: list = [PauseDeployment(source="inferred")]
    if block_id is not None:
        actions.append(
            SendNotification(
                block_document_id=block_id,
                subject=f"UYSP: {SCHEDULER_FLOW}/{{{{ deployment.name }}}} paused",
                body=(
                    f"{failures} failed run(s) within {minutes} minutes, so Prefect paused the"
                    " deployment. Last: {{ flow_run.name }}: {{ flow_run.state.message }}."
                    " Find the cause, then resume the deployment in the Prefect UI."
                ),
            )
        )
    return AutomationCore(
        name=FAILURE_AUTOMATION,
        description=f"Pause a phase's scheduler deployment after {failures} failed runs"
        f" within {minutes} minutes, and notify",
        trigger=EventTrigger(
            expect=FAILED_RUN_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "flow", "prefect.resource.name": SCHEDULER_FLOW},
                {
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": [phase.name for phase in PHASES],
                },
            ],
            for_each={"related:deployment:prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=failures,
            within=within,
        ),
        actions=actions,
    )


def ensure_automation(automation: AutomationCore, client: SyncPrefectClient | None = None) -> UUID:
    """Replace any automation of this name with this one. (Not client.update_automation: it
    sends only the fields set explicitly, which drops each action's `type`, and the server then
    reads a PauseDeployment as a RunDeployment.)"""
    with _client(client) as prefect:
        for existing in prefect.read_automations_by_name(automation.name):
            prefect.delete_automation(existing.id)
        return prefect.create_automation(automation)


def ensure_prefect_setup(
    settings: Settings | None = None,
    *,
    failures: int = 2,
    within: timedelta = timedelta(hours=6),
) -> list[str]:
    """Everything above, in order; returns a line for each thing set up, for the CLI."""
    settings = settings or get_settings()
    with get_client(sync_client=True) as prefect:
        limits = ensure_prefect_limits(prefect, rates=provider_rates(settings))
        ensure_airtable_rate_limit(prefect, airtable_tuning(settings))
        lines = [f"limit {name}: ok" for name in [*limits, AIRTABLE_LIMIT]]
        lines += [f"variable {k}: {v}" for k, v in ensure_variables(prefect).items()]
        block_id = alerts_block(settings)
        ensure_automation(failure_automation(block_id, failures, within), prefect)
        notify = f"notifies via block {ALERTS_BLOCK}" if block_id else "no notification (no Slack)"
        lines.append(f"automation {FAILURE_AUTOMATION}: ok, {notify}")
        phase, _ = read_phase(prefect)
        try:
            changed = activate_phase(phase, prefect)
        except LookupError:
            lines.append("phase schedules: scheduler deployments not deployed yet")
        else:
            lines.append(f"phase schedules: {phase.name} active ({len(changed)} changed)")
    return lines
