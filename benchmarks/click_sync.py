"""The click tracker over 100,000 tracked links: the real Switchy adapter against its loopback
fake, the embedded store, one click-tracker flow run.

Prints JSON {"links", "graphql_calls", "wall_seconds"}.
Target: at most 200 GraphQL calls, and well inside one 10-minute cycle.

The adapter paces every Switchy request, reads included, at UYSP_SWITCHY_LINKS_PER_HOUR (3,600
an hour by default, one a second), so at the default pace the wall time is about one second per
500 links; --links-per-hour shows it at another pace.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from flows.click_tracker import click_tracker
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from integrations.switchy import SwitchyShortener
from tasks.runtime import using
from tests.fakes.switchy import GRAPHQL, SwitchyFake
from uysp.models import Lead, ProcessingStatus
from uysp.ports import Services
from uysp.settings import Settings

START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
DOMAIN = "go.uysp.example"


def seed(store: SqliteStore, fake: SwitchyFake, links: int, clicked_every: int) -> None:
    sent = START - timedelta(days=3)
    store.add_leads(
        Lead(
            id="",
            phone=f"+1{212 + n // 10_000}555{n % 10_000:04d}",
            first_name=f"Lead{n}",
            phone_valid=True,
            processing_status=ProcessingStatus.IN_SEQUENCE,
            sequence_position=1,
            last_sent_at=sent,
            short_link_id=f"l{n:06d}",
        )
        for n in range(links)
    )
    for n in range(links):
        fake.take_alias(DOMAIN, f"l{n:06d}")
        if n % clicked_every == 0:
            fake.click(DOMAIN, f"l{n:06d}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--links-per-hour", type=float, default=Settings().switchy_links_per_hour)
    args = parser.parse_args()
    quiet = {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_LOGGING_LEVEL: "WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        SwitchyFake() as fake,
        temporary_settings(quiet),
        prefect_test_harness(),
    ):
        db = SqliteDatabase(Path(tmp) / "bench.db")
        clock = SimulatedClock(START)
        store = SqliteStore(db)
        seed(store, fake, args.links, clicked_every=10)
        shortener = SwitchyShortener(
            fake.token,
            domain=DOMAIN,
            api_url=fake.api_url,
            graphql_url=fake.graphql_url,
            links_per_hour=args.links_per_hour,
            cluster=False,
        )
        svc = Services(
            store=store,
            gateway=SandboxGateway(db, clock),
            shortener=shortener,
            notifier=ConsoleNotifier(quiet=True),
            clock=clock,
            lock=SqliteRunLock(db),
        )
        with using(svc):
            started = time.perf_counter()
            summary = click_tracker()
            wall = time.perf_counter() - started
        shortener.close()
        calls = len(fake.requests_to("POST", GRAPHQL))
    assert summary["tracked"] == args.links, summary
    assert summary["clicked"] == len(range(0, args.links, 10)), summary
    print(json.dumps({"links": args.links, "graphql_calls": calls, "wall_seconds": round(wall, 2)}))


if __name__ == "__main__":
    main()
