"""ingestion: a CSV export of leads into the store, the former n8n backlog ingestion.

Every row ends imported, merged into the lead it duplicates (by phone, then email; in the file
or in the store), or in a rejects CSV with its line number and reason. A re-import merges new
data into existing leads and never resets a sequence. `uysp import FILE.csv` runs the same steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.ingest import ImportRequest, ImportSummary, run_import, tag_patterns
from tasks.runtime import services
from uysp.ports import Notice


def summary_lines(summary: ImportSummary) -> list[str]:
    lines = [
        f"{summary.rows} rows: {summary.imported} imported, {summary.merged} merged,"
        f" {summary.rejected} rejected",
        "columns used: " + ", ".join(f"{c} -> {f}" for c, f in summary.columns_used.items()),
        "columns ignored: " + (", ".join(summary.columns_ignored) or "none"),
    ]
    if summary.rejects_file:
        lines.append(f"rejected rows, with line and reason: {summary.rejects_file}")
    return lines


@flow(name="ingestion", log_prints=False)
def ingestion(
    path: str,
    campaign: str | None = None,
    source: str | None = None,
    backlog: bool = False,
    client_tags: list[str] | None = None,
    rejects_path: str | None = None,
) -> dict[str, Any]:
    """Import a CSV of leads as Queued (Backlog with `backlog`). `source` sets every new lead's
    Lead Source (default: the file's own column, else the file name); `client_tags` are the
    patterns that mark a tag as a current client."""
    request = ImportRequest(
        path=path,
        campaign=campaign,
        source=source,
        backlog=backlog,
        client_tag_patterns=tag_patterns(client_tags),
        rejects_path=rejects_path,
    )
    artifact = create_progress_artifact(0.0, description=f"importing {Path(path).name}")

    def progress(done: int, total: int) -> None:
        update_progress_artifact(artifact, 100.0 * done / total if total else 100.0)

    summary = run_import(request, progress)
    _publish(summary)
    return summary.as_dict()


def _publish(summary: ImportSummary) -> None:
    columns = [{"column": c, "field": f} for c, f in summary.columns_used.items()]
    columns += [{"column": c, "field": "(ignored)"} for c in summary.columns_ignored]
    create_table_artifact(
        key="ingestion-columns", table=columns, description="How the file's columns were read"
    )
    lines = summary_lines(summary)
    create_markdown_artifact(
        key="ingestion-summary",
        markdown=f"### Import of {Path(summary.file).name}\n\n"
        + "\n".join(f"- {line}" for line in lines),
        description="ingestion run summary",
    )
    services().notifier.notify(
        "daily",
        Notice(
            f"Imported {Path(summary.file).name}",
            lines,
            level="warning" if summary.rejected else "info",
        ),
    )
