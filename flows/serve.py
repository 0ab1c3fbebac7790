"""`uysp serve`: every flow on its schedule through Prefect's serve, and the webhook receiver, in
one process. Production on one machine: a Prefect server (for the UI, schedules and limits) but
no work pool and no worker; each flow run is a subprocess of this one.

The deployments come from uysp/deployments.py, the table prefect.yaml mirrors, with the current
phase's scheduler schedule active (the phase variable, so a restart keeps the advisor's switch).
On shutdown Prefect pauses the served deployments; the next start resumes them.
"""

from __future__ import annotations

import importlib
import threading

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from integrations.prefect_setup import ensure_prefect_setup, read_phase
from uysp.deployments import TIMEZONE, DeploymentSpec, deployment_specs

ONE_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


def runner_deployment(spec: DeploymentSpec) -> RunnerDeployment:
    flow = getattr(importlib.import_module(spec.module), spec.function)
    return flow.to_deployment(
        spec.name,
        schedules=[Cron(spec.cron, timezone=TIMEZONE, active=spec.active)] if spec.cron else [],
        parameters=dict(spec.parameters),
        concurrency_limit=ONE_AT_A_TIME if spec.singleton else None,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def build_deployments(current_phase: str) -> list[RunnerDeployment]:
    return [runner_deployment(spec) for spec in deployment_specs(current_phase)]


class Receiver:
    """The webhook app under uvicorn in a thread beside the runner."""

    def __init__(self, host: str, port: int) -> None:
        import uvicorn

        from webhooks.app import create_app

        self.server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port))
        self.thread = threading.Thread(target=self.server.run, name="webhooks", daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run(host: str = "127.0.0.1", port: int = 8787, *, webhooks: bool = True) -> None:
    """Set up the Prefect side on the server PREFECT_API_URL names, then serve until
    interrupted."""
    for line in ensure_prefect_setup():
        print(line)
    phase, _ = read_phase()
    deployments = build_deployments(phase.name)
    if not webhooks:
        serve(*deployments)
        return
    with Receiver(host, port):
        serve(*deployments)
