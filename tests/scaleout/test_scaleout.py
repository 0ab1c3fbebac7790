"""Scale-out, proven: `prefect server start` on loopback, the `uysp` pool with two process
workers, every deployment of prefect.yaml deployed with `prefect deploy --all`, and the scheduler
run twice at once over 300 leads on the fakes: first under the phase deployments' own limit
(one run, the other cancelled), then with no deployment limit, where only the send lock stands
between two overlapping runs. Nobody gets two texts, the SimpleTexting fake never sees more than
its rate limit, and a phase deployment whose run fails is paused by the automation `uysp setup
prefect` made, which tells the alerts channel in Slack."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import WorkerFilter
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from integrations.prefect_setup import ensure_prefect_setup
from integrations.sqlite_store import SqliteDatabase, SqliteStore
from tests.builders import make_lead, seed_campaign
from tests.scaleout.cluster import ADAPTER_RATE, PROVIDER_RATE, ROOT, Cluster
from uysp.deployments import deployment_specs
from uysp.models import LedgerStatus
from uysp.rollout import PHASES
from uysp.settings import Settings

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(600)]
LEADS = 300
BATCH = 50  # tests/scaleout/prefect.yaml's batch_size
TEST_DEPLOYMENTS = "tests/scaleout/prefect.yaml"
SKIPPED = "another scheduler run holds the send lock"


@contextmanager
def on_server(cluster: Cluster) -> Iterator[None]:
    with temporary_settings({PREFECT_API_URL: cluster.url}):
        yield


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout} s")


def start_two(deployment: str) -> list[UUID]:
    """Two runs of a deployment, scheduled for the same moment."""
    return [run_deployment(deployment, timeout=0, as_subflow=False).id for _ in range(2)]


def finished(run_ids: list[UUID], timeout: float = 150) -> list[FlowRun]:
    def final_runs() -> list[FlowRun] | None:
        with get_client(sync_client=True) as client:
            runs = [client.read_flow_run(run_id) for run_id in run_ids]
        return runs if all(run.state and run.state.is_final() for run in runs) else None

    return wait_for(f"flow runs {run_ids} to finish", final_runs, timeout)


def _filter(kind: str, run_id: UUID) -> list[dict]:
    body = {kind: {"flow_run_id": {"any_": [str(run_id)]}}, "limit": 200, "offset": 0}
    with get_client(sync_client=True) as client:
        return client.request("POST", f"/{kind}/filter", json=body).json()


def texts_sent(run_id: UUID) -> int:
    """What the run says it sent: its summary artifact, or 0 when it stood aside for the lock."""
    summaries = [a for a in _filter("artifacts", run_id) if a["key"] == "sms-scheduler-summary"]
    if not summaries:
        assert any(SKIPPED in log["message"] for log in _filter("logs", run_id)), run_id
        return 0
    return int(re.search(r"(\d+) sent", summaries[0]["data"])[1])


def check_deployments_from_prefect_yaml() -> None:
    with get_client(sync_client=True) as client:
        for spec in deployment_specs():
            deployment = client.read_deployment_by_name(spec.full_name)
            assert deployment.entrypoint == spec.entrypoint
            assert deployment.work_pool_name == "uysp"
            assert deployment.parameters == dict(spec.parameters)
            assert deployment.enforce_parameter_schema  # the hard caps hold at run creation
            assert deployment.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
            ]
            schedules = [(s.schedule.cron, s.active) for s in deployment.schedules]
            assert schedules == ([(spec.cron, spec.active)] if spec.cron else [])
            if spec.singleton:
                assert deployment.global_concurrency_limit.limit == 1
                assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"
            else:
                assert deployment.global_concurrency_limit is None


def deploy(cluster: Cluster) -> None:
    """The pool, two workers, and both deployment files (the real one and the test's)."""
    cluster.cli("work-pool", "create", "uysp", "--type", "process")
    for name in ("worker-1", "worker-2"):
        cluster.start_worker(name, "uysp")
    with ThreadPoolExecutor(2) as pool:
        deploys = [("deploy", "--all"), ("deploy", "--all", "--prefect-file", TEST_DEPLOYMENTS)]
        list(pool.map(lambda args: cluster.cli(*args), deploys))


def test_two_workers_two_runs_nobody_texted_twice_within_the_rate_limit(
    cluster, simpletexting, slack, db_path
):
    store = SqliteStore(SqliteDatabase(db_path))
    seed_campaign(store)
    store.add_leads(make_lead(n) for n in range(LEADS))
    settings = Settings(
        sms="simpletexting",
        simpletexting_rate_per_second=ADAPTER_RATE,
        notify="slack",
        slack_token=slack.token,
        slack_api_url=slack.api_url,
    )
    deploy(cluster)

    with on_server(cluster), get_client(sync_client=True) as client:
        ensure_prefect_setup(settings, failures=1, within=timedelta(minutes=10))
        check_deployments_from_prefect_yaml()
        online = WorkerFilter(status={"any_": ["ONLINE"]})
        wait_for(
            "two workers online",
            lambda: len(client.read_workers_for_work_pool("uysp", worker_filter=online)) == 2,
        )

        # The phase deployments' protection: one run at a time, a newcomer is cancelled.
        guarded = start_two("sms-scheduler/scaleout-one-at-a-time")
        wait_for(
            "the second run cancelled",
            lambda: any(client.read_flow_run(run).state.is_cancelled() for run in guarded),
        )
        # Meanwhile, on the worker that freed up: a run of a real phase deployment fails.
        phase = PHASES[1]
        broken = run_deployment(
            f"sms-scheduler/{phase.name}",
            timeout=0,
            as_subflow=False,
            job_variables={"env": {"UYSP_SMS": "carrier-pigeon"}},
        )
        runs = finished(guarded)
        assert sorted(run.state.type.value for run in runs) == ["CANCELLED", "COMPLETED"]
        [completed] = [run for run in runs if run.state.is_completed()]
        first_pass = texts_sent(completed.id)
        assert first_pass == BATCH

        # No deployment limit: both run, and the send lock decides.
        runs = finished(start_two("sms-scheduler/scaleout-overlap"))
        assert [run.state.type.value for run in runs] == ["COMPLETED", "COMPLETED"]
        second_pass = [texts_sent(run.id) for run in runs]
        assert sorted(second_pass) in ([0, BATCH], [BATCH, BATCH])

        per_phone = Counter(message["contactPhone"] for message in simpletexting.messages)
        assert max(per_phone.values()) == 1
        assert sum(per_phone.values()) == first_pass + sum(second_pass)
        assert len(store.ledger_rows(statuses=[LedgerStatus.SENT])) == sum(per_phone.values())
        assert store.ledger_rows(statuses=[LedgerStatus.RESERVED]) == []
        assert simpletexting.count_status(429) == 0
        assert simpletexting.max_requests_per_second() <= PROVIDER_RATE

        # The failed phase run paused its deployment, and Slack heard of it.
        [failed] = finished([broken.id])
        assert failed.state.is_failed()
        wait_for(
            f"{phase.name} paused",
            lambda: client.read_deployment_by_name(f"sms-scheduler/{phase.name}").paused,
            timeout=60,
        )
        [post] = wait_for("the alert in Slack", lambda: slack.posts, timeout=60)
        assert post["channel"] == "C0ALERTS"
        assert f"sms-scheduler/{phase.name} paused" in post["text"]
