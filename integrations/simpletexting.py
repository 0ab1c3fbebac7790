"""The SmsGateway on SimpleTexting's v2 API (https://api-doc.simpletexting.com/).

A send is POST /api/messages {contactPhone, accountPhone, mode: AUTO, text}, answered 201
{id, credits}. SimpleTexting has no idempotency key, so a send whose answer never came (a read
timeout, a dropped connection) raises OutcomeUnknownError and is never retried here: the
scheduler reconciles it against GET /api/messages, the provider's own log. A 429 proves the
text was not taken, so it is tried again after the adapter's cool-down. Refusals come as
problem+json {status, errorCode, code, message, ...}; only the message says which refusal it is.

Contacts. The send takes a bare phone number: no contact has to exist first, so the contact
book is only where the lead's first name shows in SimpleTexting's inbox. Writing it per send
would be a third call for every first text, so names are queued and written in batches through
POST /api/contacts-batch/batch-update (up to 500 per call), only for a lead's first step or a
changed name. With contact_batch_size=1 each contact is upserted before its send instead
(POST /api/contacts?upsert=true), and a refusal there stops the send.

Phones go to SimpleTexting as 10-digit US numbers, the form its API writes them in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx

from integrations.pacing import Pacer
from integrations.provider_http import NEVER_SENT, PacedClient
from uysp.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from uysp.models import StopReason
from uysp.ports import ProviderMessage, SendReceipt
from uysp.segments import segment_count

log = logging.getLogger(__name__)
DEFAULT_API_URL = "https://api-app2.simpletexting.com/v2"
MAX_BATCH = 500  # contacts per batch update, and messages per log page
_PERMANENT = (  # a fragment of SimpleTexting's message, our code, the lead's stop reason
    ("local unsubscribe", "UNSUBSCRIBED", StopReason.STOP),
    ("invalid contact", "INVALID_CONTACT", StopReason.INVALID),
    ("not a valid phone", "INVALID_PHONE", StopReason.INVALID),
)


def us_digits(phone: str) -> str:
    """'+15551234567' becomes '5551234567'; other numbers keep their digits."""
    digits = "".join(c for c in phone if c.isdigit())
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def iso_utc(when: datetime) -> str:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _problem(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def refusal(response: httpx.Response) -> SendError:
    """Classify a refused request from its status and problem+json body."""
    problem = _problem(response)
    message = str(problem.get("message") or response.reason_phrase)
    detail = f"{response.status_code} {problem.get('errorCode') or ''}".strip() + f": {message}"
    text = message.lower()
    if response.status_code in (401, 403):
        return ConfigurationError(detail, code="UNAUTHORIZED")
    if "tenant phone" in text:
        return ConfigurationError(detail, code="ACCOUNT_PHONE_NOT_FOUND")
    for fragment, code, stop_reason in _PERMANENT:
        if fragment in text:
            return PermanentSendError(detail, code=code, stop_reason=stop_reason)
    if response.status_code == 404:
        return ConfigurationError(detail, code="NOT_FOUND")  # the API is not at the configured URL
    return TransientSendError(detail, code=f"HTTP_{response.status_code}")


def _chunks(items: Sequence[dict], size: int) -> Iterator[Sequence[dict]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SimpleTextingGateway:
    def __init__(
        self,
        token: str,
        account_phone: str,
        *,
        api_url: str = DEFAULT_API_URL,
        rate_per_second: float = 10.0,
        cluster: bool | None = None,
        timeout: float = 10.0,
        max_connections: int = 32,
        contact_batch_size: int = 100,
        backoff_seconds: float = 1.0,
        rate_limited_retries: int = 2,
    ) -> None:
        if not 1 <= contact_batch_size <= MAX_BATCH:
            raise ValueError(f"contact_batch_size must be 1..{MAX_BATCH}")
        self.account_phone = us_digits(account_phone)
        self.contact_batch_size = contact_batch_size
        self.rate_limited_retries = rate_limited_retries
        self.http = PacedClient(
            Pacer("simpletexting", rate_per_second, cluster=cluster),
            base_url=api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            max_connections=max_connections,
            backoff_seconds=backoff_seconds,
        )
        self._names: dict[str, str | None] = {}  # contact names written by this process
        self._pending: list[dict] = []  # contact writes waiting for a batch
        self._lock = threading.Lock()

    # SmsGateway
    def send(
        self, phone: str, text: str, *, first_name: str | None = None, new_contact: bool = False
    ) -> SendReceipt:
        contact_phone = us_digits(phone)
        if self._contact_needs_writing(contact_phone, first_name, new_contact):
            self._write_contact(contact_phone, first_name)
        body = {
            "contactPhone": contact_phone,
            "accountPhone": self.account_phone,
            "mode": "AUTO",
            "text": text,
        }
        for _ in range(self.rate_limited_retries + 1):
            # A 429 proves the text was not taken, so it is tried again after the cool-down.
            try:
                response = self.http.request("POST", "/api/messages", json=body)
            except NEVER_SENT as exc:
                raise TransientSendError(f"unreachable: {exc!r}", code="CONNECT_FAILED") from exc
            except httpx.TransportError as exc:
                raise OutcomeUnknownError(f"no answer: {exc!r}", code="NO_RESPONSE") from exc
            if response.status_code != 429:
                break
        if not response.is_success:
            raise refusal(response)
        try:
            data = response.json()
            message_id = str(data["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise OutcomeUnknownError(
                f"accepted with an unreadable answer ({response.status_code})", code="BAD_ANSWER"
            ) from exc
        return SendReceipt(message_id, segments=segment_count(text), credits=data.get("credits"))

    def message_log(self, phone: str, since: datetime) -> list[ProviderMessage] | None:
        query = {
            "contactPhone": us_digits(phone),
            "accountPhone": self.account_phone,
            "since": iso_utc(since),
            "size": MAX_BATCH,
        }
        found: list[ProviderMessage] = []
        page, pages = 0, 1
        while page < pages:
            try:
                response = self.http.read("GET", "/api/messages", params=query | {"page": page})
                response.raise_for_status()
                data = response.json()
                pages = int(data["totalPages"])
                found += [
                    ProviderMessage(
                        str(m["id"]), phone, m["text"], datetime.fromisoformat(m["timestamp"])
                    )
                    for m in data["content"]
                    if m.get("directionType") == "MT"
                ]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("SimpleTexting message log unreadable: %r", exc)
                return None
            page += 1
        return found

    def messages_since(self, since: datetime) -> list[ProviderMessage] | None:
        """Every text the account sent since then, to any phone: no contactPhone, every page."""
        query = {"accountPhone": self.account_phone, "since": iso_utc(since), "size": MAX_BATCH}
        found: list[ProviderMessage] = []
        page, pages = 0, 1
        while page < pages:
            try:
                response = self.http.read("GET", "/api/messages", params=query | {"page": page})
                response.raise_for_status()
                data = response.json()
                pages = int(data["totalPages"])
                found += [
                    ProviderMessage(
                        str(m["id"]),
                        f"+1{us_digits(m['contactPhone'])}",  # the API writes 10 digits
                        m["text"],
                        datetime.fromisoformat(m["timestamp"]),
                    )
                    for m in data["content"]
                    if m.get("directionType") == "MT"
                ]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("SimpleTexting message log unreadable: %r", exc)
                return None
            page += 1
        return found

    def credits_remaining(self) -> float | None:
        return None  # the v2 API publishes no balance; the ledger's credits are the record

    # Contacts
    def flush(self) -> None:
        """Write the contact names still waiting for a batch; call it when a send phase ends."""
        with self._lock:
            pending, self._pending = self._pending, []
        for batch in _chunks(pending, MAX_BATCH):
            self._write_batch(batch)

    def close(self) -> None:
        self.flush()
        self.http.close()

    def _contact_needs_writing(self, phone: str, first_name: str | None, first_step: bool) -> bool:
        with self._lock:
            if phone in self._names:
                return self._names[phone] != first_name
            return first_step

    def _write_contact(self, phone: str, first_name: str | None) -> None:
        update = {"contactPhone": phone} | ({"firstName": first_name} if first_name else {})
        if self.contact_batch_size == 1:
            self._upsert(update)
            with self._lock:
                self._names[phone] = first_name
            return
        with self._lock:
            self._names[phone] = first_name
            self._pending.append(update)
            if len(self._pending) < self.contact_batch_size:
                return
            batch, self._pending = self._pending, []
        self._write_batch(batch)

    def _upsert(self, update: dict) -> None:
        """One contact, before its send: a refusal here is the send's refusal."""
        params = {"upsert": "true", "listsReplacement": "false"}
        try:
            response = self.http.read("POST", "/api/contacts", params=params, json=update)
        except httpx.TransportError as exc:  # an upsert can be repeated, and nothing was sent
            raise TransientSendError(f"contact upsert failed: {exc!r}", code="CONTACT") from exc
        if not response.is_success:
            raise refusal(response)

    def _write_batch(self, batch: Sequence[dict]) -> None:
        """Names are for the inbox only: a failed batch is logged and the sends go on."""
        body = {"updates": list(batch), "listsReplacement": False}
        try:
            response = self.http.read("POST", "/api/contacts-batch/batch-update", json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("SimpleTexting batch update of %d contacts failed: %r", len(batch), exc)
