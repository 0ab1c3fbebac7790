"""Import a generated 50,000-row CSV (5% bad rows, 5% duplicates) into the embedded store
through the ingestion flow.

Prints JSON {"rows", "imported", "merged", "rejected", "wall_seconds", "peak_rss_mb"}.
Target: at most 30 s and 500 MB.

Bad rows have neither a valid phone nor an email, so they end in the rejects file; duplicates
repeat an earlier row with the phone spelled another way and the email in capitals, so they
merge into it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from flows.ingestion import ingestion
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tasks.runtime import using
from uysp.ports import Services
from uysp.synthetic import AREA_CODES, COMPANIES, FIRST_NAMES, LAST_NAMES

START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
HEADER = [
    "Phone Number (phone_number)",
    "Email Address (email)",
    "First Name (first_name)",
    "Last Name",
    "Company Name (custom_10)",
    "Tags",
    "ICP Score",
    "Owner",
]
SPELLINGS = ("({a}) 555-{n}", "{a}.555.{n}", "+1 {a} 555 {n}", "{a}555{n}")


def write_export(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    areas = AREA_CODES["US"] + AREA_CODES["CA"]
    good: list[list[str]] = []
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            roll = rng.random()
            if roll < 0.05:
                writer.writerow(["555-12", "", "Bad", "Row", "", "", "", "x"])
            elif roll < 0.10 and good:
                phone, email, *rest = rng.choice(good)
                digits = "".join(c for c in phone if c.isdigit())[-10:]
                spelling = rng.choice(SPELLINGS)
                writer.writerow([spelling.format(a=digits[:3], n=digits[6:]), email.upper(), *rest])
            else:
                area, number = areas[i % len(areas)], f"{i // len(areas):04d}"
                first = rng.choice(FIRST_NAMES)
                row = [
                    rng.choice(SPELLINGS).format(a=area, n=number),
                    f"{first.lower()}.{i}@example.com",
                    first,
                    rng.choice(LAST_NAMES),
                    rng.choice(COMPANIES),
                    rng.choice(["", "webinar", "vip, client", "newsletter"]),
                    str(rng.randint(20, 100)),
                    "ana",
                ]
                good.append(row)
                writer.writerow(row)


def services(path: Path) -> Services:
    db = SqliteDatabase(path)
    clock = SimulatedClock(START)
    return Services(
        store=SqliteStore(db),
        gateway=SandboxGateway(db, clock),
        shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    quiet = {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_LOGGING_LEVEL: "WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with tempfile.TemporaryDirectory() as tmp, temporary_settings(quiet), prefect_test_harness():
        export = Path(tmp) / "export.csv"
        write_export(export, args.rows)
        with using(services(Path(tmp) / "bench.db")) as svc:
            started = time.perf_counter()
            summary = ingestion(path=str(export))
            wall = time.perf_counter() - started
            stored = len(svc.store.all_leads())
    assert summary["rows"] == args.rows, summary
    assert summary["imported"] + summary["merged"] + summary["rejected"] == args.rows, summary
    assert stored == summary["imported"], (stored, summary)
    print(
        json.dumps(
            {
                "rows": summary["rows"],
                "imported": summary["imported"],
                "merged": summary["merged"],
                "rejected": summary["rejected"],
                "wall_seconds": round(wall, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
