"""The Prefect limits: created idempotently; what a clustered Pacer waits on; the run lock."""

from __future__ import annotations

import time

import pytest
from prefect import get_client
from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

from integrations.pacing import Pacer
from integrations.prefect_lock import PrefectRunLock
from integrations.prefect_setup import ensure_prefect_limits

RATES = {"simpletexting": 10.0, "switchy": 1.0, "slack": 1.0}


def read_limits() -> dict[str, tuple[int, float, str]]:
    with get_client(sync_client=True) as client:
        found = {name: client.read_global_concurrency_limit_by_name(name) for name in RATES}
    return {n: (lim.limit, lim.slot_decay_per_second, str(lim.id)) for n, lim in found.items()}


def test_the_limits_are_created_once_and_kept_at_the_configured_rates():
    assert ensure_prefect_limits(rates=RATES) == [
        "simpletexting",
        "switchy",
        "slack",
        "sms-send-lock",
    ]
    first = read_limits()

    ensure_prefect_limits(rates=RATES | {"switchy": 20.0})
    again = read_limits()

    assert {n: first[n][:2] for n in RATES} == {n: (1, rate) for n, rate in RATES.items()}
    assert again["switchy"][:2] == (1, 20.0)
    assert {n: again[n][2] for n in RATES} == {n: first[n][2] for n in RATES}


def test_a_clustered_pacer_waits_on_the_limit_across_processes():
    ensure_prefect_limits(rates=RATES | {"simpletexting": 20.0})
    pacer = Pacer("simpletexting", rate=1000, cluster=True)  # its own bucket never waits

    started = time.monotonic()
    for _ in range(5):
        pacer.wait()

    assert time.monotonic() - started >= 4 / 20


def test_a_clustered_pacer_refuses_to_run_unpaced_when_its_limit_is_missing():
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        Pacer("no-such-provider", rate=10, cluster=True).wait()


def test_the_prefect_run_lock_admits_one_holder_at_a_time():
    ensure_prefect_limits(rates=RATES)
    first, second = PrefectRunLock(wait_seconds=1), PrefectRunLock(wait_seconds=1)
    with first.hold("sms-send-lock", "run-1", 60) as held:
        assert held
        with second.hold("sms-send-lock", "run-2", 60) as also_held:
            assert not also_held
    with second.hold("sms-send-lock", "run-2", 60) as held_after_release:
        assert held_after_release
