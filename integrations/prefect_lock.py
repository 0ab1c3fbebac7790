"""The run lock across machines: a Prefect global concurrency limit of one slot.

The slot is held under a lease that a background thread renews; a worker that dies stops
renewing, and the server frees the slot when the lease runs out. If renewal fails while the lock
is held, the run is cancelled rather than left sending without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect.concurrency.sync import concurrency


class PrefectRunLock:
    def __init__(self, *, wait_seconds: float = 5, lease_seconds: float = 60) -> None:
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds

    @contextmanager
    def hold(self, name: str, owner: str, ttl_seconds: float) -> Iterator[bool]:
        """`ttl_seconds` is not needed here: the lease is renewed for as long as the block runs."""
        with ExitStack() as stack:
            try:
                stack.enter_context(
                    concurrency(
                        name,
                        occupy=1,
                        timeout_seconds=self.wait_seconds,
                        lease_duration=self.lease_seconds,
                        strict=True,
                        raise_on_lease_renewal_failure=True,
                    )
                )
            except TimeoutError:
                yield False
                return
            yield True
