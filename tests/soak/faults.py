"""The faults the soak injects, drawn from its seed, and the tally of what was injected.

Provider faults are decided per request by the fakes' `chaos` hook. A send's fate is drawn from
the seed and the request itself (number, text, and how many times that text was tried before),
not from a shared stream, so the same seed gives the same send the same fate whatever order the
threads of a run happen to reach the provider in. Process kills and Airtable latency spikes are
planned per scheduler run. A kind of fault that a seed's draws left out is armed part-way
through, so every kind fires at least once in every soak: a soak where a fault never fired
proves nothing about it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

from tests.fakes import simpletexting as texting_fake
from tests.fakes import switchy as links_fake
from tests.fakes.http import Fault, Reply, Request

PER_REQUEST = (
    "provider_5xx",
    "provider_timeout",
    "provider_429_burst",
    "send_accepted_then_dropped",
    "switchy_5xx",
)
PER_RUN = (
    "scheduler_killed_after_accept",
    "scheduler_killed_at_random",
    "receiver_killed",
    "airtable_latency_spike",
)


@dataclass(frozen=True)
class FaultRates:
    provider_5xx: float = 0.05  # of SimpleTexting requests
    provider_timeout: float = 0.02  # of sends: held past the adapter's timeout, never handled
    send_dropped: float = 0.01  # of sends: taken, then the connection closes unanswered
    burst: float = 0.004  # of sends: a burst of 429s starts, for every request
    burst_seconds: tuple[float, float] = (1, 4)
    switchy_5xx: float = 0.05  # of Switchy requests
    scheduler_kill: float = 0.2  # of runs
    receiver_kill: float = 0.15  # of runs
    latency_spike: float = 0.3  # of runs


@dataclass(frozen=True)
class RunFaults:
    """What happens to one scheduler run."""

    kill_after_text: int | None = None  # SIGKILL once the provider took this many of its texts
    kill_after_seconds: float | None = None  # SIGKILL at this moment of the run
    rerun_at_once: bool = False  # after a kill: run again now, not at the next slot
    receiver_kill_after: float | None = None
    spike: tuple[float, float, float] | None = None  # (after, for how long, latency) seconds


class FaultPlan:
    def __init__(self, seed: int, runs: int, rates: FaultRates = FaultRates()) -> None:
        self.seed = seed
        self.rates = rates
        self.runs = runs
        self.counts: Counter[str] = Counter()
        self.active = True
        self._tries: Counter[tuple[str, str]] = Counter()
        self._burst_until = 0.0
        self._armed: set[str] = set()
        self._lock = threading.Lock()
        plan = random.Random(f"{seed}:plan")
        # The run by which each kind must have happened, else it is forced: in the first half.
        half = max(runs // 2, 1)
        self._deadline = {kind: plan.randrange(1, half + 1) for kind in PER_RUN + PER_REQUEST}

    # Per request: the fakes' chaos hooks
    def simpletexting(self, request: Request) -> Reply | Fault | None:
        if not self.active:
            return None
        with self._lock:
            if time.monotonic() < self._burst_until:
                return texting_fake.TOO_MANY_REQUESTS
            if (request.method, request.path) != ("POST", texting_fake.MESSAGES):
                return self._maybe_5xx(request, "provider_5xx", self.rates.provider_5xx)
            body = request.json() or {}
            key = (str(body.get("contactPhone")), str(body.get("text")))
            tries = self._tries[key]
            self._tries[key] += 1
            roll = _draw(self.seed, "send", *key, tries)
            for kind, share, fate in (
                ("provider_5xx", self.rates.provider_5xx, texting_fake.SERVER_ERROR),
                ("provider_timeout", self.rates.provider_timeout, Fault.STALL),
                ("send_accepted_then_dropped", self.rates.send_dropped, Fault.DROP_AFTER_ACCEPT),
                ("provider_429_burst", self.rates.burst, None),
            ):
                if roll < share or kind in self._armed:
                    self._armed.discard(kind)
                    self.counts[kind] += 1
                    if fate is None:
                        seconds = random.Random(roll).uniform(*self.rates.burst_seconds)
                        self._burst_until = time.monotonic() + seconds
                        return texting_fake.TOO_MANY_REQUESTS
                    return fate
                roll -= share
            return None

    def switchy(self, request: Request) -> Reply | Fault | None:
        if not self.active:
            return None
        with self._lock:
            share = self.rates.switchy_5xx
            return self._maybe_5xx(request, "switchy_5xx", share, links_fake.SERVER_ERROR)

    def _maybe_5xx(
        self, request: Request, kind: str, share: float, reply: Reply = texting_fake.SERVER_ERROR
    ) -> Reply | None:
        """Holds the lock."""
        key = (request.method, f"{request.path}?{sorted(request.query.items())}{request.body!r}")
        tries = self._tries[key]
        self._tries[key] += 1
        if _draw(self.seed, kind, *key, tries) < share or kind in self._armed:
            self._armed.discard(kind)
            self.counts[kind] += 1
            return reply
        return None

    # Per run
    def plan_run(self, index: int) -> RunFaults:
        """The faults of run `index` (0-based); also arms the per-request kinds that are due
        and have not fired yet."""
        rng, rates = random.Random(f"{self.seed}:run:{index}"), self.rates
        due = {k for k, deadline in self._deadline.items() if index >= deadline}
        with self._lock:
            self._armed |= {k for k in PER_REQUEST if k in due and not self.counts[k]}
        kill_text = kill_moment = None
        roll = rng.random()
        if roll < rates.scheduler_kill / 2 or self._owed("scheduler_killed_after_accept", due):
            kill_text = rng.randint(1, 12)
        elif roll < rates.scheduler_kill or self._owed("scheduler_killed_at_random", due):
            kill_moment = rng.uniform(0.5, 20)
        receiver_kill = None
        if rng.random() < rates.receiver_kill or self._owed("receiver_killed", due):
            receiver_kill = rng.uniform(0.2, 15)
        spike = None
        if rng.random() < rates.latency_spike or self._owed("airtable_latency_spike", due):
            spike = (rng.uniform(0, 10), rng.uniform(3, 12), rng.uniform(0.4, 2.5))
        return RunFaults(kill_text, kill_moment, rng.random() < 0.5, receiver_kill, spike)

    def _owed(self, kind: str, due: set[str]) -> bool:
        return kind in due and not self.counts[kind]

    def record(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def stop(self) -> None:
        """No more faults: the soak is settling."""
        with self._lock:
            self.active = False
            self._armed.clear()
            self._burst_until = 0.0


def _draw(*parts: object) -> float:
    return random.Random(":".join(map(str, parts))).random()
