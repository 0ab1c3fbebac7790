"""Shared fixtures: a store on every backend, and the embedded adapters around it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from uysp.ports import LeadStore, Services

# Tuesday 2026-11-17 16:00 UTC is 11:00 in New York and 08:00 in Los Angeles.
START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
STORE_BACKENDS = ["sqlite"]


@pytest.fixture
def db(tmp_path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "uysp.db")
    yield database
    database.close()


@pytest.fixture(params=STORE_BACKENDS)
def store(request, db) -> LeadStore:
    if request.param == "sqlite":
        return SqliteStore(db)
    raise AssertionError(request.param)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def services(store, db, clock) -> Services:
    return Services(
        store=store,
        gateway=SandboxGateway(db, clock),
        shortener=LocalShortener(db, clock, "http://127.0.0.1:8787/l"),
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )
