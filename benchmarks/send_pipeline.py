"""1,000 step-1 sends through the Switchy, SimpleTexting and Airtable fakes at realistic latency.

Airtable answers after 150 ms at 5 requests/s, SimpleTexting after 300 ms at 10/s, Switchy after
200 ms at 20/s; each adapter paces itself just under its fake's limit. Each fake runs in a process
of its own, as each provider is a service of its own, so neither the client's threads nor another
fake's work skew when requests reach it. The real sms-scheduler flow runs on a Prefect test
server. bound_seconds is the least time the tightest limit allows for the calls made;
efficiency = bound_seconds / wall_seconds.

Prints JSON {"sends", "wall_seconds", "bound_seconds", "efficiency", "api_calls_per_send",
"http_429"}. Targets: efficiency at least 0.9, at most 2.5 external calls per send, no 429.

    .venv/bin/python benchmarks/send_pipeline.py
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
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
PACE = 0.97  # adapters run just under the fakes' limits: jitter at the limit is a 429


def serve_airtable(conn: Connection) -> None:
    with FakeAirtable(latency=0.15, requests_per_second=RATES["airtable"]) as fake:
        base = seed(fake, LEADS)
        fake.reset_counts()
        conn.send((fake.url, fake.token, base))
        conn.recv()
        conn.send((fake.total_requests, fake.counts["rate_limited"]))


def serve_simpletexting(conn: Connection) -> None:
    with SimpleTextingFake(latency=0.3, rate_limit=RATES["simpletexting"]) as fake:
        conn.send((fake.api_url, fake.token))
        conn.recv()
        conn.send((len(fake.requests), fake.count_status(429)))


def serve_switchy(conn: Connection) -> None:
    with SwitchyFake(latency=0.2, rate_limit=RATES["switchy"]) as fake:
        conn.send((fake.url, fake.graphql_url, fake.token))
        conn.recv()
        conn.send((len(fake.requests), fake.count_status(429)))


FAKES = {"airtable": serve_airtable, "simpletexting": serve_simpletexting, "switchy": serve_switchy}


def start_fakes() -> dict[str, Connection]:
    """Each fake in a process of its own, as each provider is a service of its own."""
    spawn = multiprocessing.get_context("spawn")
    conns = {}
    for name, serve in FAKES.items():
        conns[name], child_end = spawn.Pipe()
        spawn.Process(target=serve, args=(child_end,), daemon=True).start()
    return conns


def services(fakes: dict, db: SqliteDatabase) -> Services:
    airtable_url, airtable_token, base = fakes["airtable"]
    texting_url, texting_token = fakes["simpletexting"]
    switchy_url, switchy_graphql, switchy_token = fakes["switchy"]
    return Services(
        store=AirtableStore(airtable_token, base, api_url=airtable_url, cluster_rate_limit=False),
        gateway=SimpleTextingGateway(
            texting_token,
            "8005550100",
            api_url=texting_url,
            rate_per_second=RATES["simpletexting"] * PACE,
            cluster=False,
        ),
        shortener=SwitchyShortener(
            switchy_token,
            domain="go.example.com",
            api_url=switchy_url,
            graphql_url=switchy_graphql,
            links_per_hour=RATES["switchy"] * PACE * 3600,
            cluster=False,
        ),
        notifier=ConsoleNotifier(quiet=True),
        clock=SimulatedClock(START),
        lock=SqliteRunLock(db),
    )


def main() -> None:
    conns = start_fakes()
    fakes = {name: conn.recv() for name, conn in conns.items()}
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(),
    ):
        db = SqliteDatabase(Path(tmp) / "bench.db")
        with using(services(fakes, db)):
            started = time.monotonic()
            summary = sms_scheduler.with_options(validate_parameters=False)(
                batch_size=LEADS, daily_cap=LEADS
            )
            wall = time.monotonic() - started
        db.close()
    for conn in conns.values():
        conn.send("done")
    counts = {name: conn.recv() for name, conn in conns.items()}
    calls = {name: requests for name, (requests, _) in counts.items()}
    bound = max(calls[name] / RATES[name] for name in calls)
    print(
        json.dumps(
            {
                "sends": summary["sent"],
                "wall_seconds": round(wall, 1),
                "bound_seconds": round(bound, 1),
                "efficiency": round(bound / wall, 3),
                "api_calls_per_send": round(sum(calls.values()) / max(summary["sent"], 1), 3),
                "http_429": sum(refused for _, refused in counts.values()),
                "calls": calls,
            }
        )
    )


if __name__ == "__main__":
    main()
