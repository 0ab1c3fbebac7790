"""The in-process pace: a provider's rate is kept by when requests leave, even after a stall."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from integrations.pacing import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_callers_leave_one_interval_apart_after_the_first():
    clock = FakeTime()
    bucket = TokenBucket(4.0, monotonic=clock.monotonic, sleep=clock.sleep)

    waits = [bucket.acquire() for _ in range(4)]

    assert waits == pytest.approx([0, 0.25, 0.25, 0.25])


def test_a_quiet_spell_allows_only_the_burst():
    clock = FakeTime()
    bucket = TokenBucket(10.0, burst=2, monotonic=clock.monotonic, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 60

    waits = [bucket.acquire() for _ in range(3)]

    assert waits == pytest.approx([0, 0, 0.1])


def test_callers_whose_waits_end_together_after_a_stall_still_leave_spaced():
    rate, stall_ends = 20.0, time.monotonic() + 0.4

    def sleep_through_a_stall(seconds: float) -> None:  # every sleeper wakes when the stall ends
        time.sleep(max(seconds, stall_ends - time.monotonic()))

    bucket = TokenBucket(rate, sleep=sleep_through_a_stall)
    left: list[float] = []
    lock = threading.Lock()

    def go() -> None:
        bucket.acquire()
        with lock:
            left.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    times = sorted(left)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.8 / rate
