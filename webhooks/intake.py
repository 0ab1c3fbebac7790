"""The receiver's one writer thread: accepted events into the inbox, and link hits.

A request hands its write over and waits for it. The writer takes every event waiting at that
moment and keeps them in one transaction, so under load many requests share one fsync instead
of queueing for one each; a lone request waits for its own commit only. Either way no request
is answered before its event is on disk. Other writes (a link hit) run on the same thread, one
after another, so the receiver's writes never contend with each other for the SQLite lock.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from uysp.events import InboxEvent
from webhooks.inbox import Inbox

log = logging.getLogger(__name__)
MAX_GROUP = 256
T = TypeVar("T")


class InboxWriter:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    async def add(self, event: InboxEvent) -> bool:
        """Keep the event; True once it is committed as new, False for a redelivery."""
        return await self._submit(event)

    async def run(self, write: Callable[[], T]) -> T:
        """Run another write on the writer thread and return its result."""
        return await self._submit(write)

    async def _submit(self, work: InboxEvent | Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((work, loop, done))
        return await done

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group = [first]
            while len(group) < MAX_GROUP and not self._queue.empty():
                item = self._queue.get()
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
            events, writes = [], []
            for item in group:
                (events if isinstance(item[0], InboxEvent) else writes).append(item)
            try:
                kept: list = self.inbox.add_many([event for event, _, _ in events])
            except Exception as exc:  # each waiting request answers 5xx; the sender retries
                log.exception("keeping %d events failed", len(events))
                kept = [exc] * len(events)
            for (_, loop, done), result in zip(events, kept, strict=True):
                loop.call_soon_threadsafe(_settle, done, result)
            for write, loop, done in writes:
                try:
                    result = write()
                except Exception as exc:
                    log.exception("a receiver write failed")
                    result = exc
                loop.call_soon_threadsafe(_settle, done, result)


def _settle(done: asyncio.Future, result: Any) -> None:
    if done.cancelled():
        return
    if isinstance(result, Exception):
        done.set_exception(result)
    else:
        done.set_result(result)
