"""Shared fixtures: a store on every backend, and the embedded adapters around it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from integrations.airtable import AirtableStore, AirtableTuning
from integrations.airtable_setup import wanted_schema
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tests.fakes.airtable import FakeAirtable
from uysp.ports import LeadStore, Services

# Tuesday 2026-11-17 16:00 UTC is 11:00 in New York and 08:00 in Los Angeles.
START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
STORE_BACKENDS = ["sqlite", "airtable"]
# The loopback Airtable in fixtures answers at once and lets requests through as fast as they
# come; tests/integrations/test_airtable_pacing.py puts the pace and the 429s to the test.
UNTHROTTLED = AirtableTuning(requests_per_second=10_000, rate_limit_wait=0.05, backoff_seconds=0.01)


@pytest.fixture
def db(tmp_path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "uysp.db")
    yield database
    database.close()


@pytest.fixture
def airtable() -> Iterator[FakeAirtable]:
    with FakeAirtable(requests_per_second=10_000) as fake:
        yield fake


@pytest.fixture
def airtable_base(airtable) -> str:
    """A fresh base holding the tables `uysp setup airtable` creates, and no records."""
    return airtable.add_base(wanted_schema())


@pytest.fixture(params=STORE_BACKENDS)
def store(request) -> LeadStore:
    if request.param == "sqlite":
        return SqliteStore(request.getfixturevalue("db"))
    if request.param == "airtable":
        fake, base = request.getfixturevalue("airtable"), request.getfixturevalue("airtable_base")
        return AirtableStore(
            fake.token, base, api_url=fake.url, tuning=UNTHROTTLED, cluster_rate_limit=False
        )
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
