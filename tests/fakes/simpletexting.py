"""A loopback fake of the SimpleTexting v2 API (https://api-doc.simpletexting.com/).

Served under /v2 like the real host: POST and GET /api/messages, POST /api/contacts,
GET /api/contacts/{phone}, and the batch contact update with its task result. Phones are
10-digit US numbers as SimpleTexting writes them; ids are 24 hex characters. Errors use the
observed problem+json envelope {status, errorCode, code, message, errorDetails, path,
timestamp}. Only ERR_AUTH_TOKEN_MISSING is a code seen on the live API; the other codes here are
the fake's own, and the messages are the ones operators have seen from it. The fake keeps its own
message log (what reconciliation reads) and a contact book, and enforces its rate limit.

A simulation passes `clock` so the log is stamped in its time, and `on_message` to see each
message the moment it is taken, before the sender has its answer.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

from tests.fakes.http import FakeServer, Reply, Request

API = "/v2/api"
MESSAGES = f"{API}/messages"
CONTACTS = f"{API}/contacts"
BATCH_UPDATE = f"{API}/contacts-batch/batch-update"
MODES = {"AUTO", "SINGLE_SMS_STRICTLY", "MMS_PREFERRED"}
_US_NUMBER = re.compile(r"[2-9]\d{2}[2-9]\d{6}")


def problem(status: int, code: str, message: str, path: str = MESSAGES) -> Reply:
    body = {
        "status": HTTPStatus(status).name,
        "errorCode": code,
        "code": code,
        "message": message,
        "errorDetails": [],
        "path": path,
        "timestamp": datetime.now(UTC).timestamp(),
    }
    return Reply(status, body, content_type="application/problem+json;charset=utf-8")


# Refusals a test can script with fail_next, as SimpleTexting words them.
INVALID_CONTACT = problem(400, "INVALID_CONTACT", "Invalid contact")
LOCAL_UNSUBSCRIBE = problem(400, "UNSUBSCRIBED_CONTACT", "Phone number has done local unsubscribe")
INVALID_PHONE = problem(400, "INVALID_PHONE_NUMBER", "Not a valid phone number")
TENANT_PHONE_NOT_FOUND = problem(400, "TENANT_PHONE_NOT_FOUND", "Tenant phone not found")
BAD_TOKEN = problem(401, "ERR_AUTH_TOKEN_INVALID", "Auth token is invalid")
SERVER_ERROR = problem(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable")
TOO_MANY_REQUESTS = problem(429, "TOO_MANY_REQUESTS", "Too many requests")


def digits10(phone: str) -> str:
    """'+15551234567', '15551234567' and '5551234567' all become '5551234567'."""
    digits = "".join(c for c in phone if c.isdigit())
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def object_id() -> str:
    return secrets.token_hex(12)


def credits_for(text: str) -> int:
    """The fake's own price: one credit per 160 characters, 153 per part beyond that."""
    return 1 if len(text) <= 160 else -(-len(text) // 153)


class SimpleTextingFake(FakeServer):
    def __init__(
        self,
        *,
        token: str = "st-test-token",
        account_phone: str = "8005550100",
        latency: float = 0.0,
        rate_limit: float | None = None,
        stall_seconds: float = 2.0,
        clock: Callable[[], datetime] | None = None,
        on_message: Callable[[dict], None] | None = None,
    ) -> None:
        super().__init__(latency=latency, rate_limit=rate_limit, stall_seconds=stall_seconds)
        self.token = token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_message = on_message
        self.account_phones = {digits10(account_phone)}
        self.messages: list[dict] = []  # the provider's message log, oldest first
        self.contacts: dict[str, dict] = {}  # by 10-digit phone
        self.unsubscribed: set[str] = set()
        self.batch_tasks: dict[str, dict] = {}
        self._state = threading.Lock()

    @property
    def api_url(self) -> str:
        return f"{self.url}/v2"

    # Behaviour a test arranges
    def unsubscribe(self, phone: str) -> None:
        """The person texted STOP: every later send to them is refused."""
        self.unsubscribed.add(digits10(phone))

    # Observations
    def messages_to(self, phone: str) -> list[dict]:
        number = digits10(phone)
        with self._state:
            return [m for m in self.messages if m["contactPhone"] == number]

    def rate_limited_reply(self, request: Request) -> Reply:
        return problem(429, "TOO_MANY_REQUESTS", "Too many requests", request.path)

    # The API
    def handle(self, request: Request) -> Reply:
        if request.headers.get("authorization") is None:
            return problem(401, "ERR_AUTH_TOKEN_MISSING", "Auth token is missing", request.path)
        if request.headers["authorization"] != f"Bearer {self.token}":
            return problem(401, "ERR_AUTH_TOKEN_INVALID", "Auth token is invalid", request.path)
        route = (request.method, request.path)
        if route == ("POST", MESSAGES):
            return self._send(request)
        if route == ("GET", MESSAGES):
            return self._list_messages(request)
        if route == ("POST", CONTACTS):
            return self._upsert_contact(request)
        if route == ("POST", BATCH_UPDATE):
            return self._batch_update(request)
        if request.method == "GET" and request.path.startswith(f"{BATCH_UPDATE}/"):
            return self._batch_result(request.path.rsplit("/", 1)[1])
        if request.method == "GET" and request.path.startswith(f"{CONTACTS}/"):
            return self._get_contact(request.path.rsplit("/", 1)[1])
        return problem(404, "NOT_FOUND", "Not found", request.path)

    def _send(self, request: Request) -> Reply:
        body = request.json() or {}
        text, mode = body.get("text"), body.get("mode")
        if not text or mode not in MODES:
            return problem(400, "BAD_REQUEST", "text and a valid mode are required")
        account = digits10(body.get("accountPhone") or next(iter(self.account_phones)))
        if account not in self.account_phones:
            return TENANT_PHONE_NOT_FOUND
        contact = digits10(body.get("contactPhone") or "")
        if not _US_NUMBER.fullmatch(contact):
            return INVALID_PHONE
        if contact in self.unsubscribed:
            return LOCAL_UNSUBSCRIBE
        message = {
            "id": object_id(),
            "subject": None,
            "text": text,
            "contactPhone": contact,
            "accountPhone": account,
            "directionType": "MT",
            "timestamp": self._now_iso(),
            "referenceType": "API_SEND",
            "category": "SMS" if len(text) <= 160 else "EXTENDED_SMS",
            "mediaItems": [],
        }
        with self._state:
            self.messages.append(message)
            self.contacts.setdefault(contact, self._new_contact(contact))
        if self.on_message is not None:
            self.on_message(message)
        return Reply(201, {"id": message["id"], "credits": credits_for(text)})

    def _list_messages(self, request: Request) -> Reply:
        page = int(request.param("page", "0"))
        size = min(int(request.param("size", "50")), 500)
        contact = request.param("contactPhone")
        account = request.param("accountPhone")
        since = request.param("since")
        since_at = datetime.fromisoformat(since) if since else None
        with self._state:
            found = [
                m
                for m in self.messages
                if (contact is None or m["contactPhone"] == digits10(contact))
                and (account is None or m["accountPhone"] == digits10(account))
                and (since_at is None or datetime.fromisoformat(m["timestamp"]) >= since_at)
            ]
        pages = -(-len(found) // size)
        content = found[page * size : (page + 1) * size]
        return Reply(200, {"content": content, "totalPages": pages, "totalElements": len(found)})

    def _upsert_contact(self, request: Request) -> Reply:
        update = request.json() or {}
        phone = digits10(update.get("contactPhone") or "")
        if not _US_NUMBER.fullmatch(phone):
            return problem(400, "INVALID_PHONE_NUMBER", "Not a valid phone number", CONTACTS)
        with self._state:
            exists = phone in self.contacts
            if exists and request.param("upsert", "true") != "true":
                return problem(400, "CONTACT_ALREADY_EXISTS", "Contact already exists", CONTACTS)
            contact = self._store_contact(phone, update)
        return Reply(200 if exists else 201, {"id": contact["contactId"]})

    def _batch_update(self, request: Request) -> Reply:
        updates = (request.json() or {}).get("updates") or []
        if len(updates) > 500:
            return problem(400, "BAD_REQUEST", "At most 500 updates per batch", BATCH_UPDATE)
        results = []
        with self._state:
            for update in updates:
                phone = digits10(update.get("contactPhone") or "")
                if _US_NUMBER.fullmatch(phone):
                    contact = self._store_contact(phone, update)
                    results.append(
                        {"done": True, "contactPhone": phone, "contactId": contact["contactId"]}
                    )
                else:
                    results.append(
                        {"done": False, "contactPhone": phone, "errorCode": "CONTACT_CREATE_FAILED"}
                    )
            task_id = object_id()
            self.batch_tasks[task_id] = {
                "status": "DONE",
                "results": results,
                "requestedCount": len(updates),
                "processedCount": sum(r["done"] for r in results),
            }
        return Reply(201, {"id": task_id})

    def _batch_result(self, task_id: str) -> Reply:
        with self._state:
            task = self.batch_tasks.get(task_id)
        if task is None:
            return problem(404, "NOT_FOUND", "Task not found", f"{BATCH_UPDATE}/{task_id}")
        return Reply(201, task)

    def _get_contact(self, phone: str) -> Reply:
        with self._state:
            contact = self.contacts.get(digits10(phone))
        if contact is None:
            return problem(404, "NOT_FOUND", "Contact not found", f"{CONTACTS}/{phone}")
        return Reply(200, contact)

    def _new_contact(self, phone: str) -> dict:
        now = self._now_iso()
        return {
            "contactId": object_id(),
            "contactPhone": phone,
            "firstName": None,
            "lastName": None,
            "email": None,
            "subscriptionStatus": "OPT_IN",
            "lists": [],
            "created": now,
            "updated": now,
            "updateSource": "PUBLIC_API",
        }

    def _store_contact(self, phone: str, update: dict) -> dict:
        """Create or update one contact; the caller holds the state lock."""
        contact = self.contacts.setdefault(phone, self._new_contact(phone))
        for name in ("firstName", "lastName", "email"):
            if name in update:
                contact[name] = update[name]
        contact["updated"] = self._now_iso()
        return contact

    def _now_iso(self) -> str:
        now = self.clock().astimezone(UTC)
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
