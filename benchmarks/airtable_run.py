"""One sms-scheduler pass over 818 due leads, with the store on the loopback Airtable.

818 texts was the old system's largest recorded run: 16 min 50 s, 97% of it one-record-at-a-time
Airtable writes. Here the fake Airtable answers after 150 ms and lets 5 requests per second into
the base (more are answered 429, then everything for 30 s), the gateway is the sandbox, and the
real flow runs on a Prefect test server, so the store also takes the global `airtable` rate limit.

Prints JSON: leads, airtable_requests, requests_per_lead, wall_seconds (the flow call),
bound_seconds (airtable_requests / 5: the least time Airtable's limit allows), http_429, and sent
and the requests by kind. Targets: at most 0.35 requests per lead, no 429, wall within 15% of
the bound.

The flow's parameter validation caps batch_size at 100 per run; this pass lifts the cap with
`with_options(validate_parameters=False)` to send all 818 at once.

    .venv/bin/python benchmarks/airtable_run.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from flows.sms_scheduler import sms_scheduler
from integrations.airtable import AirtableStore
from integrations.airtable_setup import ensure_airtable_rate_limit, wanted_schema
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock
from tasks.runtime import using
from tests.fakes.airtable import FakeAirtable
from uysp.ports import Services

LEADS = 818
RATE = 5
LATENCY = 0.15
CAMPAIGN = "bench"
# Tuesday 2026-11-17 16:00 UTC: 11:00 in New York, inside every sending window.
START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
BODIES = {
    1: "Hi {Name}, it's Ana from UYSP. Want a free 15-min sales audit? {Link} Reply STOP to stop",
    2: "{Name}, just following up on the audit: {Link}",
    3: "Last note from me, {Name}. The calendar is here if useful: {Link}",
}


def phone(n: int) -> str:
    """New York numbers, spelled the three ways an operator's base has them."""
    digits = f"212555{n:04d}"
    spellings = (
        f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
        f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
        digits,
    )
    return spellings[n % 3]


def seed(fake: FakeAirtable, leads: int = LEADS) -> str:
    """A base as `uysp setup airtable` leaves it, filled directly (no requests counted)."""
    base = fake.add_base(wanted_schema())
    fake.insert(base, "Settings", [{"Active Campaign": CAMPAIGN, "SMS Sending": "On"}])
    fake.insert(
        base,
        "SMS_Templates",
        [
            {
                "Campaign": CAMPAIGN,
                "Variant": "A",
                "Step": step,
                "Body": body,
                "Active": True,
                "Delay Days": 0 if step == 1 else 3,
            }
            for step, body in BODIES.items()
        ],
    )
    for start in range(0, leads, 100):
        fake.insert(
            base,
            "Leads",
            [
                {
                    "Phone": phone(n),
                    "First Name": f"Lead{n}",
                    "Email": f"lead{n}@example.com",
                    "Phone Valid": True,
                    "Location Country": "" if n % 2 else "United States",
                    "Processing Status": "Ready for SMS",
                }
                for n in range(start, min(start + 100, leads))
            ],
        )
    return base


def main() -> None:
    with (
        FakeAirtable(latency=LATENCY, requests_per_second=RATE) as fake,
        tempfile.TemporaryDirectory() as tmp,
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(),
    ):
        base = seed(fake)
        ensure_airtable_rate_limit()
        db = SqliteDatabase(Path(tmp) / "bench.db")
        clock = SimulatedClock(START)
        services = Services(
            store=AirtableStore(fake.token, base, api_url=fake.url),
            gateway=SandboxGateway(db, clock),
            shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
            notifier=ConsoleNotifier(quiet=True),
            clock=clock,
            lock=SqliteRunLock(db),
        )
        fake.reset_counts()
        with using(services):
            started = time.monotonic()
            summary = sms_scheduler.with_options(validate_parameters=False)(
                batch_size=LEADS, daily_cap=1000
            )
            wall = time.monotonic() - started
        requests = fake.total_requests
        print(
            json.dumps(
                {
                    "leads": LEADS,
                    "airtable_requests": requests,
                    "requests_per_lead": round(requests / LEADS, 4),
                    "wall_seconds": round(wall, 1),
                    "bound_seconds": round(requests / RATE, 1),
                    "http_429": fake.counts["rate_limited"],
                    "sent": summary["sent"],
                    "requests_by_kind": {
                        k: n for k, n in fake.counts.items() if k != "rate_limited"
                    },
                }
            )
        )
        db.close()


if __name__ == "__main__":
    main()
