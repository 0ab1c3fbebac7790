"""1,000 step-1 sends through the Switchy, SimpleTexting and Airtable fakes at realistic latency.

Airtable answers after 150 ms at 5 requests/s, SimpleTexting after 300 ms at 10/s, Switchy after
200 ms at 20/s; each adapter paces itself just under its fake's limit. The real sms-scheduler flow
runs on a Prefect test server. bound_seconds is the least time the tightest limit allows for the
calls made; efficiency = bound_seconds / wall_seconds.

Prints JSON {"sends", "wall_seconds", "bound_seconds", "efficiency", "api_calls_per_send",
"http_429"}. Targets: efficiency at least 0.9, at most 2.5 external calls per send, no 429.

    .venv/bin/python benchmarks/send_pipeline.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from airtable_run import START, seed  # the same base and clock as the Airtable pass
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from flows.sms_scheduler import sms_scheduler
from integrations.airtable import AirtableStore
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.simpletexting import SimpleTextingGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock
from integrations.switchy import SwitchyShortener
from tasks.runtime import using
from tests.fakes.airtable import FakeAirtable
from tests.fakes.simpletexting import SimpleTextingFake
from tests.fakes.switchy import SwitchyFake
from uysp.ports import Services

LEADS = 1000
RATES = {"airtable": 5, "simpletexting": 10, "switchy": 20}
PACE = 0.95  # adapters run just under the fakes' limits: jitter at the limit is a 429


def main() -> None:
    os.environ.setdefault("UYSP_PARALLEL_CHUNKS", "4")
    with (
        FakeAirtable(latency=0.15, requests_per_second=RATES["airtable"]) as airtable,
        SimpleTextingFake(latency=0.3, rate_limit=RATES["simpletexting"]) as texting,
        SwitchyFake(latency=0.2, rate_limit=RATES["switchy"]) as switchy,
        tempfile.TemporaryDirectory() as tmp,
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(),
    ):
        base = seed(airtable, LEADS)
        db = SqliteDatabase(Path(tmp) / "bench.db")
        clock = SimulatedClock(START)
        services = Services(
            store=AirtableStore(
                airtable.token, base, api_url=airtable.url, cluster_rate_limit=False
            ),
            gateway=SimpleTextingGateway(
                texting.token,
                "8005550100",
                api_url=texting.api_url,
                rate_per_second=RATES["simpletexting"] * PACE,
                cluster=False,
            ),
            shortener=SwitchyShortener(
                switchy.token,
                domain="go.example.com",
                api_url=switchy.url,
                graphql_url=switchy.graphql_url,
                links_per_hour=RATES["switchy"] * PACE * 3600,
                cluster=False,
            ),
            notifier=ConsoleNotifier(quiet=True),
            clock=clock,
            lock=SqliteRunLock(db),
        )
        airtable.reset_counts()
        with using(services):
            started = time.monotonic()
            summary = sms_scheduler.with_options(validate_parameters=False)(
                batch_size=LEADS, daily_cap=LEADS
            )
            wall = time.monotonic() - started
        calls = {
            "airtable": airtable.total_requests,
            "simpletexting": len(texting.requests),
            "switchy": len(switchy.requests),
        }
        bound = max(calls[name] / RATES[name] for name in calls)
        rate_limited = (
            airtable.counts["rate_limited"] + texting.count_status(429) + switchy.count_status(429)
        )
        print(
            json.dumps(
                {
                    "sends": summary["sent"],
                    "wall_seconds": round(wall, 1),
                    "bound_seconds": round(bound, 1),
                    "efficiency": round(bound / wall, 3),
                    "api_calls_per_send": round(sum(calls.values()) / max(summary["sent"], 1), 3),
                    "http_429": rate_limited,
                    "calls": calls,
                }
            )
        )
        db.close()


if __name__ == "__main__":
    main()
