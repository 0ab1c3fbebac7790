"""The durable inbox: every accepted event, kept in the shared SQLite file before its 2xx.

An event is written once under its id (a redelivery finds it there and changes nothing), then
moves from `pending` to `done`, or to `dead` with its reason in the dead-letter table, where
`uysp events replay` finds it. A failed attempt that may succeed later waits and is retried,
MAX_ATTEMPTS times in all. In Prefect mode an event is `dispatched` while its flow run works it.
Events that can stop texting (bookings, replies, opt-outs) are worked before receipts, so a
backlog never delays a stop.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from integrations.sqlite_store import SqliteDatabase, to_sql
from uysp.events import STOPPING_KINDS, InboxEvent, Outcome

MAX_ATTEMPTS = 5
BACKOFF = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
STATUSES = ("pending", "dispatched", "done", "dead")

INBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    kind TEXT NOT NULL, body BLOB NOT NULL, received_at TEXT NOT NULL, status TEXT NOT NULL,
    priority INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL,
    attempted_at TEXT, detail TEXT, flow_run_id TEXT);
CREATE INDEX IF NOT EXISTS inbox_due ON inbox (status, priority, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    event_id TEXT PRIMARY KEY, reason TEXT NOT NULL, failed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL);
"""


class Inbox:
    _turns: ClassVar[dict[Path, threading.Lock]] = {}

    def __init__(self, db: SqliteDatabase) -> None:
        if db.synchronous != "FULL":
            raise ValueError("the inbox must commit with synchronous=FULL: an event is acked")
        self.db = db
        db.apply_schema(INBOX_SCHEMA)
        # The inbox's writers in this process (the receiver's intake, the worker settling) take
        # turns on this lock: SQLite's own busy wait has a blocked writer sleep 1, 2, 5, 10...
        # ms and retry, which under load starves one of them.
        self._turn = Inbox._turns.setdefault(db.path.resolve(), threading.Lock())

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._turn, self.db.transaction() as conn:
            yield conn

    # Receiving
    def add(self, event: InboxEvent) -> bool:
        """Keep a new event; False when one with this id is already kept."""
        return self.add_many([event])[0]

    def add_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        """Keep new events in one write; for each, whether it was new."""
        with self._transaction() as conn:
            return [
                conn.execute(
                    "INSERT INTO inbox (id, source, kind, body, received_at, status, priority, due)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT(id) DO NOTHING",
                    (
                        event.id,
                        event.source,
                        event.kind,
                        event.body,
                        to_sql(event.received_at),
                        0 if event.kind in STOPPING_KINDS else 1,
                        event.received_at.timestamp(),
                    ),
                ).rowcount
                == 1
                for event in events
            ]

    def keep_invalid(self, source: str, body: bytes, reason: str, now: datetime) -> str:
        """Keep a body that failed validation, raw, as a dead letter; returns its id."""
        event_id = f"{source}:invalid:sha256:{hashlib.sha256(body).hexdigest()}"
        event = InboxEvent(event_id, source, "invalid", body, now)
        if self.add(event):
            self.settle([(event_id, Outcome.dead(f"invalid body: {reason}"))], now)
        return event_id

    # Working
    def due(self, now: datetime, limit: int = 50) -> list[InboxEvent]:
        """Pending events whose time has come: those that can stop texting first, then the
        rest, each oldest first."""
        rows = self.db.query(
            "SELECT * FROM inbox WHERE status = 'pending' AND due <= ?"
            " ORDER BY priority, seq LIMIT ?",
            (now.timestamp(), limit),
        )
        return [_event(r) for r in rows]

    def get(self, event_id: str) -> InboxEvent | None:
        rows = self.db.query("SELECT * FROM inbox WHERE id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    def status(self, event_id: str) -> str | None:
        rows = self.db.query("SELECT status FROM inbox WHERE id = ?", (event_id,))
        return rows[0]["status"] if rows else None

    def settle(self, results: Sequence[tuple[str, Outcome]], now: datetime) -> list[str]:
        """Record processing attempts, in one write; returns each event's status after. A
        retry past MAX_ATTEMPTS is dead."""
        statuses = []
        with self._transaction() as conn:
            for event_id, outcome in results:
                statuses.append(self._settle(conn, event_id, outcome, now))
        return statuses

    @staticmethod
    def _settle(conn: sqlite3.Connection, event_id: str, outcome: Outcome, now: datetime) -> str:
        row = conn.execute("SELECT attempts FROM inbox WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise KeyError(f"no event {event_id} in the inbox")
        attempts = row["attempts"] + 1
        status = outcome.status
        if status == "retry":
            status = "pending" if attempts < MAX_ATTEMPTS else "dead"
        due = now + BACKOFF[min(attempts, len(BACKOFF)) - 1]
        conn.execute(
            "UPDATE inbox SET status = ?, attempts = ?, due = ?, attempted_at = ?, detail = ?"
            " WHERE id = ?",
            (status, attempts, due.timestamp(), to_sql(now), outcome.detail, event_id),
        )
        if status == "dead":
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?)",
                (event_id, outcome.detail, to_sql(now), attempts),
            )
        else:
            conn.execute("DELETE FROM dead_letters WHERE event_id = ?", (event_id,))
        return status

    def mark_dispatched(self, event_id: str, flow_run_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE inbox SET status = 'dispatched', flow_run_id = ? WHERE id = ?",
                (flow_run_id, event_id),
            )

    # Looking
    def events(self, status: str | None = None, limit: int = 50) -> list[InboxEvent]:
        """The newest events first, optionally of one status."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.db.query(
            f"SELECT * FROM inbox {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        return [_event(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
        return {status: 0 for status in STATUSES} | {r["status"]: r["n"] for r in rows}


def _event(row: sqlite3.Row) -> InboxEvent:
    return InboxEvent(
        id=row["id"],
        source=row["source"],
        kind=row["kind"],
        body=bytes(row["body"]),
        received_at=datetime.fromisoformat(row["received_at"]),
        status=row["status"],
        attempts=row["attempts"],
        detail=row["detail"],
    )
