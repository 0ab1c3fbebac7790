"""The embedded LeadStore on SQLite: WAL, one connection per thread, `Send Key` unique.

Writes that belong together (a wave's reservations, a wave's outcomes and lead updates) are one
transaction. `synchronous=FULL` makes a Reserved row durable before the provider is called.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import string
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from uysp.models import (
    CampaignSettings,
    ErrorClass,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    Template,
)
from uysp.ports import LeadFields

LEAD_COLUMNS = [name for name in Lead.model_fields if name != "id"]
LEDGER_COLUMNS = list(LedgerEntry.model_fields)
TEMPLATE_COLUMNS = list(Template.model_fields)
RETRYABLE = (ErrorClass.TRANSIENT.value, ErrorClass.CONFIGURATION.value, ErrorClass.NOT_SENT.value)
ACTIVE = (ProcessingStatus.READY.value, ProcessingStatus.IN_SEQUENCE.value)
_ID_ALPHABET = string.ascii_letters + string.digits
_IN_CHUNK = 500  # bound on host parameters per IN (...) query

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS leads (id TEXT PRIMARY KEY, {", ".join(LEAD_COLUMNS)});
CREATE INDEX IF NOT EXISTS leads_status ON leads (processing_status);
CREATE INDEX IF NOT EXISTS leads_phone ON leads (phone);
CREATE INDEX IF NOT EXISTS leads_email ON leads (email COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS templates ({", ".join(TEMPLATE_COLUMNS)},
    PRIMARY KEY (campaign, variant, step));
CREATE TABLE IF NOT EXISTS ledger (
    {", ".join(c + (" TEXT PRIMARY KEY" if c == "send_key" else "") for c in LEDGER_COLUMNS)});
CREATE INDEX IF NOT EXISTS ledger_status ON ledger (status);
CREATE INDEX IF NOT EXISTS ledger_lead ON ledger (lead_id);
CREATE INDEX IF NOT EXISTS ledger_reserved ON ledger (reserved_at);
CREATE INDEX IF NOT EXISTS ledger_message ON ledger (provider_message_id);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT, expires_at REAL);
"""


def new_record_id() -> str:
    """Airtable-shaped ids ('rec' + 14), so ids look alike on every backend."""
    return "rec" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def to_sql(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteDatabase:
    """One SQLite file shared by the store, the lock, the local shortener and the inbox."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._local = threading.local()
        self.apply_schema(SCHEMA)

    def relaxed(self) -> SqliteDatabase:
        """The same file with synchronous=NORMAL: in WAL mode a commit still survives a killed
        process, only not a power cut. For the stand-ins (outbox, links), not the ledger."""
        return SqliteDatabase(self.path, synchronous="NORMAL")

    def apply_schema(self, script: str) -> None:
        """Create tables and indexes if missing (executescript commits on its own)."""
        self.connection().executescript(script)

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: writers queue up instead of failing half-way."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SqliteStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    # Settings and templates
    def get_settings(self) -> CampaignSettings:
        rows = self.db.query("SELECT name, value FROM settings")
        return CampaignSettings.model_validate({r["name"]: json.loads(r["value"]) for r in rows})

    def update_settings(self, **fields: Any) -> None:
        known = CampaignSettings.model_fields
        unknown = set(fields) - set(known)
        if unknown:
            raise ValueError(f"Settings has no field {', '.join(sorted(unknown))}")
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO settings VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [(name, json.dumps(to_sql(value))) for name, value in fields.items()],
            )

    def list_templates(self, campaign: str) -> list[Template]:
        rows = self.db.query("SELECT * FROM templates WHERE campaign = ?", (campaign,))
        return [Template.model_validate(dict(r)) for r in rows]

    def save_templates(self, templates: Iterable[Template]) -> None:
        cols = ", ".join(TEMPLATE_COLUMNS)
        marks = ", ".join("?" for _ in TEMPLATE_COLUMNS)
        with self.db.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO templates ({cols}) VALUES ({marks})",
                [[to_sql(getattr(t, c)) for c in TEMPLATE_COLUMNS] for t in templates],
            )

    # Leads
    def add_leads(self, leads: Iterable[Lead]) -> list[Lead]:
        added = [
            lead if lead.id else lead.model_copy(update={"id": new_record_id()}) for lead in leads
        ]
        cols = ", ".join(["id", *LEAD_COLUMNS])
        marks = ", ".join("?" for _ in range(len(LEAD_COLUMNS) + 1))
        with self.db.transaction() as conn:
            conn.executemany(
                f"INSERT INTO leads ({cols}) VALUES ({marks})",
                [[lead.id, *(to_sql(getattr(lead, c)) for c in LEAD_COLUMNS)] for lead in added],
            )
        return added

    def select_active_leads(self) -> list[Lead]:
        rows = self.db.query(
            "SELECT * FROM leads WHERE processing_status IN (?, ?) ORDER BY rowid", ACTIVE
        )
        return [Lead.model_validate(dict(r)) for r in rows]

    def all_leads(self) -> list[Lead]:
        return [Lead.model_validate(dict(r)) for r in self.db.query("SELECT * FROM leads")]

    def leads_in_status(self, statuses: Iterable[ProcessingStatus]) -> list[Lead]:
        values = [ProcessingStatus(s).value for s in statuses]
        marks = ", ".join("?" for _ in values)
        rows = self.db.query(
            f"SELECT * FROM leads WHERE processing_status IN ({marks}) ORDER BY rowid", values
        )
        return [Lead.model_validate(dict(r)) for r in rows]

    def get_leads(self, lead_ids: Sequence[str]) -> list[Lead]:
        leads: list[Lead] = []
        for chunk in _chunks(list(lead_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.query(f"SELECT * FROM leads WHERE id IN ({marks})", chunk)
            leads.extend(Lead.model_validate(dict(r)) for r in rows)
        return leads

    def find_leads(
        self,
        *,
        ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
    ) -> list[Lead]:
        found: dict[str, Lead] = {}
        for column, values in (("id", ids), ("email", emails), ("phone", phones)):
            values = [v.strip().lower() if column == "email" else v for v in values if v]
            for chunk in _chunks(values):
                marks = ", ".join("?" for _ in chunk)
                match = "LOWER(email)" if column == "email" else column
                rows = self.db.query(f"SELECT * FROM leads WHERE {match} IN ({marks})", chunk)
                found.update((r["id"], Lead.model_validate(dict(r))) for r in rows)
        return list(found.values())

    def leads_with_links(self, sent_since: datetime) -> list[Lead]:
        rows = self.db.query(
            "SELECT * FROM leads WHERE short_link_id IS NOT NULL AND last_sent_at >= ?",
            (to_sql(sent_since),),
        )
        return [Lead.model_validate(dict(r)) for r in rows]

    def stopped_among(self, lead_ids: Sequence[str]) -> set[str]:
        stopped: set[str] = set()
        for chunk in _chunks(list(lead_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.query(
                f"SELECT id FROM leads WHERE id IN ({marks}) AND (sms_stop = 1 OR booked = 1"
                " OR processing_status IS NULL OR processing_status NOT IN (?, ?))",
                [*chunk, *ACTIVE],
            )
            stopped.update(r["id"] for r in rows)
        return stopped

    def update_leads(self, updates: Mapping[str, LeadFields]) -> None:
        with self.db.transaction() as conn:
            self._update_leads(conn, updates)

    @staticmethod
    def _update_leads(conn: sqlite3.Connection, updates: Mapping[str, LeadFields]) -> None:
        for lead_id, fields in updates.items():
            unknown = set(fields) - set(LEAD_COLUMNS)
            if unknown:
                raise ValueError(f"Leads has no field {', '.join(sorted(unknown))}")
            if not fields:
                continue
            assignments = ", ".join(f"{name} = ?" for name in fields)
            values = [to_sql(v) for v in fields.values()]
            conn.execute(f"UPDATE leads SET {assignments} WHERE id = ?", [*values, lead_id])

    # The ledger
    def reserve_sends(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        cols = ", ".join(LEDGER_COLUMNS)
        marks = ", ".join("?" for _ in LEDGER_COLUMNS)
        refresh = ", ".join(f"{c} = excluded.{c}" for c in LEDGER_COLUMNS if c != "send_key")
        retryable = ", ".join("?" for _ in RETRYABLE)
        sql = (
            f"INSERT INTO ledger ({cols}) VALUES ({marks}) ON CONFLICT(send_key) DO UPDATE SET"
            f" {refresh} WHERE ledger.status = 'Failed' AND ledger.error_class IN ({retryable})"
        )
        reserved = []
        with self.db.transaction() as conn:
            for entry in entries:
                row = entry.model_copy(update={"status": LedgerStatus.RESERVED})
                values = [to_sql(getattr(row, c)) for c in LEDGER_COLUMNS]
                if conn.execute(sql, [*values, *RETRYABLE]).rowcount:
                    reserved.append(row)
        return reserved

    def record_sends(
        self, entries: Sequence[LedgerEntry], lead_updates: Mapping[str, LeadFields]
    ) -> None:
        with self.db.transaction() as conn:
            self._update_ledger(conn, entries)
            self._update_leads(conn, lead_updates)

    def ledger_by_message_ids(self, message_ids: Sequence[str]) -> list[LedgerEntry]:
        rows: list[sqlite3.Row] = []
        for chunk in _chunks(list(message_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows += self.db.query(
                f"SELECT * FROM ledger WHERE provider_message_id IN ({marks})", chunk
            )
        return [LedgerEntry.model_validate(dict(r)) for r in rows]

    def update_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        with self.db.transaction() as conn:
            self._update_ledger(conn, entries)

    @staticmethod
    def _update_ledger(conn: sqlite3.Connection, entries: Sequence[LedgerEntry]) -> None:
        columns = [c for c in LEDGER_COLUMNS if c != "send_key"]
        assignments = ", ".join(f"{c} = ?" for c in columns)
        conn.executemany(
            f"UPDATE ledger SET {assignments} WHERE send_key = ?",
            [[*(to_sql(getattr(e, c)) for c in columns), e.send_key] for e in entries],
        )

    def ledger_rows(
        self,
        *,
        statuses: Iterable[LedgerStatus] | None = None,
        since: datetime | None = None,
        lead_ids: Sequence[str] | None = None,
    ) -> list[LedgerEntry]:
        where, params = ["1=1"], []
        if statuses is not None:
            values = [LedgerStatus(s).value for s in statuses]
            where.append(f"status IN ({', '.join('?' for _ in values)})")
            params += values
        if since is not None:
            where.append("reserved_at >= ?")
            params.append(to_sql(since))
        sql = f"SELECT * FROM ledger WHERE {' AND '.join(where)}"
        if lead_ids is None:
            rows = self.db.query(sql + " ORDER BY reserved_at", params)
        else:
            rows = []
            for chunk in _chunks(list(lead_ids)):
                marks = ", ".join("?" for _ in chunk)
                rows += self.db.query(sql + f" AND lead_id IN ({marks})", [*params, *chunk])
        return [LedgerEntry.model_validate(dict(r)) for r in rows]


class SqliteRunLock:
    """A lease in the shared SQLite file: holds across processes on one machine.

    The holder is recorded with its host and pid, so a lease left by a killed process is taken
    over at once instead of blocking every send until it expires."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    @contextmanager
    def hold(self, name: str, owner: str, ttl_seconds: float) -> Iterator[bool]:
        held = self.acquire(name, owner, ttl_seconds)
        try:
            yield held
        finally:
            if held:
                self.release(name, owner)

    def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = datetime.now(UTC).timestamp()  # leases expire in real time, even in simulations
        holder = _holder(owner)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT owner, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row and row["owner"] != holder and row["expires_at"] > now and _alive(row["owner"]):
                return False
            conn.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, holder, now + ttl_seconds)
            )
        return True

    def release(self, name: str, owner: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, _holder(owner)))


def _holder(owner: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{owner}"


def _alive(holder: str) -> bool:
    """False only when the holder ran on this host and its process is gone."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
