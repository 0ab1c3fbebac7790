"""The embedded SmsGateway: keeps an outbox in the shared SQLite file and fails on demand in
every way SimpleTexting fails, so the scheduler's handling of each can be seen without an
account. The outbox survives the process, which lets a restarted run reconcile against it."""

from __future__ import annotations

import random
import secrets
import sqlite3
import threading
from collections import deque
from datetime import datetime
from enum import StrEnum

from integrations.sqlite_store import SqliteDatabase, to_sql
from uysp.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from uysp.ports import Clock, ProviderMessage, SendReceipt
from uysp.segments import segment_count

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandbox_outbox (
    message_id TEXT PRIMARY KEY, phone TEXT, text TEXT, sent_at TEXT, segments INTEGER,
    credits REAL);
CREATE INDEX IF NOT EXISTS sandbox_outbox_phone ON sandbox_outbox (phone, sent_at);
"""


class Failure(StrEnum):
    INVALID_CONTACT = "invalid_contact"
    UNSUBSCRIBED = "unsubscribed"
    INVALID_NUMBER = "invalid_number"
    SERVER_ERROR = "server_error"
    TIMEOUT_BEFORE_SEND = "timeout_before_send"
    RATE_LIMITED = "rate_limited"
    BAD_TOKEN = "bad_token"
    UNKNOWN_ACCOUNT_PHONE = "unknown_account_phone"
    DROPPED_AFTER_ACCEPT = "dropped_after_accept"


def _error(failure: Failure) -> SendError:
    match failure:
        case Failure.INVALID_CONTACT:
            return PermanentSendError("Invalid contact", code="INVALID_CONTACT")
        case Failure.UNSUBSCRIBED:
            return PermanentSendError(
                "Number has done local unsubscribe", code="UNSUBSCRIBED", stop_reason="STOP"
            )
        case Failure.INVALID_NUMBER:
            return PermanentSendError("Not a valid phone number", code="INVALID_PHONE")
        case Failure.SERVER_ERROR:
            return TransientSendError("503 Service Unavailable", code="HTTP_503")
        case Failure.TIMEOUT_BEFORE_SEND:
            return TransientSendError("connect timeout", code="CONNECT_TIMEOUT")
        case Failure.RATE_LIMITED:
            return TransientSendError("429 Too Many Requests", code="HTTP_429")
        case Failure.BAD_TOKEN:
            return ConfigurationError("Unauthorized: bad token", code="UNAUTHORIZED")
        case Failure.UNKNOWN_ACCOUNT_PHONE:
            return ConfigurationError("Tenant phone not found", code="ACCOUNT_PHONE_NOT_FOUND")
        case Failure.DROPPED_AFTER_ACCEPT:
            return OutcomeUnknownError("connection dropped after send", code="READ_ERROR")


class SandboxGateway:
    def __init__(
        self,
        db: SqliteDatabase,
        clock: Clock,
        *,
        starting_credits: float = 100_000,
        failure_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.db = db.relaxed()
        self.clock = clock
        self.starting_credits = starting_credits
        self.failure_rate = failure_rate
        self._random = random.Random(seed)
        self._scripted: deque[Failure] = deque()
        self._by_phone: dict[str, Failure] = {}
        self._lock = threading.Lock()
        db.apply_schema(OUTBOX_SCHEMA)

    # Failure injection
    def fail_next(self, failure: Failure, times: int = 1) -> None:
        with self._lock:
            self._scripted.extend([Failure(failure)] * times)

    def fail_phone(self, phone: str, failure: Failure) -> None:
        self._by_phone[phone] = Failure(failure)

    def _pick_failure(self, phone: str) -> Failure | None:
        with self._lock:
            if phone in self._by_phone:
                return self._by_phone[phone]
            if self._scripted:
                return self._scripted.popleft()
            if self.failure_rate and self._random.random() < self.failure_rate:
                transient = [
                    Failure.SERVER_ERROR,
                    Failure.TIMEOUT_BEFORE_SEND,
                    Failure.RATE_LIMITED,
                ]
                return self._random.choice(transient)
        return None

    # SmsGateway
    def send(
        self, phone: str, text: str, *, first_name: str | None = None, new_contact: bool = False
    ) -> SendReceipt:
        failure = self._pick_failure(phone)
        if failure is not None and failure != Failure.DROPPED_AFTER_ACCEPT:
            raise _error(failure)
        segments = segment_count(text)
        receipt = SendReceipt(message_id=secrets.token_hex(12), segments=segments, credits=segments)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO sandbox_outbox VALUES (?, ?, ?, ?, ?, ?)",
                (receipt.message_id, phone, text, to_sql(self.clock.now()), segments, segments),
            )
        if failure == Failure.DROPPED_AFTER_ACCEPT:
            raise _error(failure)
        return receipt

    def message_log(self, phone: str, since: datetime) -> list[ProviderMessage]:
        rows = self.db.query(
            "SELECT * FROM sandbox_outbox WHERE phone = ? AND sent_at >= ? ORDER BY sent_at",
            (phone, to_sql(since)),
        )
        return [_message(r) for r in rows]

    def messages_since(self, since: datetime) -> list[ProviderMessage]:
        rows = self.db.query(
            "SELECT * FROM sandbox_outbox WHERE sent_at >= ? ORDER BY sent_at", (to_sql(since),)
        )
        return [_message(r) for r in rows]

    def credits_remaining(self) -> float:
        spent = self.db.query("SELECT COALESCE(SUM(credits), 0) AS spent FROM sandbox_outbox")
        return self.starting_credits - spent[0]["spent"]

    def flush(self) -> None:
        """Nothing is batched in the sandbox."""

    def outbox(self) -> list[ProviderMessage]:
        rows = self.db.query("SELECT * FROM sandbox_outbox ORDER BY sent_at")
        return [_message(r) for r in rows]


def _message(row: sqlite3.Row) -> ProviderMessage:
    sent_at = datetime.fromisoformat(row["sent_at"])
    return ProviderMessage(row["message_id"], row["phone"], row["text"], sent_at)
