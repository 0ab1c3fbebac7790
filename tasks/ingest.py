"""The import's steps: read the file, look up the leads it may already hold, write new leads
and merges in batches, and keep every row that could not be imported in a rejects file.

`run_import` strings them together. In the ingestion flow each step is a task run; `uysp import`
runs the same steps as plain calls, so an import needs no Prefect server.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from tasks.runtime import services
from uysp.ingest_rules import (
    DEFAULT_CLIENT_TAG_PATTERNS,
    HeaderMap,
    ImportDefaults,
    Reject,
    Row,
    map_header,
    missing_identity,
    normalise_row,
    plan_import,
)
from uysp.models import Lead, ProcessingStatus
from uysp.settings import get_settings

WRITE_CHUNK = 1000  # leads per write task run
LOOKUP_CHUNK = 5000  # phones or emails per lookup task run
ENCODINGS = ("utf-8-sig", "cp1252")  # Excel on Windows writes cp1252

Progress = Callable[[int, int], None]
"""Told (leads written, leads to write) as the import writes."""


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, or no phone or email column)."""


@dataclass(frozen=True)
class ImportRequest:
    path: str
    campaign: str | None = None
    source: str | None = None
    backlog: bool = False
    client_tag_patterns: tuple[str, ...] = DEFAULT_CLIENT_TAG_PATTERNS
    rejects_path: str | None = None  # default: FILE.rejects.csv beside the file


@dataclass
class ParsedFile:
    header_map: HeaderMap
    rows: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


@dataclass
class ImportSummary:
    file: str
    rows: int
    imported: int
    merged: int
    rejected: int
    columns_used: dict[str, str]
    columns_ignored: list[str]
    rejects_file: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def tag_patterns(given: Sequence[str] | None) -> tuple[str, ...]:
    """The client tag patterns: given, else the UYSP_CLIENT_TAG_PATTERNS setting."""
    return tuple(given) if given else get_settings().client_tag_patterns


def _text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(f"{path}: not UTF-8 or Windows-1252 text")


def _delimiter(text: str) -> str:
    """The header line's most used separator: exports from European Excel use semicolons."""
    header_line = text.split("\n", 1)[0]
    return max(",;\t", key=header_line.count)


def parse_file(path: Path, client_tag_patterns: Sequence[str]) -> ParsedFile:
    """Every row of the file as a Row or a Reject, numbered by the line it starts on."""
    text = _text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = next(reader, None)
    if not header:
        raise ImportFileError(f"{path}: empty file")
    header_map = map_header(header)
    if missing_identity(header_map):
        raise ImportFileError(f"{path}: no phone or email column among {header}")
    parsed = ParsedFile(header_map)
    line = reader.line_num + 1
    for cells in reader:
        row = normalise_row(cells, header_map, line, client_tag_patterns=client_tag_patterns)
        (parsed.rows if isinstance(row, Row) else parsed.rejects).append(row)
        line = reader.line_num + 1
    return parsed


@task(name="read-import-file", cache_policy=NO_CACHE)
def read_import_file(path: str, client_tag_patterns: tuple[str, ...]) -> ParsedFile:
    return parse_file(Path(path), client_tag_patterns)


@task(name="find-existing-leads", cache_policy=NO_CACHE)
def find_existing(phones: list[str], emails: list[str]) -> list[Lead]:
    return services().store.find_leads(phones=phones, emails=emails)


@task(name="add-leads", cache_policy=NO_CACHE)
def add_leads(leads: list[Lead]) -> int:
    return len(services().store.add_leads(leads))


@task(name="merge-leads", cache_policy=NO_CACHE)
def merge_leads(updates: dict[str, dict[str, Any]]) -> int:
    services().store.update_leads(updates)
    return len(updates)


@task(name="write-rejects", cache_policy=NO_CACHE)
def write_rejects(rejects: list[Reject], header: tuple[str, ...], path: str) -> str:
    """The rejected rows as they came, after their line number and the reason, so they can be
    fixed and imported again."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", *header])
        for reject in rejects:
            writer.writerow([reject.line, reject.reason, *reject.cells])
    return path


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_import(
    request: ImportRequest, progress: Progress | None = None, *, as_tasks: bool = True
) -> ImportSummary:
    """Import one CSV file: every row ends imported, merged into a lead, or in the rejects file.
    Existing leads are looked up once for the whole file, never row by row."""

    def step(task_fn):
        if not as_tasks:
            return task_fn.fn
        # quote: Prefect would otherwise walk every lead of a batch looking for futures.
        return lambda *args: task_fn(*(quote(arg) for arg in args))

    path = Path(request.path)
    parsed = step(read_import_file)(str(path), request.client_tag_patterns)
    existing: list[Lead] = []
    for chunk in _chunks(sorted({r.phone for r in parsed.rows if r.phone}), LOOKUP_CHUNK):
        existing += step(find_existing)(list(chunk), [])
    # An email is looked up only where the phone found no lead that already has an email.
    by_phone = {lead.phone: lead for lead in existing}
    emails = {
        r.email
        for r in parsed.rows
        if r.email and not (r.phone in by_phone and by_phone[r.phone].email)
    }
    for chunk in _chunks(sorted(emails), LOOKUP_CHUNK):
        existing += step(find_existing)([], list(chunk))
    defaults = ImportDefaults(
        imported_at=services().clock.now(),
        file_name=path.name,
        source=request.source,
        status=ProcessingStatus.BACKLOG if request.backlog else ProcessingStatus.QUEUED,
        campaign=request.campaign,
    )
    plan = plan_import(parsed.rows, {lead.id: lead for lead in existing}.values(), defaults)

    total, done = len(plan.new) + len(plan.updates), 0
    if progress:
        progress(done, total)
    for chunk in _chunks(plan.new, WRITE_CHUNK):
        done += step(add_leads)(list(chunk))
        if progress:
            progress(done, total)
    for chunk in _chunks(list(plan.updates.items()), WRITE_CHUNK):
        done += step(merge_leads)(dict(chunk))
        if progress:
            progress(done, total)

    rejects_file = None
    if parsed.rejects:
        target = request.rejects_path or str(path.with_suffix(".rejects.csv"))
        rejects_file = step(write_rejects)(parsed.rejects, parsed.header_map.header, target)
    return ImportSummary(
        file=str(path),
        rows=len(parsed.rows) + len(parsed.rejects),
        imported=plan.imported,
        merged=plan.merged,
        rejected=len(parsed.rejects),
        columns_used=parsed.header_map.used,
        columns_ignored=list(parsed.header_map.ignored),
        rejects_file=rejects_file,
    )
