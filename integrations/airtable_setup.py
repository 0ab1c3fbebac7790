"""`uysp setup airtable`: the tables and fields the store uses, created where they are missing.

The wanted schema is derived from the models (uysp/models.py), so every field the code reads or
writes is covered, including those beyond DESIGN.md (`Reserved At`, `Error Class`, `Send Start
Hour`, `Send End Hour`, `Send Weekdays`). Running it again changes nothing. Existing fields are
never changed: one whose type differs from what setup would create is reported and left alone
(the store writes with typecast, so a text field in place of a select still works), and computed
ones are reported as never written by the store. An empty Settings table gets its one row, with
`SMS Sending` Paused so nothing goes out before an operator has looked.

Pass the store's `api` (`AirtableStore(...).api`) to get its pacing and 429 handling.

`ensure_airtable_rate_limit` creates the Prefect global rate limit `airtable` that the stores of
every worker share when a Prefect server is configured (they use it strictly: without it they
refuse to run).
"""

from __future__ import annotations

import typing
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from pyairtable import Api
from pydantic import BaseModel

from integrations.airtable import (
    CLUSTER_LIMIT,
    COMPUTED_TYPES,
    DEFAULT_TABLES,
    DEFAULT_TUNING,
    AirtableTables,
    AirtableTuning,
)
from uysp.models import CampaignSettings, Lead, LedgerEntry, SmsStatus, StopReason, Template

PAUSED_SETTINGS = {"SMS Sending": "Paused"}
_CHECKBOX = {"type": "checkbox", "options": {"icon": "check", "color": "greenBright"}}
_DATETIME = {
    "type": "dateTime",
    "options": {"dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}, "timeZone": "utc"},
}
_MULTILINE = {"type": "multilineText"}


def _select(values: typing.Iterable[str]) -> dict[str, Any]:
    return {"type": "singleSelect", "options": {"choices": [{"name": v} for v in values]}}


# Where a field's Python type says too little about the Airtable type it deserves.
_OVERRIDES: dict[str, dict[str, Any]] = {
    "Email": {"type": "email"},
    "Phone": {"type": "phoneNumber"},
    "Test Phone": {"type": "phoneNumber"},
    "Short Link URL": {"type": "url"},
    "Calendly URL": {"type": "url"},
    "SMS Status": _select(s.value for s in SmsStatus),
    "SMS Stop Reason": _select(s.value for s in StopReason),
    "SMS Sending": _select(["On", "Paused"]),
    "Error Log": _MULTILINE,
    "Last Reply Text": _MULTILINE,
    "Body": _MULTILINE,
    "Text": _MULTILINE,
    "Error": _MULTILINE,
    "Webhook Raw": _MULTILINE,
}
_PRIMARY = {"leads": "Email", "settings": "Active Campaign", "templates": "Campaign"}


def _airtable_type(annotation: Any) -> dict[str, Any]:
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    if kind is bool:
        return _CHECKBOX
    if kind is int:
        return {"type": "number", "options": {"precision": 0}}
    if kind is float:
        return {"type": "number", "options": {"precision": 2}}
    if kind is datetime:
        return _DATETIME
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _select(member.value for member in kind)
    return {"type": "singleLineText"}


def _fields_of(model: type[BaseModel], primary: str) -> list[dict[str, Any]]:
    specs = [
        {"name": f.alias, **_OVERRIDES.get(f.alias, _airtable_type(f.annotation))}
        for name, f in model.model_fields.items()
        if name != "id" and f.alias
    ]
    return sorted(specs, key=lambda spec: spec["name"] != primary)


def wanted_schema(tables: AirtableTables = DEFAULT_TABLES) -> dict[str, list[dict[str, Any]]]:
    """{table: [Airtable field models]}, primary field first: what the store expects."""
    return {
        tables.leads: _fields_of(Lead, _PRIMARY["leads"]),
        tables.settings: _fields_of(CampaignSettings, _PRIMARY["settings"]),
        tables.templates: _fields_of(Template, _PRIMARY["templates"]),
        tables.audit: _fields_of(LedgerEntry, "Send Key"),
    }


@dataclass
class SchemaReport:
    found_tables: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    created_fields: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings_row_created: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created_tables or self.created_fields or self.settings_row_created)

    def lines(self) -> list[str]:
        lines = [f"found table {name}" for name in self.found_tables]
        lines += [f"created table {name}" for name in self.created_tables]
        lines += [
            f"created in {table}: {', '.join(names)}"
            for table, names in self.created_fields.items()
        ]
        if self.settings_row_created:
            lines.append("created the Settings row, with SMS Sending Paused")
        lines += self.notes
        if not self.changed:
            lines.append("nothing to do: every table and field is there")
        return lines


def ensure_airtable_schema(
    api: Api, base_id: str, tables: AirtableTables = DEFAULT_TABLES
) -> SchemaReport:
    """Create the missing tables and fields of the base, and the Settings row if there is none."""
    report = SchemaReport()
    tables_url = api.build_url("meta/bases", base_id, "tables")
    existing = {}
    for table in api.get(tables_url)["tables"]:
        existing[table["name"]] = existing[table["id"]] = table
    for name, wanted in wanted_schema(tables).items():
        table = existing.get(name)
        if table is None:
            if name.startswith("tbl"):
                raise ValueError(f"table {name} is not in base {base_id}; name it to create it")
            api.post(tables_url, json={"name": name, "fields": wanted})
            report.created_tables.append(name)
            continue
        report.found_tables.append(table["name"])
        have = {f["name"]: f for f in table["fields"]}
        for spec in wanted:
            current = have.get(spec["name"])
            if current is None:
                fields_url = api.build_url("meta/bases", base_id, "tables", table["id"], "fields")
                api.post(fields_url, json=spec)
                report.created_fields.setdefault(table["name"], []).append(spec["name"])
            elif current["type"] in COMPUTED_TYPES:
                report.notes.append(
                    f"{table['name']}.{spec['name']} is computed ({current['type']}):"
                    " the store reads it and never writes it"
                )
            elif current["type"] != spec["type"]:
                report.notes.append(
                    f"{table['name']}.{spec['name']} is {current['type']} (setup would make"
                    f" {spec['type']}); left as it is"
                )
    settings = api.table(base_id, tables.settings)
    if settings.first() is None:
        settings.batch_create([PAUSED_SETTINGS], typecast=True)
        report.settings_row_created = True
    return report


def ensure_airtable_rate_limit(
    client: SyncPrefectClient | None = None, tuning: AirtableTuning = DEFAULT_TUNING
) -> None:
    """Create the limit, or bring it to the tuning (AirtableTuning.cluster_limit)."""
    with nullcontext(client) if client is not None else get_client(sync_client=True) as prefect:
        prefect.upsert_global_concurrency_limit_by_name(CLUSTER_LIMIT, **tuning.cluster_limit())
