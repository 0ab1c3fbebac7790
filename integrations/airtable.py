"""The production LeadStore on Airtable, over pyairtable.

Selected by `UYSP_STORE=airtable`; the endpoint is `UYSP_AIRTABLE_API_URL`, and each table is
named by its name or its id (`tbl...`). The field names are the operators' own (DESIGN.md).

Requests. Airtable allows 5 requests per second per base, so the store is built to need few:
selections are filtered by Airtable (`filterByFormula`) and paged 100 at a time, never a whole
table filtered here; every write carries 10 records; lookups by id put many ids in one OR()
formula, sent as POST listRecords when long. Per scheduler run on N due leads that comes to
about 0.3 N writes (reserve, outcome, lead update: 10 rows each) plus a few dozen reads, thanks
to two memories this process keeps:

- The ledger memory: the Send Keys of every row this process read or wrote, and the leads whose
  rows `ledger_rows(lead_ids=...)` loaded in full. `reserve_sends` looks up only the keys it
  knows nothing of (in chunks); what it knows is trusted for `ledger_memory_seconds`. Under the
  run lock no other scheduler writes those keys meanwhile, and a key Airtable reports as already
  there when this process thought it new is not sent (it stays Reserved for reconciliation).
- The stop check: `stopped_among` answers from the flags this process last read for the lead
  (a selection, an id lookup, or the shared poll) while they are younger than
  `stop_check_seconds` (default 5). Otherwise one query, shared by every thread, reads which of
  the leads in flight (the ones whose ledger rows were just looked up by id, or reserved) are
  stopped, booked or out of sequence. Staleness bound: a STOP, booking or status change made
  elsewhere (an operator, a webhook, another worker) is honoured by every send that starts more
  than `stop_check_seconds` after it landed in Airtable; this process's own writes are seen at
  once.

Pacing and errors. Every request of the process to one base waits its turn in one token bucket
(`requests_per_second`, shared by all threads and stores), and, when a Prefect server is
configured, in the global rate limit `airtable` (strict: it must exist, `uysp setup` creates
it). A 429 blocks the whole base for `rate_limit_wait` seconds (Airtable asks for 30) and the
request is retried; 5xx and connection errors are retried `server_error_retries` times with
exponential backoff. Ledger writes are upserts on Send Key, so a retried write never doubles a
row. Other errors raise AirtableError naming the table, Airtable's error type and its message
(which names the field). Computed fields (formula, rollup, lookup...) are read from the Meta API
once and never written.

Existing bases. `Processing Status` `Completed` is read as `Complete`. Phones are read in E.164
whatever their spelling ("(555) 123-4567", "+1 555 123 4567" and "5551234567" are one number),
and `find_leads(phones=...)` finds a lead however the base spells its number. A blank `Location
Country` with a valid +1 number is read from the number: a US or Canadian number counts as US or
Canada (uysp/eligibility.py), since operators leave the column empty for most leads; a blank
country with any other number is held as not_us_canada. Airtable leaves unticked checkboxes and
empty texts out of its answers: they are read as unticked (a template with `Active` unticked is
inactive) and as empty text (a help reply's ledger row has no campaign). Rows of
the old audit log, which have no Send Key, are not ledger rows and are never read as such.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto
from functools import cache
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import requests
from prefect import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound
from pyairtable import Api, Table
from pyairtable.formulas import (
    AND,
    EQ,
    GTE,
    LOWER,
    NE,
    NOT,
    OR,
    RECORD_ID,
    REGEX_REPLACE,
    RIGHT,
    Field,
    Formula,
    to_formula_str,
)
from pydantic import BaseModel, ValidationError

from integrations.pacing import Pacer
from uysp.errors import StoreError
from uysp.models import (
    CampaignSettings,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    Template,
)
from uysp.phones import InvalidPhone, to_e164
from uysp.ports import LeadFields
from uysp.settings import Settings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

COMPUTED_TYPES = frozenset(
    {
        "aiText",
        "autoNumber",
        "button",
        "count",
        "createdBy",
        "createdTime",
        "formula",
        "lastModifiedBy",
        "lastModifiedTime",
        "lookup",
        "multipleLookupValues",
        "rollup",
    }
)
CLUSTER_LIMIT = "airtable"
ACTIVE_STATUSES = frozenset({ProcessingStatus.READY.value, ProcessingStatus.IN_SEQUENCE.value})


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {name: f.alias or name for name, f in model.model_fields.items() if name != "id"}


LEAD_FIELDS = _aliases(Lead)
SETTINGS_FIELDS = _aliases(CampaignSettings)
LEDGER_FIELDS = _aliases(LedgerEntry)
TEMPLATE_FIELDS = _aliases(Template)
TEMPLATE_KEY = [TEMPLATE_FIELDS[name] for name in ("campaign", "variant", "step")]
SEND_KEY = LEDGER_FIELDS["send_key"]
STATUS = LEAD_FIELDS["processing_status"]
SMS_STOP = LEAD_FIELDS["sms_stop"]
BOOKED = LEAD_FIELDS["booked"]
PHONE = LEAD_FIELDS["phone"]
EMAIL = LEAD_FIELDS["email"]


@dataclass(frozen=True)
class AirtableTables:
    """Table names or ids in the operators' base."""

    leads: str = "Leads"
    settings: str = "Settings"
    templates: str = "SMS_Templates"
    audit: str = "SMS_Audit"


DEFAULT_TABLES = AirtableTables()


@dataclass(frozen=True)
class AirtableTuning:
    """Pace, retries and memories; the defaults are production's."""

    requests_per_second: float = 5.0  # per base, for the whole process: Airtable's limit
    cluster_block: int = 5  # slots of the Prefect limit taken per call to its server
    rate_limit_wait: float = 30.0  # after a 429, what Airtable asks for
    rate_limit_retries: int = 10
    server_error_retries: int = 4  # 5xx and broken connections, backing off from:
    backoff_seconds: float = 0.5
    timeout: tuple[float, float] = (10.0, 60.0)  # connect, read
    stop_check_seconds: float = 5.0  # the staleness bound of stopped_among
    ledger_memory_seconds: float = 600.0  # how long what this process saw of a Send Key holds
    ids_per_formula: int = 1000  # ids (or keys) in one OR() lookup, sent as POST listRecords

    def cluster_limit(self) -> dict[str, float]:
        """Settings of the Prefect limit `airtable`. Its server rounds decay down to whole slots
        at each acquisition, so it decays 5% faster than the pace, lest a block fetched every
        second come back one slot short; it holds three blocks, as the stores fetch one ahead."""
        return {
            "limit": 3 * self.cluster_block,
            "slot_decay_per_second": round(1.05 * self.requests_per_second, 3),
        }


DEFAULT_TUNING = AirtableTuning()
TUNING_SETTINGS = {  # AirtableTuning field: its UYSP_ setting
    "requests_per_second": "airtable_requests_per_second",
    "rate_limit_wait": "airtable_rate_limit_wait_seconds",
    "stop_check_seconds": "airtable_stop_check_seconds",
}


class AirtableError(StoreError):
    """Airtable refused or failed a request."""

    def __init__(self, table: str, status: int | None, error_type: str, message: str) -> None:
        hint = (
            " (`uysp setup airtable` adds missing fields)" if "UNKNOWN_FIELD" in error_type else ""
        )
        super().__init__(f"Airtable {table}: HTTP {status} {error_type}: {message}{hint}")
        self.table = table
        self.status = status
        self.error_type = error_type


# Pacing: one gate per base, shared by every store and thread of the process.


class _ClusterSlots:
    """Slots of the Prefect global rate limit, taken `block` at a time by a background thread
    that stays a block ahead of the requests. A call to the Prefect server takes tens of
    milliseconds, and at times seconds: made per request, on the request's path, it would cost
    more than Airtable's own limit."""

    def __init__(self, name: str, block: int) -> None:
        self.name = name
        self.block = block
        self._slots = 0
        self._fetching = False
        self._fitted = False
        self._failure: BaseException | None = None
        self._changed = threading.Condition()

    def take(self) -> None:
        with self._changed:
            while not self._slots:
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    raise failure
                self._fetch_if_low()
                self._changed.wait()
            self._slots -= 1
            self._fetch_if_low()

    def _fetch_if_low(self) -> None:
        if self._slots < self.block and not self._fetching:
            self._fetching = True
            # The copied context carries the Prefect settings (API URL) into the thread.
            context = contextvars.copy_context()
            threading.Thread(target=context.run, args=(self._fetch,), daemon=True).start()

    def _fetch(self) -> None:
        try:
            if not self._fitted:
                self._fit_block()
            rate_limit(self.name, occupy=self.block, strict=True)
        except BaseException as exc:  # handed to the requests waiting for these slots
            failure: BaseException | None = exc
        else:
            failure = None
        with self._changed:
            self._fetching = False
            if failure is None:
                self._slots += self.block
            else:
                self._failure = failure
            self._changed.notify_all()

    def _fit_block(self) -> None:
        """A limit smaller than a block would refuse every fetch, forever: take what it holds."""
        try:
            with get_client(sync_client=True) as prefect:
                limit = prefect.read_global_concurrency_limit_by_name(self.name).limit
        except ObjectNotFound as exc:
            missing = f"Prefect limit {self.name!r} does not exist: run `uysp setup`"
            raise StoreError(missing) from exc
        if limit < self.block:
            log.warning(
                "Prefect limit %r holds %d slots, fewer than a block of %d: slower pacing until"
                " `uysp setup` sets it up for Airtable",
                self.name,
                limit,
                self.block,
            )
            self.block = max(limit, 1)
        self._fitted = True


class _BaseGate:
    """Pacing of one base: a 429 blocks it; then a slot of the cluster limit, if a Prefect
    server is configured; then the process's token bucket, last, right before the request."""

    def __init__(self, rate: float, cluster: bool | None, cluster_block: int) -> None:
        self.pacer = Pacer(CLUSTER_LIMIT, rate, cluster=cluster)
        self.slots = _ClusterSlots(CLUSTER_LIMIT, cluster_block) if self.pacer.cluster else None
        self._blocked_until = 0.0

    def wait_turn(self) -> None:
        while (delay := self._blocked_until - time.monotonic()) > 0:
            time.sleep(delay)
        if self.slots is not None:
            self.slots.take()
        self.pacer.bucket.acquire()

    def block(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)


_gates: dict[tuple[str, str], _BaseGate] = {}
_gates_lock = threading.Lock()


def _gate_for(
    api_url: str, base_id: str, tuning: AirtableTuning, cluster: bool | None
) -> _BaseGate:
    with _gates_lock:
        key = (api_url.rstrip("/"), base_id)
        if key not in _gates:
            _gates[key] = _BaseGate(tuning.requests_per_second, cluster, tuning.cluster_block)
        return _gates[key]


class _AirtableSession(requests.Session):
    """The session under pyairtable: paces each attempt, waits out 429s, retries 5xx and broken
    connections, and turns every other error into an AirtableError."""

    def __init__(self, gate: _BaseGate, tuning: AirtableTuning) -> None:
        super().__init__()
        self.gate = gate
        self.tuning = tuning

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        failures = rate_limited = 0
        table = _subject(request.url or "")
        while True:
            self.gate.wait_turn()
            try:
                response = super().send(request, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failures += 1
                if failures > self.tuning.server_error_retries:
                    raise AirtableError(table, None, type(exc).__name__, str(exc)) from exc
                self._back_off(table, failures, type(exc).__name__)
                continue
            if response.status_code == 429:
                rate_limited += 1
                if rate_limited > self.tuning.rate_limit_retries:
                    raise _error(table, response)
                log.warning("Airtable %s: 429, waiting %.0f s", table, self.tuning.rate_limit_wait)
                self.gate.block(self.tuning.rate_limit_wait)
                continue
            if response.status_code >= 500 and failures < self.tuning.server_error_retries:
                failures += 1
                self._back_off(table, failures, f"HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                raise _error(table, response)
            return response

    def _back_off(self, table: str, failures: int, what: str) -> None:
        delay = self.tuning.backoff_seconds * 2 ** (failures - 1)
        log.warning("Airtable %s: %s, retry %d in %.1f s", table, what, failures, delay)
        time.sleep(delay)


def _subject(url: str) -> str:
    """The table a request is about, from its URL: /v0/{base}/{table}..., or the base schema."""
    parts = [unquote(p) for p in urlsplit(url).path.strip("/").split("/")]
    if parts[1:2] == ["meta"]:
        return f"schema of {parts[5]}" if len(parts) > 5 else "base schema"
    return parts[2] if len(parts) > 2 else "base"


def _error(table: str, response: requests.Response) -> AirtableError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type", ""), error.get("message", "")
    elif isinstance(error, str):
        kind, message = error, ""
    elif isinstance(body, dict) and body.get("errors"):
        kind, message = body["errors"][0].get("error", ""), body["errors"][0].get("message", "")
    else:
        kind, message = response.reason or "", response.text[:200]
    return AirtableError(table, response.status_code, kind, message)


# What the process knows: stop flags and ledger keys.


@dataclass(frozen=True)
class _StopFlags:
    sms_stop: bool = False
    booked: bool = False
    active: bool = True

    @property
    def stopped(self) -> bool:
        return self.sms_stop or self.booked or not self.active

    @classmethod
    def of_lead(cls, lead: Lead) -> _StopFlags:
        return cls(lead.sms_stop, lead.booked, lead.processing_status in ACTIVE_STATUSES)

    @classmethod
    def of_cells(cls, cells: Mapping[str, Any]) -> _StopFlags:
        return cls(bool(cells.get(SMS_STOP)), bool(cells.get(BOOKED)), _active(cells.get(STATUS)))

    def updated(self, fields: LeadFields) -> _StopFlags:
        return _StopFlags(
            bool(fields.get("sms_stop", self.sms_stop)),
            bool(fields.get("booked", self.booked)),
            _active(fields["processing_status"]) if "processing_status" in fields else self.active,
        )


def _active(status: Any) -> bool:
    return (status.strip() if isinstance(status, str) else status) in ACTIVE_STATUSES


RENEW_AT = 0.8  # of the stop flags' life: late enough to add few polls, early enough to land


class _StopCheck:
    """`stopped_among` from flags younger than `interval`, else one shared poll of the leads in
    flight. The lock is held through that poll on purpose: every waiting thread needs its answer.
    Flags past RENEW_AT of their life are still answered from while a background poll renews
    them, so a steady stream of sends rarely waits for a poll at all."""

    def __init__(
        self,
        interval: float,
        poll: Callable[[Sequence[str]], dict[str, _StopFlags]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._poll = poll
        self._monotonic = monotonic
        self._flags: dict[str, tuple[_StopFlags, float]] = {}
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._renewing = False
        self._written_while_renewing: set[str] = set()

    def read(self, leads: Iterable[Lead], at: float) -> None:
        with self._lock:
            for lead in leads:
                if not self._newer_than(lead.id, at):
                    self._flags[lead.id] = (_StopFlags.of_lead(lead), at)

    def wrote(self, updates: Mapping[str, LeadFields]) -> None:
        with self._lock:
            if self._renewing:
                self._written_while_renewing.update(updates)
            for lead_id, fields in updates.items():
                if lead_id in self._flags:
                    flags, at = self._flags[lead_id]
                    self._flags[lead_id] = (flags.updated(fields), at)

    def expect(self, lead_ids: Iterable[str], *, replace: bool = False) -> None:
        with self._lock:
            if replace:
                self._in_flight.clear()
            self._in_flight.update(lead_ids)

    def done(self, lead_ids: Iterable[str]) -> None:
        with self._lock:
            self._in_flight.difference_update(lead_ids)

    def stopped_among(self, lead_ids: Sequence[str]) -> set[str]:
        with self._lock:
            now = self._monotonic()
            if not all(self._newer_than(i, now - self.interval) for i in lead_ids):
                polled = sorted(self._in_flight.union(lead_ids))
                found = self._poll(polled)
                for lead_id in polled:
                    self._flags[lead_id] = (found.get(lead_id, _StopFlags()), now)
            elif not self._renewing and not all(
                self._newer_than(i, now - self.interval * RENEW_AT) for i in lead_ids
            ):
                self._renewing = True
                polled = sorted(self._in_flight.union(lead_ids))
                threading.Thread(target=self._renew, args=(polled, now), daemon=True).start()
            return {i for i in lead_ids if self._flags[i][0].stopped}

    def _renew(self, polled: list[str], started: float) -> None:
        try:
            found = self._poll(polled)
        except Exception:  # the next check past the interval polls again, and raises
            log.warning("background stop-flag poll failed", exc_info=True)
            found = None
        with self._lock:
            if found is not None:
                for lead_id in set(polled) - self._written_while_renewing:
                    if not self._newer_than(lead_id, started):
                        self._flags[lead_id] = (found.get(lead_id, _StopFlags()), started)
            self._renewing = False
            self._written_while_renewing.clear()

    def _newer_than(self, lead_id: str, moment: float) -> bool:
        known = self._flags.get(lead_id)
        return known is not None and known[1] > moment


class _KeyState(Enum):
    NEW = auto()
    RETRYABLE = auto()
    TAKEN = auto()
    UNKNOWN = auto()


class _LedgerMemory:
    """Send Keys this process has seen (None: looked up and absent), and the leads whose rows it
    loaded in full; both trusted for `ttl` seconds."""

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._keys: dict[str, tuple[LedgerEntry | None, float]] = {}
        self._loaded: dict[str, float] = {}
        self._lock = threading.Lock()

    def saw(self, rows: Iterable[LedgerEntry]) -> None:
        with self._lock:
            now = self._monotonic()
            self._keys.update((row.send_key, (row, now)) for row in rows)

    def absent(self, keys: Iterable[str]) -> None:
        with self._lock:
            now = self._monotonic()
            self._keys.update((key, (None, now)) for key in keys)

    def loaded(self, lead_ids: Iterable[str], rows: Iterable[LedgerEntry]) -> None:
        with self._lock:
            now = self._monotonic()
            self._forget_before(now - self.ttl)
            self._loaded.update((lead_id, now) for lead_id in lead_ids)
            self._keys.update((row.send_key, (row, now)) for row in rows)

    def state(self, entry: LedgerEntry) -> _KeyState:
        with self._lock:
            fresh_after = self._monotonic() - self.ttl
            row, seen = self._keys.get(entry.send_key, (None, -float("inf")))
            if seen > fresh_after:
                if row is None:
                    return _KeyState.NEW
                return _KeyState.RETRYABLE if row.retryable else _KeyState.TAKEN
            if self._loaded.get(entry.lead_id, -float("inf")) > fresh_after:
                return _KeyState.NEW  # the lead's rows were loaded and this key was not there
            return _KeyState.UNKNOWN

    def _forget_before(self, cutoff: float) -> None:
        self._keys = {k: v for k, v in self._keys.items() if v[1] > cutoff}
        self._loaded = {k: t for k, t in self._loaded.items() if t > cutoff}


# Values


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return _iso(value)
    return value


@cache
def _blank_cells(model: type[BaseModel]) -> dict[str, Any]:
    """What the model's fields are when Airtable leaves them out of a record: it answers an
    unticked checkbox and an empty text alike, by omission."""
    blanks: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        if f.annotation is bool:
            blanks[f.alias or name] = False
        elif f.annotation is str and f.is_required():
            blanks[f.alias or name] = ""
    return blanks


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _any_of(expression: Formula, values: Iterable[Any]) -> Formula:
    return OR(*(EQ(expression, value) for value in values))


def _e164(raw: Any) -> Any:
    with suppress(InvalidPhone):
        return to_e164(raw)
    return raw


class AirtableStore:
    """LeadStore on an Airtable base. Thread-safe; share one per process."""

    def __init__(
        self,
        token: str,
        base_id: str,
        *,
        api_url: str = "https://api.airtable.com",
        tables: AirtableTables = DEFAULT_TABLES,
        tuning: AirtableTuning = DEFAULT_TUNING,
        cluster_rate_limit: bool | None = None,
    ) -> None:
        """`cluster_rate_limit` None uses the Prefect limit exactly when a server is configured."""
        self.base_id = base_id
        self.tables = tables
        self.tuning = tuning
        gate = _gate_for(api_url, base_id, tuning, cluster_rate_limit)
        self.api = Api(token, endpoint_url=api_url, timeout=tuning.timeout, retry_strategy=None)
        self.api.session = _AirtableSession(gate, tuning)
        self.api.api_key = token  # puts the token on the new session
        self._leads = self.api.table(base_id, tables.leads)
        self._settings = self.api.table(base_id, tables.settings)
        self._templates = self.api.table(base_id, tables.templates)
        self._audit = self.api.table(base_id, tables.audit)
        self._computed: dict[str, frozenset[str]] | None = None
        self._settings_id: str | None = None
        self._lock = threading.Lock()
        self._stops = _StopCheck(tuning.stop_check_seconds, self._stop_flags_in_airtable)
        self._ledger = _LedgerMemory(tuning.ledger_memory_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> AirtableStore:
        """The store of `UYSP_STORE=airtable`: token, base, endpoint and tables from settings,
        and the tuning settings the Settings model has (TUNING_SETTINGS)."""
        if settings.airtable_token is None or not settings.airtable_base_id:
            raise ValueError("UYSP_AIRTABLE_TOKEN and UYSP_AIRTABLE_BASE_ID are required")
        tuning = {
            field: getattr(settings, name)
            for field, name in TUNING_SETTINGS.items()
            if hasattr(settings, name)
        }
        return cls(
            settings.airtable_token.get_secret_value(),
            settings.airtable_base_id,
            api_url=settings.airtable_api_url,
            tables=AirtableTables(
                leads=settings.airtable_leads_table,
                settings=settings.airtable_settings_table,
                templates=settings.airtable_templates_table,
                audit=settings.airtable_audit_table,
            ),
            tuning=AirtableTuning(**tuning),
        )

    # Settings and templates
    def get_settings(self) -> CampaignSettings:
        record = self._settings.first()
        if record is None:
            return CampaignSettings()
        self._settings_id = record["id"]
        return self._model(CampaignSettings, self._settings, record)

    def update_settings(self, **fields: Any) -> None:
        unknown = set(fields) - set(SETTINGS_FIELDS)
        if unknown:
            raise ValueError(f"Settings has no field {', '.join(sorted(unknown))}")
        cells = self._writable(
            self._settings, {SETTINGS_FIELDS[k]: _cell(v) for k, v in fields.items()}
        )
        if self._settings_id is None and (first := self._settings.first()) is not None:
            self._settings_id = first["id"]
        if self._settings_id is None:
            (created,) = self._settings.batch_create([cells], typecast=True)
            self._settings_id = created["id"]
        elif cells:
            self._settings.batch_update([{"id": self._settings_id, "fields": cells}], typecast=True)

    def list_templates(self, campaign: str) -> list[Template]:
        records = self._select(self._templates, EQ(Field(TEMPLATE_FIELDS["campaign"]), campaign))
        return [self._model(Template, self._templates, r) for r in records]

    def save_templates(self, templates: Iterable[Template]) -> None:
        records = [
            {"fields": self._writable(self._templates, t.airtable_fields())} for t in templates
        ]
        if records:
            self._templates.batch_upsert(records, key_fields=TEMPLATE_KEY, typecast=True)

    # Leads
    def add_leads(self, leads: Iterable[Lead]) -> list[Lead]:
        """Insert new leads; Airtable assigns their ids (a given id is not kept)."""
        cells = [self._writable(self._leads, lead.airtable_fields()) for lead in leads]
        if not cells:
            return []
        at = time.monotonic()
        added = [self._lead(r) for r in self._leads.batch_create(cells, typecast=True)]
        self._stops.read(added, at)
        return added

    def select_active_leads(self) -> list[Lead]:
        return self._read_leads(_any_of(Field(STATUS), sorted(ACTIVE_STATUSES)))

    def all_leads(self) -> list[Lead]:
        return self._read_leads(None)

    def leads_in_status(self, statuses: Iterable[ProcessingStatus]) -> list[Lead]:
        values = [ProcessingStatus(s).value for s in statuses]
        return self._read_leads(_any_of(Field(STATUS), values)) if values else []

    def get_leads(self, lead_ids: Sequence[str]) -> list[Lead]:
        return self._leads_where(RECORD_ID(), list(dict.fromkeys(lead_ids)))

    def find_leads(
        self,
        *,
        ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
    ) -> list[Lead]:
        """Phones match whatever spelling the base has: Airtable compares the last ten digits,
        and a candidate counts when its number reads as the same E.164 number."""
        numbers = set()
        for raw in phones:
            with suppress(InvalidPhone):
                numbers.add(to_e164(raw))
        digits = RIGHT(REGEX_REPLACE(Field(PHONE), "[^0-9]", ""), 10)
        found = {x.id: x for x in self.get_leads(ids)}
        lowered = sorted({e.strip().lower() for e in emails if e.strip()})
        found |= {x.id: x for x in self._leads_where(LOWER(Field(EMAIL)), lowered)}
        candidates = self._leads_where(digits, sorted({n[-10:] for n in numbers}))
        found |= {x.id: x for x in candidates if x.phone in numbers}
        return list(found.values())

    def leads_with_links(self, sent_since: datetime) -> list[Lead]:
        return self._read_leads(
            AND(
                NE(Field(LEAD_FIELDS["short_link_id"]), ""),
                GTE(Field(LEAD_FIELDS["last_sent_at"]), sent_since.astimezone(UTC)),
            )
        )

    def stopped_among(self, lead_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(lead_ids))
        return self._stops.stopped_among(ids) if ids else set()

    def update_leads(self, updates: Mapping[str, LeadFields]) -> None:
        records = []
        for lead_id, fields in updates.items():
            unknown = set(fields) - set(LEAD_FIELDS)
            if unknown:
                raise ValueError(f"Leads has no field {', '.join(sorted(unknown))}")
            cells = self._writable(
                self._leads, {LEAD_FIELDS[k]: _cell(v) for k, v in fields.items()}
            )
            if cells:
                records.append({"id": lead_id, "fields": cells})
        if records:
            self._leads.batch_update(records, typecast=True)
        self._stops.wrote(updates)

    # The ledger
    def reserve_sends(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        unique: dict[str, LedgerEntry] = {}
        for entry in entries:
            unique.setdefault(entry.send_key, entry)
        self._look_up_keys(
            [e for e in unique.values() if self._ledger.state(e) is _KeyState.UNKNOWN]
        )
        before = {key: self._ledger.state(e) for key, e in unique.items()}
        rows = [
            e.model_copy(update={"status": LedgerStatus.RESERVED})
            for key, e in unique.items()
            if before[key] in (_KeyState.NEW, _KeyState.RETRYABLE)
        ]
        if not rows:
            return []
        result = self._write_ledger(rows)
        created = {
            r["fields"].get(SEND_KEY)
            for r in result["records"]
            if r["id"] in result["createdRecords"]
        }
        reserved = []
        for row in rows:
            if row.send_key in created or before[row.send_key] is _KeyState.RETRYABLE:
                reserved.append(row)
            else:
                log.error(
                    "ledger %s: Send Key %s was already there; not sending it (reconciliation"
                    " will judge the row)",
                    self.tables.audit,
                    row.send_key,
                )
        self._stops.expect(row.lead_id for row in reserved)
        return reserved

    def record_sends(
        self, entries: Sequence[LedgerEntry], lead_updates: Mapping[str, LeadFields]
    ) -> None:
        """Ledger rows first, then the leads: if the lead write is lost, the next run repairs the
        lead from the ledger."""
        if entries:
            self._write_ledger(entries)
        self.update_leads(lead_updates)
        self._stops.done(e.lead_id for e in entries)

    def ledger_by_message_ids(self, message_ids: Sequence[str]) -> list[LedgerEntry]:
        message_id = Field(LEDGER_FIELDS["provider_message_id"])
        rows: list[LedgerEntry] = []
        for chunk in _chunks(list(dict.fromkeys(message_ids)), self.tuning.ids_per_formula):
            rows += self._read_ledger(AND(NE(Field(SEND_KEY), ""), _any_of(message_id, chunk)))
        return rows

    def update_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            self._write_ledger(entries)

    def ledger_rows(
        self,
        *,
        statuses: Iterable[LedgerStatus] | None = None,
        since: datetime | None = None,
        lead_ids: Sequence[str] | None = None,
    ) -> list[LedgerEntry]:
        """Rows by status, reservation time and lead. Looking rows up by lead id also tells the
        store which leads are about to be texted: the scheduler does it for exactly those."""
        conditions = [NE(Field(SEND_KEY), "")]  # rows of the old audit log have no key
        if statuses is not None:
            conditions.append(_any_of(Field(LEDGER_FIELDS["status"]), [s.value for s in statuses]))
        if since is not None:
            conditions.append(GTE(Field(LEDGER_FIELDS["reserved_at"]), since.astimezone(UTC)))
        if lead_ids is None:
            return self._read_ledger(AND(*conditions), sort=[LEDGER_FIELDS["reserved_at"]])
        ids = list(dict.fromkeys(lead_ids))
        rows: list[LedgerEntry] = []
        for chunk in _chunks(ids, self.tuning.ids_per_formula):
            lead_is = _any_of(Field(LEDGER_FIELDS["lead_id"]), chunk)
            rows += self._read_ledger(AND(*conditions, lead_is))
        if statuses is None and since is None:
            self._ledger.loaded(ids, rows)
            self._stops.expect(ids, replace=True)
        return rows

    # Requests
    def _select(self, table: Table, formula: Formula | None, **options: Any) -> list[dict]:
        if formula is not None:
            options["formula"] = to_formula_str(formula)
        return table.all(page_size=100, **options)

    def _leads_where(self, expression: Formula, values: Sequence[str]) -> list[Lead]:
        """Leads whose `expression` equals one of the values, in chunked OR() lookups."""
        leads: list[Lead] = []
        for chunk in _chunks(values, self.tuning.ids_per_formula):
            leads += self._read_leads(_any_of(expression, chunk))
        return leads

    def _read_leads(self, formula: Formula | None) -> list[Lead]:
        at = time.monotonic()
        leads = [self._lead(r) for r in self._select(self._leads, formula)]
        self._stops.read(leads, at)
        return leads

    def _read_ledger(self, formula: Formula, **options: Any) -> list[LedgerEntry]:
        rows = [
            self._model(LedgerEntry, self._audit, r)
            for r in self._select(self._audit, formula, **options)
        ]
        self._ledger.saw(rows)
        return rows

    def _look_up_keys(self, entries: Sequence[LedgerEntry]) -> None:
        keys = [e.send_key for e in entries]
        for chunk in _chunks(keys, self.tuning.ids_per_formula):
            found = self._read_ledger(_any_of(Field(SEND_KEY), chunk))
            self._ledger.absent(set(chunk) - {row.send_key for row in found})

    def _write_ledger(self, entries: Sequence[LedgerEntry]) -> dict[str, Any]:
        """Upsert on Send Key: every ledger field is written, blanks included, so a reserved
        retry clears the old error; a retried request cannot make a second row."""
        records = [
            {"fields": self._writable(self._audit, e.model_dump(by_alias=True, mode="json"))}
            for e in entries
        ]
        result = self._audit.batch_upsert(records, key_fields=[SEND_KEY], typecast=True)
        self._ledger.saw(entries)
        return dict(result)

    def _stop_flags_in_airtable(self, lead_ids: Sequence[str]) -> dict[str, _StopFlags]:
        """Flags of the leads among these that must not be texted; the others are clear."""
        stopped = OR(Field(SMS_STOP), Field(BOOKED), NOT(_any_of(Field(STATUS), ACTIVE_STATUSES)))
        flags = {}
        for chunk in _chunks(lead_ids, self.tuning.ids_per_formula):
            formula = AND(_any_of(RECORD_ID(), chunk), stopped)
            for record in self._select(self._leads, formula, fields=[SMS_STOP, BOOKED, STATUS]):
                flags[record["id"]] = _StopFlags.of_cells(record["fields"])
        return flags

    # Reading and writing fields
    def _lead(self, record: dict) -> Lead:
        fields = dict(record["fields"])
        if PHONE in fields:
            fields[PHONE] = _e164(fields[PHONE])
        return self._model(Lead, self._leads, {"id": record["id"], "fields": fields})

    @staticmethod
    def _model(model: type[M], table: Table, record: Mapping[str, Any]) -> M:
        cells = _blank_cells(model) | dict(record["fields"])
        extra = {"id": record["id"]} if "id" in model.model_fields else {}
        try:
            return model.model_validate(cells | extra)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise StoreError(f"Airtable {table.name} record {record['id']}: {problems}") from exc

    def _writable(self, table: Table, cells: dict[str, Any]) -> dict[str, Any]:
        computed = self._computed_fields().get(table.name, frozenset())
        return {k: v for k, v in cells.items() if k not in computed}

    def _computed_fields(self) -> dict[str, frozenset[str]]:
        """Computed field names by table name and id, from the Meta API, once per store."""
        with self._lock:
            if self._computed is None:
                self._computed = {}
                try:
                    url = self.api.build_url("meta/bases", self.base_id, "tables")
                    tables = self.api.get(url)["tables"]
                except AirtableError as exc:
                    log.warning("cannot read the base schema (%s); writing every field", exc)
                    tables = []
                for table in tables:
                    names = frozenset(
                        f["name"] for f in table["fields"] if f["type"] in COMPUTED_TYPES
                    )
                    self._computed[table["id"]] = self._computed[table["name"]] = names
                    if names:
                        log.info("%s: computed fields never written: %s", table["name"], names)
            return self._computed
