"""One sms-scheduler pass over 10,000 due leads on the embedded adapters, no added latency.

Prints JSON {"leads", "wall_seconds", "ms_per_lead", "task_runs", "peak_rss_mb"}.
Target: at most 5 ms per lead and 400 MB peak.

The flow's hard cap of 100 texts a run is a parameter-model bound; this benchmark turns
parameter validation off to push all 10,000 leads through one pass, which is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from flows.sms_scheduler import sms_scheduler
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tasks.runtime import using
from uysp.models import Lead, ProcessingStatus, Template
from uysp.ports import Services

START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)  # Tuesday 11:00 in New York


def seeded_services(path: Path, leads: int) -> Services:
    db = SqliteDatabase(path)
    clock = SimulatedClock(START)
    store = SqliteStore(db)
    store.update_settings(active_campaign="bench", sms_sending="On", ab_ratio_a=50)
    store.save_templates(
        Template(campaign="bench", variant=v, step=s, body=f"Hi {{Name}}, {v}{s} {{Link}}")
        for v in "AB"
        for s in (1, 2, 3)
    )
    store.add_leads(
        Lead(
            id="",
            phone=f"+1{212 + n // 10_000}555{n % 10_000:04d}",
            first_name=f"Lead{n}",
            phone_valid=True,
            location_country="US",
            processing_status=ProcessingStatus.READY,
        )
        for n in range(leads)
    )
    return Services(
        store=store,
        gateway=SandboxGateway(db, clock, starting_credits=10 * leads),
        shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )


async def count_task_runs(flow_run_id) -> int:
    async with get_client() as client:
        response = await client.request(
            "POST",
            "/task_runs/count",
            json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}},
        )
    return response.json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10_000)
    args = parser.parse_args()
    quiet = {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_LOGGING_LEVEL: "WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with tempfile.TemporaryDirectory() as tmp, temporary_settings(quiet), prefect_test_harness():
        svc = seeded_services(Path(tmp) / "bench.db", args.leads)
        unbounded = sms_scheduler.with_options(validate_parameters=False)
        started = time.perf_counter()
        with using(svc):
            state = unbounded(batch_size=args.leads, daily_cap=args.leads, return_state=True)
        wall = time.perf_counter() - started
        summary = state.result()
        assert summary["sent"] == args.leads, summary
        time.sleep(2)  # let the server record the last task runs
        task_runs = asyncio.run(count_task_runs(state.state_details.flow_run_id))
    print(
        json.dumps(
            {
                "leads": args.leads,
                "wall_seconds": round(wall, 2),
                "ms_per_lead": round(1000 * wall / args.leads, 3),
                "task_runs": task_runs,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
