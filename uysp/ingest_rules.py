"""Import rules, pure: which CSV column feeds which lead field, how a row becomes a lead, and how
a file's rows merge with each other and with the leads already stored.

Headers are matched loosely: "Phone Number (phone_number)", "phone", "Mobile Phone Number" and
"PHONE_NUMBER" all name a phone. A header is read by its label first, then by the key in
parentheses (export tools put their own field id there: "Company Name (custom_10)").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from uysp.eligibility import country_code
from uysp.models import Lead, ProcessingStatus
from uysp.phones import InvalidPhone, to_e164

# Lead fields (and two helpers: full_name, tags) by the header keys that name them, most
# preferred first: with both a "Phone Number" and a "Mobile Phone Number" column, a row's
# Phone Number wins and its mobile is used when that is blank or invalid.
HEADER_KEYS: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone",
        "phone_number",
        "phonenumber",
        "mobile",
        "mobile_phone",
        "mobile_phone_number",
        "mobile_number",
        "cell",
        "cell_phone",
        "telephone",
    ),
    "email": ("email", "email_address", "e_mail", "work_email"),
    "first_name": ("first_name", "firstname", "first", "given_name"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name"),
    "full_name": ("name", "full_name", "contact_name"),
    "company": ("company", "company_name", "organization", "organisation", "account_name"),
    "location_country": ("location_country", "country", "country_code"),
    "icp_score": ("icp_score", "icp", "score", "lead_score"),
    "tags": ("tags", "tag", "labels"),
    "lead_source": ("lead_source", "source"),
}
_KEY_TO_FIELD = {
    key: (name, rank) for name, keys in HEADER_KEYS.items() for rank, key in enumerate(keys)
}
_PAREN = re.compile(r"^(?P<label>.*?)\s*\((?P<key>[^()]*)\)\s*$")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_TAG_SPLIT = re.compile(r"[,;|]")

DEFAULT_CLIENT_TAG_PATTERNS = (
    r"(current |active )?(coaching )?client",
    r"(current |active )?customer",
)
"""Tags that mark a current coaching client, as regular expressions matched against a whole tag
(lower case, separators as single spaces): "Client", "current-client", "Coaching Client" match;
"former client" and "client prospect" do not."""


def header_key(text: str) -> str:
    return _NON_WORD.sub("_", text.strip().lower()).strip("_")


@dataclass(frozen=True)
class HeaderMap:
    header: tuple[str, ...]
    columns: dict[str, tuple[int, ...]]  # field -> column indexes, most preferred first
    ignored: tuple[str, ...]

    @property
    def used(self) -> dict[str, str]:
        """Column name -> the field it feeds."""
        return {self.header[i]: name for name, idx in self.columns.items() for i in idx}


def map_header(header: Sequence[str]) -> HeaderMap:
    ranked: dict[str, list[tuple[int, int]]] = {}
    ignored = []
    for index, column in enumerate(header):
        match = _PAREN.match(column)
        candidates = [match["label"], match["key"]] if match else [column]
        keys = [header_key(c) for c in candidates]
        found = next((_KEY_TO_FIELD[k] for k in keys if k in _KEY_TO_FIELD), None)
        if found is None:
            ignored.append(column)
            continue
        name, rank = found
        ranked.setdefault(name, []).append((rank, index))
    columns = {name: tuple(i for _, i in sorted(pairs)) for name, pairs in ranked.items()}
    return HeaderMap(tuple(header), columns, tuple(ignored))


def missing_identity(header_map: HeaderMap) -> bool:
    """True when no column can give a phone or an email: nothing could be imported."""
    return not ({"phone", "email"} & set(header_map.columns))


@dataclass(frozen=True)
class Row:
    """One input row, normalised: Lead attributes (blanks left out) and what was wrong."""

    line: int
    fields: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def phone(self) -> str | None:
        return self.fields["phone"] if self.fields.get("phone_valid") else None

    @property
    def email(self) -> str | None:
        return self.fields.get("email")


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    cells: tuple[str, ...]


def normalise_email(raw: str) -> str | None:
    """'  Ana.Lee@Example.COM ' -> 'ana.lee@example.com'; None when not an address."""
    email = raw.strip().removeprefix("mailto:").strip().lower()
    return email if _EMAIL.match(email) else None


def is_client(tags: str, patterns: Sequence[str]) -> bool:
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    for tag in _TAG_SPLIT.split(tags):
        cleaned = " ".join(re.split(r"[\s_\-]+", tag.strip().lower()))
        if cleaned and any(p.fullmatch(cleaned) for p in compiled):
            return True
    return False


def normalise_row(
    cells: Sequence[str],
    header_map: HeaderMap,
    line: int,
    *,
    client_tag_patterns: Sequence[str] = DEFAULT_CLIENT_TAG_PATTERNS,
) -> Row | Reject:
    """A row as Lead fields, or the reason it cannot be imported: it has more cells than the
    header (its columns may be shifted), or neither a valid phone nor a valid email."""
    cells = tuple(cells)
    if any(c.strip() for c in cells[len(header_map.header) :]):
        return Reject(
            line,
            f"{len(cells)} cells but the header has {len(header_map.header)}:"
            " the columns may be shifted",
            cells,
        )
    if not any(c.strip() for c in cells):
        return Reject(line, "blank row", cells)

    def values(name: str) -> list[str]:
        found = (cells[i].strip() for i in header_map.columns.get(name, ()) if i < len(cells))
        return [v for v in found if v]

    def first(name: str) -> str | None:
        return next(iter(values(name)), None)

    fields: dict[str, Any] = {}
    problems: list[str] = []
    for name in ("first_name", "last_name", "company", "location_country", "lead_source"):
        if value := first(name):
            fields[name] = value
    if "first_name" not in fields and (full := first("full_name")):
        first_name, _, last_name = full.partition(" ")
        fields["first_name"] = first_name
        if last_name.strip():
            fields.setdefault("last_name", last_name.strip())

    phones = values("phone")
    region = country_code(fields.get("location_country"))
    region = region if region and len(region) == 2 else "US"
    for raw in phones:
        try:
            fields |= {"phone": to_e164(raw, region), "phone_valid": True}
            break
        except InvalidPhone:
            continue
    else:
        if phones:
            fields |= {"phone": phones[0], "phone_valid": False}
            problems.append(f"Phone {phones[0]!r} is not a valid number")
        else:
            problems.append("Phone blank")

    if raw_email := first("email"):
        if email := normalise_email(raw_email):
            fields["email"] = email
        else:
            problems.append(f"Email {raw_email!r} is not a valid address")

    if score := first("icp_score"):
        try:
            fields["icp_score"] = float(score.rstrip("%").replace(",", "."))
        except ValueError:
            problems.append(f"ICP Score {score!r} is not a number")

    if any(is_client(tags, client_tag_patterns) for tags in values("tags")):
        fields["current_client"] = True

    if not fields.get("phone_valid") and "email" not in fields:
        return Reject(line, "no valid phone or email: " + "; ".join(problems), cells)
    return Row(line, fields, tuple(problems))


# Merging

DESCRIPTIVE = ("first_name", "last_name", "company", "location_country", "icp_score")
"""Fields a later row or a re-import may correct; sequence and SMS fields are never touched."""


@dataclass
class ImportPlan:
    new: list[Lead] = field(default_factory=list)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # existing id -> fields
    imported: int = 0
    merged: int = 0


@dataclass(frozen=True)
class ImportDefaults:
    """What every new lead of one import gets."""

    imported_at: datetime
    file_name: str  # the Lead Source of rows without one, unless `source` is given
    source: str | None = None  # the Lead Source of every row
    status: ProcessingStatus = ProcessingStatus.QUEUED
    campaign: str | None = None


def merge_fields(current: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `incoming` worth writing onto `current`: corrected descriptive fields, a
    phone or email where there was none valid, and the client mark (set, never cleared)."""
    changes: dict[str, Any] = {}
    for name in DESCRIPTIVE:
        if name in incoming and incoming[name] != current.get(name):
            changes[name] = incoming[name]
    if incoming.get("phone_valid") and not current.get("phone_valid"):
        changes |= {"phone": incoming["phone"], "phone_valid": True}
    if incoming.get("email") and not current.get("email"):
        changes["email"] = incoming["email"]
    if incoming.get("current_client") and not current.get("current_client"):
        changes["current_client"] = True
    return changes


def _lead_fields(lead: Lead) -> dict[str, Any]:
    return {
        "phone": lead.phone,
        "phone_valid": lead.phone_valid,
        "email": lead.email.lower() if lead.email else None,
        "current_client": lead.current_client,
        **{name: getattr(lead, name) for name in DESCRIPTIVE},
    }


def plan_import(
    rows: Iterable[Row], existing: Iterable[Lead], defaults: ImportDefaults
) -> ImportPlan:
    """New leads and merges, matching each row by phone, then by email, against the stored
    leads and the rows before it. A re-imported lead keeps its status and sequence."""
    plan = ImportPlan()
    stored = {lead.id: _lead_fields(lead) for lead in existing}
    original = {lead_id: dict(fields) for lead_id, fields in stored.items()}
    pending: dict[str, dict[str, Any]] = {}  # "line N" -> fields of a new lead
    by_phone: dict[str, str] = {}
    by_email: dict[str, str] = {}
    for lead_id, fields in stored.items():
        if fields["phone_valid"] and fields["phone"]:
            by_phone.setdefault(fields["phone"], lead_id)
        if fields["email"]:
            by_email.setdefault(fields["email"], lead_id)

    for row in rows:
        target = (row.phone and by_phone.get(row.phone)) or (row.email and by_email.get(row.email))
        if target:
            current = stored.get(target) or pending[target]
            changes = _owned(merge_fields(current, row.fields), target, by_phone, by_email)
            current.update(changes)
            if target in stored and changes:
                plan.updates.setdefault(target, {}).update(changes)
            plan.merged += 1
        else:
            target = f"line {row.line}"
            pending[target] = dict(row.fields)
            if row.problems:
                pending[target]["error_log"] = "import: " + "; ".join(row.problems)
            plan.imported += 1
        if row.phone:
            by_phone.setdefault(row.phone, target)
        if row.email:
            by_email.setdefault(row.email, target)

    plan.updates = {
        lead_id: changed
        for lead_id, fields in plan.updates.items()
        if (changed := {k: v for k, v in fields.items() if original[lead_id].get(k) != v})
    }
    for fields in pending.values():
        source = defaults.source or fields.get("lead_source") or defaults.file_name
        plan.new.append(
            Lead(
                id="",
                **(fields | {"lead_source": source}),
                imported_at=defaults.imported_at,
                processing_status=defaults.status,
                campaign_id=defaults.campaign,
            )
        )
    return plan


def _owned(
    changes: dict[str, Any], target: str, by_phone: Mapping[str, str], by_email: Mapping[str, str]
) -> dict[str, Any]:
    """Drop a phone or email that another lead already has: two leads never share one."""
    if by_phone.get(changes.get("phone"), target) != target:
        changes = {k: v for k, v in changes.items() if k not in ("phone", "phone_valid")}
    if by_email.get(changes.get("email"), target) != target:
        changes = {k: v for k, v in changes.items() if k != "email"}
    return changes
