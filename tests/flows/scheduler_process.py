"""One sms-scheduler run in its own process, for tests that kill it or race two of them.

    python -m tests.flows.scheduler_process DB START_ISO [--die-after N] [--go-at UNIX_TIME]

It runs on the embedded adapters over the SQLite file DB, with a simulated clock at START_ISO,
against the Prefect server named by PREFECT_API_URL, and prints the run summary as JSON.
With --die-after N the process is killed (os._exit) right after the provider accepted its
Nth text, before the answer can be recorded: the crash that makes duplicates elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime

from flows.sms_scheduler import sms_scheduler
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tasks.runtime import using
from uysp.ports import Services

KILLED = 137


class GatewayThatDies(SandboxGateway):
    def __init__(self, *args, die_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.die_after = die_after
        self.accepted = 0

    def send(self, phone, text, **kwargs):
        receipt = super().send(phone, text, **kwargs)
        self.accepted += 1
        if self.accepted == self.die_after:
            os._exit(KILLED)
        return receipt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("start")
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--go-at", type=float, default=0)
    args = parser.parse_args()

    db = SqliteDatabase(args.db)
    clock = SimulatedClock(datetime.fromisoformat(args.start))
    gateway = (
        GatewayThatDies(db, clock, die_after=args.die_after)
        if args.die_after
        else SandboxGateway(db, clock)
    )
    services = Services(
        store=SqliteStore(db),
        gateway=gateway,
        shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )
    time.sleep(max(0.0, args.go_at - time.time()))
    with using(services):
        summary = sms_scheduler(batch_size=100, daily_cap=1000)
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
