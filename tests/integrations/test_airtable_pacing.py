"""Pacing against a loopback Airtable that refuses too many requests per second, as Airtable does:
the store's threads and stores share one pace per base, and a 429 is waited out, not failed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from integrations.airtable import AirtableError, AirtableStore, AirtableTuning
from integrations.airtable_setup import wanted_schema
from tests.fakes.airtable import FakeAirtable


def store_on(fake: FakeAirtable, base: str, **tuning) -> AirtableStore:
    return AirtableStore(
        fake.token,
        base,
        api_url=fake.url,
        tuning=AirtableTuning(**tuning),
        cluster_rate_limit=False,
    )


def test_every_thread_and_store_of_a_process_shares_the_pace_of_the_base():
    rate, requests = 20, 40
    with FakeAirtable(requests_per_second=rate) as fake:
        base = fake.add_base(wanted_schema())
        stores = [store_on(fake, base, requests_per_second=rate) for _ in range(2)]
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: stores[n % 2].get_settings(), range(requests)))
        elapsed = time.monotonic() - started

    assert fake.counts["rate_limited"] == 0
    assert elapsed >= (requests - 1) / rate * 0.95


def test_without_the_pace_the_same_load_is_refused():
    """The check above can fail: the fake does refuse a process that does not pace itself."""
    with FakeAirtable(requests_per_second=20, rate_limit_penalty=0.2) as fake:
        base = fake.add_base(wanted_schema())
        store = store_on(fake, base, requests_per_second=10_000, rate_limit_wait=0.2)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: store.get_settings(), range(40)))
    assert fake.counts["rate_limited"] > 0


def test_a_429_is_waited_out_for_the_time_airtable_asks_then_retried():
    wait = 0.5
    with FakeAirtable(requests_per_second=3, rate_limit_penalty=wait) as fake:
        base = fake.add_base(wanted_schema())
        store = store_on(fake, base, requests_per_second=10_000, rate_limit_wait=wait)
        started = time.monotonic()
        campaigns = [store.get_settings().active_campaign for _ in range(6)]
        elapsed = time.monotonic() - started

    assert campaigns == [None] * 6
    assert fake.counts["rate_limited"] >= 1
    assert elapsed >= wait


def test_a_rate_limit_that_never_lifts_is_an_error_naming_it():
    with FakeAirtable(requests_per_second=1, rate_limit_penalty=60) as fake:
        base = fake.add_base(wanted_schema())
        store = store_on(fake, base, rate_limit_wait=0.05, rate_limit_retries=2)
        store.get_settings()
        with pytest.raises(AirtableError, match="429 RATE_LIMIT_REACHED"):
            store.get_settings()
    assert fake.counts["rate_limited"] == 3
