"""Who works the inbox: one background thread per receiver.

Embedded, the thread processes each batch of events itself. With a Prefect server it starts the
booking, inbound or delivery deployment for each event, keyed by the event id so a second start
returns the first run; when that fails (no server, no such deployment) it processes the event
itself, so a Prefect outage never holds a booking back.

A lock in the shared SQLite file keeps one worker per file: a second receiver on the same file
only receives, and the worker that follows a crashed one picks up everything it left pending.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

from integrations.sqlite_store import SqliteRunLock
from tasks.events import process
from uysp.events import InboxEvent, ReportType
from uysp.ports import Services
from webhooks.inbox import Inbox

log = logging.getLogger(__name__)
WORKER_LOCK = "webhook-inbox-worker"
Mode = Literal["auto", "embedded", "prefect"]
Resolved = Literal["embedded", "prefect"]
INBOUND = (ReportType.INCOMING_MESSAGE, ReportType.UNSUBSCRIBE_REPORT)


def flow_for(event: InboxEvent) -> str:
    """The flow (and deployment, `<flow>/<flow>`) that works this event with a server."""
    if event.source == "calendly":
        return "booking"
    return "inbound" if event.kind in INBOUND else "delivery"


def resolve_mode(mode: Mode) -> Resolved:
    """`auto` is prefect exactly when a Prefect server is configured (PREFECT_API_URL)."""
    if mode != "auto":
        return mode
    from prefect.settings import PREFECT_API_URL

    return "prefect" if PREFECT_API_URL.value() else "embedded"


def handler(mode: Resolved, svc: Services, inbox: Inbox) -> Callable[[Sequence[InboxEvent]], None]:
    """What the worker does with a batch of due events."""

    def work_here(events: Sequence[InboxEvent]) -> None:
        process(svc, inbox, events)

    if mode == "embedded":
        return work_here

    from prefect.deployments import run_deployment

    def start_flow_runs(events: Sequence[InboxEvent]) -> None:
        here = []
        for event in events:
            flow = flow_for(event)
            # A retried event needs a new run: the server answers a known key with the old one.
            key = event.id if not event.attempts else f"{event.id}#{event.attempts}"
            try:
                run = run_deployment(
                    f"{flow}/{flow}",
                    parameters={"event_id": event.id},
                    timeout=0,
                    idempotency_key=key,
                    as_subflow=False,
                )
            except Exception as exc:
                log.warning(
                    "could not start %s for %s (%s); processing it here", flow, event.id, exc
                )
                here.append(event)
                continue
            inbox.mark_dispatched(event.id, str(run.id))
        if here:
            work_here(here)

    return start_flow_runs


class InboxWorker:
    def __init__(
        self,
        inbox: Inbox,
        svc: Services,
        handle: Callable[[Sequence[InboxEvent]], None],
        *,
        poll_seconds: float = 0.5,
        lock_ttl: float = 30,
    ) -> None:
        self.inbox = inbox
        self.svc = svc
        # The worker's lease lives beside its inbox, whatever lock the scheduler sends under.
        self.lease = SqliteRunLock(inbox.db)
        self.handle = handle
        self.poll_seconds = poll_seconds
        self.lock_ttl = lock_ttl
        self._owner = f"inbox-worker-{os.getpid()}-{id(self)}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """A new event is in the inbox."""
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        lease_until = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= lease_until:
                    if not self.lease.acquire(WORKER_LOCK, self._owner, self.lock_ttl):
                        self._wake.wait(self.poll_seconds)
                        continue
                    lease_until = time.monotonic() + self.lock_ttl / 3
                self._wake.clear()
                batch = self.inbox.due(self.svc.clock.now())
                if batch:
                    self.handle(batch)
                else:
                    self._wake.wait(self.poll_seconds)
            except Exception:  # the worker outlives any one bad moment of the database
                log.exception("inbox worker pass failed")
                self._wake.wait(self.poll_seconds)
        if lease_until:
            self.lease.release(WORKER_LOCK, self._owner)
