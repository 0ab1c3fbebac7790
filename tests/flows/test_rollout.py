"""The rollout on the Prefect test server: `uysp setup prefect`, the deployments `uysp serve`
builds, and the rollout advisor reading a real store's ledger and switching phase schedules."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import typer
from prefect import get_client
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.exceptions import ObjectNotFound, ParameterTypeError
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.variables import Variable
from typer.testing import CliRunner

from flows.rollout import rollout_advisor
from flows.serve import Receiver, build_deployments
from flows.sms_scheduler import HARD_BATCH_CAP, HARD_DAILY_CAP, sms_scheduler
from integrations.airtable import AirtableTuning
from integrations.prefect_setup import (
    ALERTS_BLOCK,
    FAILURE_AUTOMATION,
    activate_phase,
    ensure_prefect_setup,
    read_phase,
)
from tasks.rollout import sending_paused_in_prefect
from tests.builders import make_lead
from tests.fakes.slack import SlackFake
from uysp.cli_deploy import serve
from uysp.deployments import SCHEDULER_FLOW, TIMEZONE, deployment_specs
from uysp.models import ErrorClass, LedgerEntry, LedgerStatus, StopReason, send_key
from uysp.ports import Services
from uysp.rollout import PHASE_VARIABLE, PHASES, SENDING_VARIABLE
from uysp.settings import Settings, get_settings

P1, P2, P3 = PHASES


def test_serve_builds_every_deployment_of_the_table_with_the_current_phase_active():
    specs = deployment_specs(P2.name)
    served = build_deployments(P2.name)

    assert [(d.flow_name, d.name) for d in served] == [(s.flow, s.name) for s in specs]
    for deployment, spec in zip(served, specs, strict=True):
        assert deployment.entrypoint == f"{spec.module}.{spec.function}"
        assert deployment.parameters == dict(spec.parameters)
        schedules = [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules]
        assert schedules == ([(spec.cron, TIMEZONE, spec.active)] if spec.cron else [])
        if spec.singleton:
            assert deployment.concurrency_limit == 1
            assert (
                deployment.concurrency_options.collision_strategy
                == ConcurrencyLimitStrategy.CANCEL_NEW
            )
        else:
            assert deployment.concurrency_limit is None
    active = {d.name for d in served if d.flow_name == SCHEDULER_FLOW and d.schedules[0].active}
    assert active == {P2.name}


def test_the_receiver_serves_beside_the_runner_and_stops_with_it(config):
    port = free_port()
    with Receiver("127.0.0.1", port) as receiver:
        health = wait_for_health(f"http://127.0.0.1:{port}/healthz")
    assert health["status"] == "ok"
    assert not receiver.thread.is_alive()


def test_serve_refuses_to_start_without_a_prefect_server():
    app = typer.Typer()
    app.command()(serve)
    with temporary_settings({PREFECT_API_URL: None}):
        result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    assert "uysp serve needs a Prefect server" in result.output


@pytest.mark.parametrize(
    "parameters",
    [
        {"batch_size": HARD_BATCH_CAP + 1},
        {"daily_cap": HARD_DAILY_CAP + 1},
        {"batch_size": 0},
    ],
)
def test_no_parameter_passes_the_hard_caps(parameters):
    with pytest.raises(ParameterTypeError):
        sms_scheduler.validate_parameters(parameters)
    for phase in PHASES:
        sms_scheduler.validate_parameters(
            {"batch_size": phase.batch_size, "daily_cap": phase.daily_cap}
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, timeout=2).raise_for_status().json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def apply_phase_deployments() -> None:
    """The scheduler's three deployments as a fresh `uysp serve` or deploy makes them."""
    for deployment in build_deployments(P1.name):
        if deployment.flow_name == SCHEDULER_FLOW:
            deployment.apply()


def active_phases() -> set[str]:
    with get_client(sync_client=True) as client:
        return {
            phase.name
            for phase in PHASES
            if any(
                s.active
                for s in client.read_deployment_by_name(f"{SCHEDULER_FLOW}/{phase.name}").schedules
            )
        }


def forget_variable(client, name: str) -> None:
    with suppress(ObjectNotFound):
        client.delete_variable_by_name(name)


def forget_rollout() -> None:
    """No phase deployments, variables or automation: a server `uysp setup` has not seen."""
    with get_client(sync_client=True) as client:
        for phase in PHASES:
            try:
                deployment = client.read_deployment_by_name(f"{SCHEDULER_FLOW}/{phase.name}")
            except ObjectNotFound:
                continue
            client.delete_deployment(deployment.id)
        for name in (PHASE_VARIABLE, SENDING_VARIABLE):
            forget_variable(client, name)
        for automation in client.read_automations_by_name(FAILURE_AUTOMATION):
            client.delete_automation(automation.id)


def test_setup_creates_what_is_missing_keeps_the_phase_and_changes_nothing_the_second_time():
    forget_rollout()
    settings = Settings()

    first = ensure_prefect_setup(settings)

    assert f"variable {PHASE_VARIABLE}: {P1.name}" in first
    assert f"variable {SENDING_VARIABLE}: On" in first
    assert "phase schedules: scheduler deployments not deployed yet" in first
    assert "limit sms-send-lock: ok" in first
    with get_client(sync_client=True) as client:
        airtable = client.read_global_concurrency_limit_by_name("airtable")
    wanted = AirtableTuning(requests_per_second=settings.airtable_requests_per_second)
    assert {"limit": airtable.limit, "slot_decay_per_second": airtable.slot_decay_per_second} == (
        wanted.cluster_limit()
    )  # the shape the Airtable store fetches its slots in, not a one-slot limit

    apply_phase_deployments()
    activate_phase(P2)  # the advisor's switch; then a redeploy resets the schedules
    apply_phase_deployments()
    assert active_phases() == {P1.name}

    second = ensure_prefect_setup(settings)
    third = ensure_prefect_setup(settings)

    assert f"variable {PHASE_VARIABLE}: {P2.name}" in second
    assert f"phase schedules: {P2.name} active (2 changed)" in second
    assert f"phase schedules: {P2.name} active (0 changed)" in third
    assert active_phases() == {P2.name}
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(FAILURE_AUTOMATION)) == 1


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def test_the_automation_pauses_the_failing_phase_deployment_and_posts_to_the_alerts_channel(
    config, slack
):
    config(notify="slack", slack_token=slack.token, slack_api_url=slack.api_url)
    ensure_prefect_setup(get_settings(), failures=3, within=timedelta(minutes=90))
    ensure_prefect_setup(get_settings(), failures=3, within=timedelta(minutes=90))

    with get_client(sync_client=True) as client:
        [automation] = client.read_automations_by_name(FAILURE_AUTOMATION)
    trigger = automation.trigger
    assert trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert (trigger.threshold, trigger.within) == (3, timedelta(minutes=90))
    assert trigger.for_each == {"related:deployment:prefect.resource.id"}
    assert [spec.root for spec in trigger.match_related] == [
        {"prefect.resource.role": "flow", "prefect.resource.name": SCHEDULER_FLOW},
        {"prefect.resource.role": "deployment", "prefect.resource.name": [p.name for p in PHASES]},
    ]
    pause, notify = automation.actions
    assert (pause.type, pause.source) == ("pause-deployment", "inferred")
    assert notify.type == "send-notification"
    assert "{{ deployment.name }}" in notify.subject

    block = CustomWebhookNotificationBlock.load(ALERTS_BLOCK)
    assert block._block_document_id == notify.block_document_id
    block.notify("3 runs failed", subject="UYSP: sms-scheduler/phase-2-scale-up paused")
    [post] = slack.posts
    assert post["channel"] == "C0ALERTS"
    assert post["text"] == "*UYSP: sms-scheduler/phase-2-scale-up paused*\n3 runs failed"


def test_without_slack_the_automation_only_pauses(config):
    config(notify="console")
    lines = ensure_prefect_setup(get_settings())

    assert f"automation {FAILURE_AUTOMATION}: ok, no notification (no Slack)" in lines
    with get_client(sync_client=True) as client:
        [automation] = client.read_automations_by_name(FAILURE_AUTOMATION)
    assert [action.type for action in automation.actions] == ["pause-deployment"]


@pytest.fixture
def sending_variable() -> Iterator[None]:
    """Other flow tests send: whatever happens here, the switch is left On."""
    with get_client(sync_client=True) as client:
        forget_variable(client, SENDING_VARIABLE)
    yield
    Variable.set(SENDING_VARIABLE, "On", overwrite=True)


def test_the_prefect_kill_switch_is_paused_by_anything_but_on(sending_variable):
    assert not sending_paused_in_prefect()
    for value, paused in [("Paused", True), ("off", True), (" on ", False), ("On", False)]:
        Variable.set(SENDING_VARIABLE, value, overwrite=True)
        assert sending_paused_in_prefect() is paused


# The advisor


@pytest.fixture
def phase_started(installed: Services) -> Iterator[datetime]:
    """The phase deployments exist, phase 1 has just begun, and the clock reads real time
    (the phase's start is the server's timestamp on the variable)."""
    apply_phase_deployments()
    with get_client(sync_client=True) as client:
        forget_variable(client, PHASE_VARIABLE)
        activate_phase(P1, client)
    _, began = read_phase()
    installed.clock.set(datetime.now(UTC) + timedelta(minutes=5))
    yield began


def seed_sends(svc: Services, at: datetime, outcomes: dict[str, int]) -> None:
    """Ledger rows reserved at `at`, one lead each: `outcomes` counts rows by kind."""
    kinds = [kind for kind, count in outcomes.items() for _ in range(count)]
    leads = svc.store.add_leads(make_lead(n) for n in range(len(kinds)))
    reserved, final, updates = [], [], {}
    for lead, kind in zip(leads, kinds, strict=True):
        row = LedgerEntry(
            send_key=send_key(lead.id, "c1", 1),
            status=LedgerStatus.RESERVED,
            lead_id=lead.id,
            phone=lead.phone,
            campaign_id="c1",
            step=1,
            reserved_at=at,
        )
        reserved.append(row)
        final.append(row.model_copy(update=OUTCOMES[kind]))
        if kind == "opted_out":
            updates[lead.id] = {"sms_stop": True, "stop_reason": StopReason.STOP}
    svc.store.reserve_sends(reserved)
    svc.store.record_sends(final, updates)


OUTCOMES = {
    "delivered": {"status": LedgerStatus.DELIVERED},
    "opted_out": {"status": LedgerStatus.DELIVERED},
    "failed": {
        "status": LedgerStatus.FAILED,
        "error_class": ErrorClass.TRANSIENT,
        "error": "HTTP_503: 503 SERVICE_UNAVAILABLE: Service temporarily unavailable",
    },
}


def advisor_report(state) -> str:
    run_id = str(state.state_details.flow_run_id)
    body = {
        "artifacts": {"key": {"any_": ["rollout-advisor"]}, "flow_run_id": {"any_": [run_id]}},
        "limit": 10,
        "offset": 0,
    }
    with get_client(sync_client=True) as client:
        [artifact] = client.request("POST", "/artifacts/filter", json=body).json()
    return artifact["data"]


def test_the_advisor_advances_a_phase_whose_gates_pass_and_applies_it(installed, phase_started):
    seed_sends(installed, phase_started + timedelta(milliseconds=1), {"delivered": 99, "failed": 1})

    state = rollout_advisor(apply=True, return_state=True)
    result = state.result()

    assert (result["action"], result["target"], result["applied"]) == ("advance", P2.name, True)
    assert result["metrics"]["attempted"] == 100
    assert active_phases() == {P2.name}
    assert read_phase()[0] is P2
    report = advisor_report(state)
    assert "| execution success | > 98.0% | 99.0% | pass |" in report
    assert "Applied: phase-2-scale-up's schedule is now the active one." in report

    again = rollout_advisor(apply=True)  # phase 2 has only just begun: no sends of its own yet

    assert (again["phase"], again["action"], again["metrics"]["attempted"]) == (P2.name, "hold", 0)
    assert active_phases() == {P2.name}


def test_without_apply_the_advisor_only_recommends(installed, phase_started):
    seed_sends(installed, phase_started + timedelta(milliseconds=1), {"delivered": 60})

    result = rollout_advisor()

    assert (result["action"], result["target"], result["applied"]) == ("advance", P2.name, False)
    assert active_phases() == {P1.name}
    assert read_phase()[0] is P1


def test_the_advisor_holds_a_phase_that_misses_a_gate(installed, phase_started):
    activate_phase(P2)
    _, began = read_phase()
    seed_sends(installed, began + timedelta(milliseconds=1), {"delivered": 96, "opted_out": 4})

    result = rollout_advisor(apply=True)

    assert (result["phase"], result["action"], result["applied"]) == (P2.name, "hold", False)
    assert "opt-outs 4.0% (needs < 2.0%)" in result["reason"]
    assert active_phases() == {P2.name}


def test_the_advisor_rolls_back_one_phase_when_errors_pass_5_percent(installed, phase_started):
    activate_phase(P3)
    _, began = read_phase()
    seed_sends(installed, began + timedelta(milliseconds=1), {"delivered": 90, "failed": 10})

    result = rollout_advisor(apply=True)

    assert (result["action"], result["target"]) == ("roll_back", P2.name)
    assert active_phases() == {P2.name}
    assert read_phase()[0] is P2
