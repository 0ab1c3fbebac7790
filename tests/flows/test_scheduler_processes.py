"""Scheduler runs in real processes: one killed mid-send, two started at the same moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from flows.sms_scheduler import sms_scheduler
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tasks.runtime import using
from tests.builders import make_lead, seed_campaign
from tests.conftest import START
from tests.flows.scheduler_process import KILLED
from uysp.models import LedgerStatus
from uysp.ports import Services

ROOT = Path(__file__).resolve().parents[2]


def start_run(db_path: Path, *args: str) -> subprocess.Popen:
    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.flows.scheduler_process",
            str(db_path),
            START.isoformat(),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def embedded(db_path: Path, clock: SimulatedClock) -> Services:
    db = SqliteDatabase(db_path)
    return Services(
        store=SqliteStore(db),
        gateway=SandboxGateway(db, clock),
        shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )


def test_process_killed_between_reserved_and_answer_is_reconciled_not_resent(tmp_path):
    db_path = tmp_path / "uysp.db"
    svc = embedded(db_path, SimulatedClock(START))
    seed_campaign(svc.store)
    leads = svc.store.add_leads(make_lead(n) for n in range(25))

    crashed = start_run(db_path, "--die-after", "13")
    crashed.communicate(timeout=120)
    assert crashed.returncode == KILLED
    in_flight = svc.store.ledger_rows(statuses=[LedgerStatus.RESERVED])
    assert in_flight, "the kill should leave Reserved rows behind"
    recorded = len(svc.store.ledger_rows(statuses=[LedgerStatus.SENT]))

    svc.clock.advance(timedelta(minutes=10))
    with using(svc):
        summary = sms_scheduler(batch_size=100, daily_cap=1000)

    counts = Counter(m.phone for m in svc.gateway.outbox())
    assert summary["reconciled"]["sent"] == 13 - recorded  # accepted, never recorded
    assert set(counts) == {lead.phone for lead in leads}
    assert max(counts.values()) == 1
    assert svc.store.ledger_rows(statuses=[LedgerStatus.RESERVED]) == []


def test_two_runs_started_at_the_same_moment_text_nobody_twice(tmp_path):
    db_path = tmp_path / "uysp.db"
    svc = embedded(db_path, SimulatedClock(START))
    seed_campaign(svc.store)
    leads = svc.store.add_leads(make_lead(n) for n in range(60))

    go_at = str(time.time() + 8)  # both processes import, then start together
    runs = [start_run(db_path, "--go-at", go_at) for _ in range(2)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    counts = Counter(m.phone for m in svc.gateway.outbox())
    assert set(counts) == {lead.phone for lead in leads}
    assert max(counts.values()) == 1
    assert sum(s["sent"] for s in summaries) == 60
