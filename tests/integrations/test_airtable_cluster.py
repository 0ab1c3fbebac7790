"""With a Prefect server configured, every store of every worker also takes slots of the global
rate limit `airtable`, strictly: a store does not talk to Airtable without it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect import get_client
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from integrations.airtable import CLUSTER_LIMIT, AirtableStore
from integrations.airtable_setup import ensure_airtable_rate_limit
from tests.conftest import UNTHROTTLED
from uysp.errors import StoreError

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), prefect_test_harness():
        yield


def test_the_store_takes_the_global_limit_that_setup_made(prefect_server, airtable, airtable_base):
    ensure_airtable_rate_limit()
    ensure_airtable_rate_limit()  # idempotent
    store = AirtableStore(airtable.token, airtable_base, api_url=airtable.url, tuning=UNTHROTTLED)

    for _ in range(12):
        store.get_settings()

    with get_client(sync_client=True) as prefect:
        limit = prefect.read_global_concurrency_limit_by_name(CLUSTER_LIMIT)
    assert (limit.limit, limit.slot_decay_per_second) == (15, 5.25)
    assert limit.active_slots > 0


def test_without_the_limit_the_store_refuses_to_talk_to_airtable(
    prefect_server, airtable, airtable_base
):
    ensure_airtable_rate_limit()
    with get_client(sync_client=True) as prefect:
        prefect.delete_global_concurrency_limit_by_name(CLUSTER_LIMIT)
    store = AirtableStore(airtable.token, airtable_base, api_url=airtable.url, tuning=UNTHROTTLED)

    with pytest.raises(StoreError, match="'airtable' does not exist: run `uysp setup`"):
        store.get_settings()
    assert airtable.total_requests == 0
