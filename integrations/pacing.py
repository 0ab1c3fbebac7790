"""Request pacing for the provider adapters.

In-process, a token bucket shared by every thread of the process keeps one adapter under its
provider's rate. Across workers, a Prefect global concurrency limit of the same name (created by
`uysp setup prefect`) paces every process together; it is used, with strict=True so a missing
limit is an error and not a silent no-op, whenever a Prefect server is configured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prefect.concurrency.sync import rate_limit
from prefect.settings import PREFECT_API_URL


def prefect_server_configured() -> bool:
    return bool(PREFECT_API_URL.value())


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once."""

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it; returns the seconds waited. A token is taken when its
        caller leaves, not booked ahead, so callers whose waits ran out together (after the
        process stalled) still leave one interval apart instead of in a burst."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait


class Pacer:
    """One provider's pace: the process's bucket, and the cluster's limit when there is one."""

    def __init__(self, name: str, rate: float, burst: float = 1.0, *, cluster: bool | None = None):
        self.name = name
        self.bucket = TokenBucket(rate, burst)
        self.cluster = prefect_server_configured() if cluster is None else cluster

    def wait(self) -> None:
        self.bucket.acquire()
        if self.cluster:
            rate_limit(self.name, strict=True)
