"""prefect.yaml agrees with uysp/deployments.py and the rollout plan's PHASES, and the plan's
numbers are the ones the issue set: phase 1 batch 10-20 and 2-3 runs a day, phase 2 25-50 and
4-6, phase 3 50-100 and 8-10."""

from pathlib import Path

import pytest
import yaml

from uysp.deployments import TIMEZONE, deployment_specs
from uysp.rollout import PHASES

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"
ONE_AT_A_TIME = {"limit": 1, "collision_strategy": "CANCEL_NEW"}


@pytest.fixture(scope="module")
def deployments() -> dict[str, dict]:
    config = yaml.safe_load(PREFECT_YAML.read_text())
    return {deployment["name"]: deployment for deployment in config["deployments"]}


def test_every_deployment_in_the_table_is_in_prefect_yaml_and_nothing_else(deployments):
    assert set(deployments) == {spec.name for spec in deployment_specs()}


@pytest.mark.parametrize("spec", deployment_specs(), ids=lambda spec: spec.name)
def test_prefect_yaml_deploys_each_as_the_table_says(deployments, spec):
    deployment = deployments[spec.name]
    assert deployment["entrypoint"] == spec.entrypoint
    assert deployment["work_pool"] == {"name": "uysp"}
    assert deployment.get("parameters", {}) == dict(spec.parameters)
    assert deployment.get("concurrency_limit") == (ONE_AT_A_TIME if spec.singleton else None)
    schedules = [
        (s["cron"], s["timezone"], s.get("active", True)) for s in deployment.get("schedules", [])
    ]
    assert schedules == ([(spec.cron, TIMEZONE, spec.active)] if spec.cron else [])


def test_only_phase_1_is_active_by_default(deployments):
    active = {p.name: deployments[p.name]["schedules"][0].get("active", True) for p in PHASES}
    assert active == {PHASES[0].name: True, PHASES[1].name: False, PHASES[2].name: False}


def test_the_phase_deployments_carry_the_phases_numbers(deployments):
    for phase in PHASES:
        parameters = deployments[phase.name]["parameters"]
        assert parameters == {"batch_size": phase.batch_size, "daily_cap": phase.daily_cap}
        hours = deployments[phase.name]["schedules"][0]["cron"].split()[1]
        assert tuple(int(h) for h in hours.split(",")) == phase.run_hours


@pytest.mark.parametrize(
    ("index", "batch", "runs"),
    [
        (0, range(10, 21), range(2, 4)),
        (1, range(25, 51), range(4, 7)),
        (2, range(50, 101), range(8, 11)),
    ],
)
def test_the_phases_follow_the_rollout_plan(index, batch, runs):
    phase = PHASES[index]
    assert phase.batch_size in batch
    assert phase.runs_per_day in runs
    assert phase.daily_cap <= phase.batch_size * phase.runs_per_day


def test_a_served_schedule_follows_the_current_phase():
    active = {
        s.name: s.active for s in deployment_specs("phase-2-scale-up") if s.flow == "sms-scheduler"
    }
    assert active == {PHASES[0].name: False, PHASES[1].name: True, PHASES[2].name: False}
