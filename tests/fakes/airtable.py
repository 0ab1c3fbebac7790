"""A loopback Airtable: a real threaded HTTP server on 127.0.0.1 speaking the REST API subset the
store and `uysp setup airtable` use.

Records: list (GET, and POST .../listRecords) with `filterByFormula` (evaluated by
tests/fakes/airtable_formula.py), `pageSize`/`offset`, `maxRecords`, `fields[]` and `sort`;
create; update (PATCH, and PUT which clears what it does not set) and upsert
(`performUpsert.fieldsToMergeOn`). Meta: list tables, create a table, create a field.

Airtable's rules: at most 10 records per write; empty cells (blank, false, []) are left out of
answers; select options are created only with `typecast`; computed fields refuse writes; a GET
URL past 16,000 characters is refused, so long formulas must go as POST listRecords.

Rate limit: requests to a base beyond `requests_per_second` are answered 429 with Airtable's
body, and so is every request to that base for `rate_limit_penalty` seconds after (Airtable asks
for 30). The limit is a token bucket holding `burst` requests (one second's worth by default):
a sixth request at once, or a sustained rate above 5, is refused; a client pacing itself at 5 per
second is not, whatever a few milliseconds of jitter do to its arrival times.

Errors have Airtable's shape, `{"error": {"type", "message"}}`, with its types where its docs
name them: 401 AUTHENTICATION_REQUIRED, 403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND (unknown base
or table), 404 NOT_FOUND and MODEL_ID_NOT_FOUND, 422 UNKNOWN_FIELD_NAME,
INVALID_FILTER_BY_FORMULA, INVALID_VALUE_FOR_COLUMN, INVALID_MULTIPLE_CHOICE_OPTIONS; the other
refusals (too many records, duplicate names, a bad offset) carry descriptive types.

For tests: `latency` delays every answer; `counts` tallies requests by kind (list, create,
update, meta, other) and 429s (rate_limited), `records_served` the records listed; `fail_next`
and `drop_next` inject server errors and lost connections; `add_base`, `insert`, `update` and
`records` reach the data directly, without a request. With `journal=True` every change to a
record is kept in `changes`, stamped by `clock` (a simulation passes its own).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.airtable_formula import FormulaError, Row, as_text, compile_formula, parse_datetime

MAX_RECORDS_PER_WRITE = 10
MAX_PAGE_SIZE = 100
MAX_URL_LENGTH = 16_000
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
TEXT_TYPES = frozenset(
    {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
)
NUMBER_TYPES = frozenset({"number", "currency", "percent", "rating", "duration"})
DATE_TYPES = frozenset({"date", "dateTime"})
# Options the Meta API insists on when a field of these types is created.
REQUIRED_OPTIONS = {
    "number": {"precision"},
    "currency": {"precision", "symbol"},
    "percent": {"precision"},
    "checkbox": {"icon", "color"},
    "date": {"dateFormat"},
    "dateTime": {"dateFormat", "timeFormat", "timeZone"},
    "singleSelect": {"choices"},
    "multipleSelects": {"choices"},
}
CREATABLE_TYPES = TEXT_TYPES | frozenset(REQUIRED_OPTIONS)
RATE_LIMITED_BODY = {
    "errors": [
        {"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Please try again later"}
    ]
}
_SORT_PARAM = re.compile(r"sort\[(\d+)\]\[(field|direction)\]")
_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AirtableFailure(Exception):
    """An error answer: HTTP status and Airtable's body."""

    def __init__(self, status: int, error_type: str, message: str | None = None) -> None:
        super().__init__(f"{status} {error_type}")
        self.status = status
        self.body: Any = (
            {"error": {"type": error_type, "message": message}}
            if message
            else {"error": error_type}
        )


def _sort_key(value: Any) -> tuple:
    """Blanks first, then numbers by value and everything else by its text."""
    if value is None:
        return (0, 0, "")
    if isinstance(value, int | float):
        return (1, value, "")
    return (1, 0, as_text(value))


def _invalid_value(name: str) -> AirtableFailure:
    return AirtableFailure(
        422, "INVALID_VALUE_FOR_COLUMN", f'Field "{name}" cannot accept the provided value'
    )


@dataclass
class FakeTable:
    id: str
    name: str
    fields: list[dict[str, Any]]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def field(self, name_or_id: str) -> dict[str, Any] | None:
        return next((f for f in self.fields if name_or_id in (f["name"], f["id"])), None)

    def model(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "primaryFieldId": self.fields[0]["id"],
            "fields": copy.deepcopy(self.fields),
            "views": [{"id": "viwGridView0000000", "name": "Grid view", "type": "grid"}],
        }


@dataclass
class FakeBase:
    id: str
    tables: list[FakeTable] = field(default_factory=list)
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    penalty_until: float = 0.0
    cursors: dict[str, list[str]] = field(default_factory=dict)

    def table(self, name_or_id: str) -> FakeTable:
        for table in self.tables:
            if name_or_id in (table.id, table.name):
                return table
        raise _forbidden()


@dataclass(frozen=True)
class Change:
    """One change to a record: the cells it set (None: cleared), when, in which table."""

    at: datetime
    table: str
    record_id: str
    cells: dict[str, Any]


@dataclass(frozen=True)
class _Fault:
    kind: str | None  # list, create, update, meta; None for any request
    action: str  # status, drop, drop_after
    status: int = 0


@dataclass(frozen=True)
class _Request:
    method: str
    parts: list[str]  # the URL path, unquoted: ["v0", base, table, ...]
    query: dict[str, list[str]]
    body: dict[str, Any]


def _forbidden() -> AirtableFailure:
    return AirtableFailure(
        403,
        "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        "Invalid permissions, or the requested model was not found. Check that both your user"
        " and your token have the required permissions, and that the model names and/or ids"
        " are correct.",
    )


def _new_field(spec: Mapping[str, Any]) -> dict[str, Any]:
    name, kind = str(spec.get("name") or "").strip(), spec.get("type")
    if not name:
        raise AirtableFailure(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", "Field name is empty")
    if kind not in CREATABLE_TYPES:
        raise AirtableFailure(
            422, "UNSUPPORTED_FIELD_TYPE_FOR_CREATE", f"Field type {kind!r} cannot be created"
        )
    options = dict(spec.get("options") or {})
    missing = REQUIRED_OPTIONS.get(kind, set()) - set(options)
    if missing:
        raise AirtableFailure(
            422,
            "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE",
            f"Field {name!r} of type {kind} needs options {sorted(missing)}",
        )
    if "choices" in options:
        options["choices"] = [{"id": new_id("sel"), **c} for c in options["choices"]]
    made = {"id": new_id("fld"), "name": name, "type": kind}
    return made | ({"options": options} if options else {})


class FakeAirtable:
    """The server and its bases. Use as a context manager, or start() and stop()."""

    def __init__(
        self,
        *,
        token: str = "pat-test-token",
        latency: float = 0.0,
        requests_per_second: float = 5,
        burst: float | None = None,
        rate_limit_penalty: float = 30.0,
        clock: Callable[[], datetime] | None = None,
        journal: bool = False,
    ) -> None:
        self.token = token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.journal = journal
        self.changes: list[Change] = []
        self.latency = latency
        self.requests_per_second = requests_per_second
        self.burst = requests_per_second if burst is None else burst
        self.rate_limit_penalty = rate_limit_penalty
        self.counts: Counter[str] = Counter()
        self.records_served = 0
        self._faults: list[_Fault] = []
        self._bases: dict[str, FakeBase] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # Lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAirtable:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAirtable:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Direct access for tests: no HTTP, no counting, no rate limit
    def add_base(
        self, tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, base_id: str = ""
    ) -> str:
        """A base with these tables ({name: [Airtable field models]}); returns its id.
        Computed fields (formula, rollup...) may be declared here, though not over HTTP."""
        base = FakeBase(base_id or new_id("app"), tokens=self.burst)
        for name, fields in (tables or {}).items():
            made = [
                {"id": new_id("fld"), **copy.deepcopy(dict(spec))}
                if spec.get("type") in COMPUTED_TYPES
                else _new_field(spec)
                for spec in fields
            ]
            base.tables.append(FakeTable(new_id("tbl"), name, made))
        with self._lock:
            self._bases[base.id] = base
        return base.id

    def insert(self, base_id: str, table: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        with self._lock:
            target = self._bases[base_id].table(table)
            return [self._create(target, row, typecast=True)["id"] for row in rows]

    def update(self, base_id: str, table: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Change a record as another Airtable client (an operator, a webhook) would."""
        with self._lock:
            target = self._bases[base_id].table(table)
            self._apply(target, target.records[record_id], fields, typecast=True, replace=False)

    def records(self, base_id: str, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._bases[base_id].table(table).records.values()))

    def table_fields(self, base_id: str, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._bases[base_id].table(table).fields)

    @property
    def total_requests(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "rate_limited")

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.records_served = 0

    # HTTP
    # Faults, for the next requests (of one kind, or any)
    def fail_next(self, status: int = 503, *, times: int = 1, kind: str | None = None) -> None:
        """Answer with a server error, as Airtable does when it is down."""
        with self._lock:
            self._faults += [_Fault(kind, "status", status)] * times

    def drop_next(
        self, *, times: int = 1, kind: str | None = None, after_processing: bool = False
    ) -> None:
        """Close the connection without an answer; `after_processing`: once the request took
        effect, as when the answer is lost on the way back."""
        with self._lock:
            self._faults += [_Fault(kind, "drop_after" if after_processing else "drop")] * times

    def _take_fault(self, kind: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in (None, kind):
                    self._faults.remove(fault)
                    return fault
        return None

    def handle(
        self, method: str, target: str, authorization: str | None, raw: bytes
    ) -> tuple[int, Any] | None:
        """The answer to one request, or None to hang up without one."""
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query, keep_blank_values=True)
        kind, base_id, handler = self._route(method, parts)
        with self._lock:
            self.counts[kind] += 1
        fault = self._take_fault(kind)
        if fault is not None and fault.action == "drop":
            return None
        if fault is not None and fault.action == "status":
            return fault.status, {"error": {"type": "SERVER_ERROR", "message": "Try again."}}
        try:
            if authorization != f"Bearer {self.token}":
                raise AirtableFailure(401, "AUTHENTICATION_REQUIRED", "Authentication required")
            if handler is None:
                raise AirtableFailure(404, "NOT_FOUND")
            if method == "GET" and len(target) > MAX_URL_LENGTH:
                raise AirtableFailure(414, "URL_TOO_LONG", "Use POST .../listRecords")
            with self._lock:
                base = self._bases.get(base_id)
                if base is None:
                    raise _forbidden()
                self._admit(base)
            if self.latency:
                time.sleep(self.latency)
            request = _Request(method, parts, query, json.loads(raw) if raw else {})
            with self._lock:
                answer = 200, handler(base, request)
        except AirtableFailure as failure:
            answer = failure.status, failure.body
        except json.JSONDecodeError:
            answer = 400, {"error": {"type": "INVALID_REQUEST_BODY", "message": "Invalid JSON"}}
        return None if fault is not None else answer

    def _route(self, method: str, parts: list[str]):
        if parts[:3] == ["v0", "meta", "bases"] and len(parts) >= 5 and parts[4] == "tables":
            if len(parts) == 5 and method in ("GET", "POST"):
                handler = self._list_tables if method == "GET" else self._create_table
                return "meta", parts[3], handler
            if len(parts) == 7 and parts[6] == "fields" and method == "POST":
                return "meta", parts[3], self._create_field
            return "meta", parts[3], None
        if parts[:1] == ["v0"] and len(parts) == 3:
            handlers = {
                "GET": ("list", self._list),
                "POST": ("create", self._create_records),
                "PATCH": ("update", self._update_records),
                "PUT": ("update", self._update_records),
            }
            kind, handler = handlers.get(method, ("other", None))
            return kind, parts[1], handler
        if parts[:1] == ["v0"] and len(parts) == 4 and parts[3] == "listRecords":
            return "list", parts[1], self._list if method == "POST" else None
        return "other", "", None

    def _admit(self, base: FakeBase) -> None:
        now = time.monotonic()
        refill = (now - base.refilled) * self.requests_per_second
        base.tokens, base.refilled = min(self.burst, base.tokens + refill), now
        if now < base.penalty_until or base.tokens < 1:
            base.penalty_until = max(base.penalty_until, now + self.rate_limit_penalty)
            self.counts["rate_limited"] += 1
            failure = AirtableFailure(429, "RATE_LIMIT_REACHED")
            failure.body = RATE_LIMITED_BODY
            raise failure
        base.tokens -= 1

    # Listing
    def _list(self, base: FakeBase, request: _Request) -> dict:
        table = base.table(request.parts[2])
        options = request.body if request.method == "POST" else self._list_options(request.query)
        page_size = int(options.get("pageSize") or MAX_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise AirtableFailure(
                422, "INVALID_PAGE_SIZE", f"pageSize must be at most {MAX_PAGE_SIZE}"
            )
        wanted = options.get("fields")
        for name in [*(wanted or []), *(s["field"] for s in options.get("sort") or [])]:
            if table.field(name) is None:
                raise AirtableFailure(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        offset = options.get("offset")
        if offset:
            if offset not in base.cursors:
                raise AirtableFailure(
                    422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "The offset is not valid"
                )
            ids = base.cursors[offset]
        else:
            ids = self._matching(table, options)
        page, rest = ids[:page_size], ids[page_size:]
        self.records_served += len(page)
        answer: dict[str, Any] = {
            "records": [self._shape(table.records[i], wanted) for i in page if i in table.records]
        }
        if rest:
            cursor = f"itr{secrets.token_hex(8)}/{rest[0]}"
            base.cursors[cursor] = rest
            answer["offset"] = cursor
        return answer

    @staticmethod
    def _list_options(query: dict[str, list[str]]) -> dict[str, Any]:
        options: dict[str, Any] = {k: v[0] for k, v in query.items() if not k.startswith("sort[")}
        if "fields[]" in query:
            options["fields"] = query["fields[]"]
        sort: dict[int, dict[str, str]] = {}
        for key, values in query.items():
            if match := _SORT_PARAM.fullmatch(key):
                sort.setdefault(int(match[1]), {})[match[2]] = values[0]
        options["sort"] = [sort[i] for i in sorted(sort)]
        return options

    def _matching(self, table: FakeTable, options: dict[str, Any]) -> list[str]:
        formula = (options.get("filterByFormula") or "").strip()
        records = list(table.records.values())
        if formula:
            types = {f["name"]: f["type"] for f in table.fields}

            def cell(name: str, row: Row) -> Any:
                value = row.cells.get(name)
                return parse_datetime(value) if value and types[name] in DATE_TYPES else value

            try:
                keep = compile_formula(formula, set(types), cell)
            except FormulaError as exc:
                raise AirtableFailure(
                    422,
                    "INVALID_FILTER_BY_FORMULA",
                    f"The formula for filtering records is invalid: {exc}",
                ) from exc
            records = [r for r in records if keep(Row(r["id"], r["fields"]))]
        for rule in reversed(options.get("sort") or []):
            records.sort(
                key=lambda r, name=rule["field"]: _sort_key(r["fields"].get(name)),
                reverse=rule.get("direction") == "desc",
            )
        limit = int(options.get("maxRecords") or 0)
        return [r["id"] for r in (records[:limit] if limit else records)]

    @staticmethod
    def _shape(record: dict[str, Any], wanted: Sequence[str] | None) -> dict[str, Any]:
        cells = record["fields"]
        if wanted is not None:
            cells = {k: v for k, v in cells.items() if k in wanted}
        return {"id": record["id"], "createdTime": record["createdTime"], "fields": dict(cells)}

    # Writing
    @staticmethod
    def _records_of(body: dict, *, need_id: bool) -> list[dict[str, Any]]:
        records = body.get("records")
        if (
            not isinstance(records, list)
            or not 1 <= len(records) <= MAX_RECORDS_PER_WRITE
            or not all(isinstance(r, dict) and isinstance(r.get("fields"), dict) for r in records)
            or (need_id and not all(r.get("id") for r in records))
        ):
            raise AirtableFailure(
                422,
                "INVALID_RECORDS",
                f"You must provide an array of up to {MAX_RECORDS_PER_WRITE} record objects",
            )
        return records

    def _create_records(self, base: FakeBase, request: _Request) -> dict:
        table, body = base.table(request.parts[2]), request.body
        typecast = bool(body.get("typecast"))
        if "fields" in body and "records" not in body:
            return self._create(table, body["fields"], typecast)
        records = self._records_of(body, need_id=False)
        for record in records:
            self._cells(table, record["fields"], typecast)  # all or nothing
        return {"records": [self._create(table, r["fields"], typecast) for r in records]}

    def _update_records(self, base: FakeBase, request: _Request) -> dict:
        table, body = base.table(request.parts[2]), request.body
        typecast = bool(body.get("typecast"))
        merge_on = (body.get("performUpsert") or {}).get("fieldsToMergeOn")
        records = self._records_of(body, need_id=not merge_on)
        targets = [self._target(table, r, merge_on, typecast) for r in records]
        for record in records:
            self._cells(table, record["fields"], typecast)
        answer: dict[str, Any] = {"records": []}
        created, updated = [], []
        for record, target in zip(records, targets, strict=True):
            if target is None:
                done = self._create(table, record["fields"], typecast)
                created.append(done["id"])
            else:
                replace = request.method == "PUT"
                done = self._apply(table, target, record["fields"], typecast, replace)
                updated.append(done["id"])
            answer["records"].append(self._shape(done, None))
        if merge_on:
            answer |= {"createdRecords": created, "updatedRecords": updated}
        return answer

    def _target(
        self, table: FakeTable, record: dict, merge_on: list[str] | None, typecast: bool
    ) -> dict[str, Any] | None:
        if record.get("id"):
            if record["id"] not in table.records:
                raise AirtableFailure(404, "MODEL_ID_NOT_FOUND", "Record not found")
            return table.records[record["id"]]
        assert merge_on is not None
        for name in merge_on:
            if table.field(name) is None:
                raise AirtableFailure(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if name not in record["fields"]:
                raise AirtableFailure(
                    422, "INVALID_REQUEST_UNKNOWN", f'Upsert record lacks "{name}"'
                )
        key = self._cells(table, {n: record["fields"][n] for n in merge_on}, typecast)
        matches = [
            r
            for r in table.records.values()
            if all(r["fields"].get(name) == value for name, value in key.items())
        ]
        if len(matches) > 1:
            raise AirtableFailure(
                422,
                "INVALID_VALUE_FOR_COLUMN",
                f"More than one record matches fieldsToMergeOn {merge_on}",
            )
        return matches[0] if matches else None

    def _create(self, table: FakeTable, cells: Mapping[str, Any], typecast: bool) -> dict:
        record = {"id": new_id("rec"), "createdTime": _iso_now(), "fields": {}}
        self._apply(table, record, cells, typecast, replace=False)
        table.records[record["id"]] = record
        return self._shape(record, None)

    def _apply(
        self,
        table: FakeTable,
        record: dict[str, Any],
        cells: Mapping[str, Any],
        typecast: bool,
        replace: bool,
    ) -> dict[str, Any]:
        values = self._cells(table, cells, typecast)
        if self.journal:
            self.changes.append(Change(self.clock(), table.name, record["id"], dict(values)))
        if replace:
            computed = {f["name"] for f in table.fields if f["type"] in COMPUTED_TYPES}
            record["fields"] = {k: v for k, v in record["fields"].items() if k in computed}
        for name, value in values.items():
            if value is None:
                record["fields"].pop(name, None)
            else:
                record["fields"][name] = value
        return self._shape(record, None)

    def _cells(self, table: FakeTable, cells: Mapping[str, Any], typecast: bool) -> dict[str, Any]:
        values = {}
        for name, value in cells.items():
            spec = table.field(name)
            if spec is None:
                raise AirtableFailure(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if spec["type"] in COMPUTED_TYPES:
                raise AirtableFailure(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f'Field "{name}" cannot accept a value because the field is computed',
                )
            values[spec["name"]] = self._cell(spec, value, typecast)
        return values

    @staticmethod
    def _cell(spec: dict[str, Any], value: Any, typecast: bool) -> Any:
        """The stored form of one value; None clears the cell."""
        kind, name = spec["type"], spec["name"]
        if value is None or value == "" or value == []:
            return None
        if kind == "checkbox":
            if not isinstance(value, bool):
                raise _invalid_value(name)
            return True if value else None
        if kind in NUMBER_TYPES:
            if isinstance(value, bool):
                raise _invalid_value(name)
            if isinstance(value, str) and typecast:
                try:
                    value = float(value)
                except ValueError as exc:
                    raise _invalid_value(name) from exc
            if not isinstance(value, int | float):
                raise _invalid_value(name)
            return int(value) if float(value).is_integer() else value
        if kind in DATE_TYPES:
            try:
                parsed = parse_datetime(str(value)).astimezone(UTC)
            except FormulaError as exc:
                raise _invalid_value(name) from exc
            if kind == "date":
                return parsed.date().isoformat()
            return as_text(parsed)
        if isinstance(value, int | float) and not isinstance(value, bool) and typecast:
            value = as_text(value)
        if kind == "singleSelect":
            if not isinstance(value, str):
                raise _invalid_value(name)
            choices = spec.setdefault("options", {}).setdefault("choices", [])
            if value not in {c["name"] for c in choices}:
                if not typecast:
                    raise AirtableFailure(
                        422,
                        "INVALID_MULTIPLE_CHOICE_OPTIONS",
                        f'Insufficient permissions to create new select option ""{value}""',
                    )
                choices.append({"id": new_id("sel"), "name": value})
            return value
        if kind in TEXT_TYPES and not isinstance(value, str):
            raise _invalid_value(name)
        return value

    # Meta API
    def _list_tables(self, base: FakeBase, request: _Request) -> dict:
        return {"tables": [table.model() for table in base.tables]}

    def _create_table(self, base: FakeBase, request: _Request) -> dict:
        body = request.body
        name = str(body.get("name") or "").strip()
        if not name or any(t.name.lower() == name.lower() for t in base.tables):
            raise AirtableFailure(
                422, "DUPLICATE_TABLE_NAME", f"A table named {name!r} already exists"
            )
        specs = body.get("fields") or []
        if not specs:
            raise AirtableFailure(422, "INVALID_REQUEST_UNKNOWN", "A table needs fields")
        names = [str(s.get("name") or "").lower() for s in specs]
        if len(set(names)) != len(names):
            raise AirtableFailure(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", "Duplicate field names")
        table = FakeTable(new_id("tbl"), name, [_new_field(s) for s in specs])
        base.tables.append(table)
        return table.model()

    def _create_field(self, base: FakeBase, request: _Request) -> dict:
        table, body = base.table(request.parts[5]), request.body
        name = str(body.get("name") or "").strip()
        if any(f["name"].lower() == name.lower() for f in table.fields):
            raise AirtableFailure(
                422, "DUPLICATE_OR_EMPTY_FIELD_NAME", f"A field named {name!r} already exists"
            )
        made = _new_field(body)
        table.fields.append(made)
        return copy.deepcopy(made)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on a delayed ACK: +40 ms each
    server: Any

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer = self.server.fake.handle(
            self.command, self.path, self.headers.get("Authorization"), raw
        )
        if answer is None:
            self.close_connection = True
            return
        status, body = answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
