"""The periodic flows on the Prefect test server and real stores: click tracker (the real
Switchy adapter on its loopback fake, and the local click table), ingestion and `uysp import`,
staging, and the daily report with `uysp report`."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from flows.click_tracker import click_tracker
from flows.daily_report import daily_report
from flows.ingestion import ingestion
from flows.staging import staging
from integrations.switchy import SwitchyShortener
from tests.builders import make_lead, seed_campaign
from tests.fakes.switchy import GRAPHQL, SwitchyFake
from uysp.cli_ops import app
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus, StopReason, send_key
from uysp.ports import Services

DOMAIN = "go.uysp.example"


def notices(svc: Services, channel: str) -> list:
    return [n for c, n in svc.notifier.sent if c == channel]


async def _artifacts(flow_run_id) -> dict[str, dict]:
    body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "limit": 50, "offset": 0}
    async with get_client() as client:
        response = await client.request("POST", "/artifacts/filter", json=body)
    return {a["key"] or a["type"]: a for a in response.json()}


def artifacts_of(state) -> dict[str, dict]:
    return asyncio.run(_artifacts(state.state_details.flow_run_id))


def record_send(
    svc: Services,
    lead: Lead,
    step: int,
    status: LedgerStatus,
    *,
    ago: timedelta,
    variant: str = "A",
    delivered_after: timedelta | None = timedelta(seconds=5),
    credits: float = 1.0,
) -> None:
    at = svc.clock.now() - ago
    entry = LedgerEntry(
        send_key=send_key(lead.id, "c1", step),
        status=LedgerStatus.RESERVED,
        lead_id=lead.id,
        phone=lead.phone,
        campaign_id="c1",
        step=step,
        variant=variant,
        reserved_at=at,
    )
    svc.store.reserve_sends([entry])
    outcome = {"status": status, "credits": credits, "segments": 1}
    if status != LedgerStatus.FAILED:
        outcome |= {"sent_at": at, "provider_message_id": f"m-{lead.id}-{step}"}
    if status == LedgerStatus.DELIVERED and delivered_after is not None:
        outcome["delivery_at"] = at + delivered_after
    svc.store.update_ledger([entry.model_copy(update=outcome)])


# Click tracker


@pytest.fixture
def switchy() -> Iterator[SwitchyFake]:
    with SwitchyFake() as fake:
        yield fake


@pytest.fixture
def on_switchy(installed, switchy) -> Iterator[Services]:
    shortener = SwitchyShortener(
        switchy.token,
        domain=DOMAIN,
        api_url=switchy.api_url,
        graphql_url=switchy.graphql_url,
        links_per_hour=3_600_000,
        cluster=False,
        backoff_seconds=0.01,
    )
    installed.shortener = shortener
    yield installed
    shortener.close()


def linked_lead(svc: Services, n: int, *, sent_ago: timedelta, clicks: int = 0) -> Lead:
    """A lead texted `sent_ago`, with a tracking link made by the installed shortener."""
    (lead,) = svc.store.add_leads([make_lead(n)])
    link = svc.shortener.create("https://calendly.com/uysp", lead_id=lead.id, campaign="c1")
    fields = {
        "short_link_id": link.id,
        "short_link_url": link.url,
        "last_sent_at": svc.clock.now() - sent_ago,
        "sequence_position": 1,
        "campaign_id": "c1",
        "processing_status": ProcessingStatus.IN_SEQUENCE,
        "click_count": clicks,
    }
    svc.store.update_leads({lead.id: fields})
    return lead.model_copy(update=fields)


def test_click_tracker_writes_new_clicks_and_posts_one_digest_hot_first(on_switchy, switchy):
    svc = on_switchy
    hot = linked_lead(svc, 1, sent_ago=timedelta(minutes=4))
    warm = linked_lead(svc, 2, sent_ago=timedelta(days=2))
    lowered = linked_lead(svc, 3, sent_ago=timedelta(days=1), clicks=5)
    quiet = linked_lead(svc, 4, sent_ago=timedelta(days=1))
    old = linked_lead(svc, 5, sent_ago=timedelta(days=40))
    record_send(svc, hot, 1, LedgerStatus.DELIVERED, ago=timedelta(minutes=4))
    record_send(svc, warm, 1, LedgerStatus.DELIVERED, ago=timedelta(days=2))
    switchy.click(DOMAIN, hot.short_link_id)
    switchy.click(DOMAIN, warm.short_link_id, times=3)
    switchy.click(DOMAIN, lowered.short_link_id, times=2)  # the provider lost some
    switchy.click(DOMAIN, old.short_link_id)  # outside the 30-day window

    summary = click_tracker()

    assert summary == {"tracked": 4, "clicked": 2, "hot": 1, "lowered_ignored": 1}
    (digest,) = notices(svc, "sales")
    assert digest.title == "2 lead(s) clicked their link, 1 hot"
    assert digest.lines[0].startswith("HOT Lead1 Test (***0001)")
    assert digest.lines[1] == "Lead2 Test (***0002), c1 step 1: 0 -> 3 clicks"
    after = {x.id: x for x in svc.store.get_leads([x.id for x in (hot, warm, lowered, quiet, old)])}
    assert (after[hot.id].click_count, after[hot.id].clicked_link) == (1, True)
    assert after[warm.id].click_count == 3
    assert after[lowered.id].click_count == 5  # never lowered
    assert (after[quiet.id].click_count, after[quiet.id].clicked_link) == (0, False)
    assert after[old.id].click_count == 0

    svc.clock.advance(timedelta(minutes=10))
    assert click_tracker()["clicked"] == 0
    assert len(notices(svc, "sales")) == 1  # nothing new, nothing posted


class _CountingStore:
    """The store, recording which leads each update_leads call wrote."""

    def __init__(self, store) -> None:
        self._store = store
        self.written: list[set[str]] = []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def update_leads(self, updates):
        self.written.append(set(updates))
        return self._store.update_leads(updates)


def test_click_counts_are_read_in_batches_and_only_changed_leads_written(on_switchy, switchy):
    svc = on_switchy
    sent = svc.clock.now() - timedelta(days=1)
    leads = svc.store.add_leads(
        make_lead(n, short_link_id=f"alias{n:04d}", last_sent_at=sent) for n in range(1001)
    )
    for lead in leads:
        switchy.take_alias(DOMAIN, lead.short_link_id)
    clicked = {lead.id for lead in leads[::150]}
    for lead in leads[::150]:
        switchy.click(DOMAIN, lead.short_link_id)
    svc.store = counting = _CountingStore(svc.store)

    summary = click_tracker(batch_size=500)

    assert summary["tracked"] == 1001
    assert summary["clicked"] == len(clicked) == 7
    assert len(switchy.requests_to("POST", GRAPHQL)) == 3
    assert set().union(*counting.written) == clicked
    assert len(counting.written) == 2  # one write per batch that had changes


def test_click_tracker_reads_the_local_click_table_without_bots(installed):
    svc = installed
    lead = linked_lead(svc, 1, sent_ago=timedelta(hours=2))
    svc.shortener.record_click(
        lead.short_link_id, user_agent="Slackbot", method="GET", counted=False
    )
    assert click_tracker()["clicked"] == 0
    svc.shortener.record_click(lead.short_link_id, user_agent="iPhone", method="GET", counted=True)
    assert click_tracker()["clicked"] == 1
    (after,) = svc.store.get_leads([lead.id])
    assert after.click_count == 1


# Ingestion

HEADER = [
    "Phone Number (phone_number)",
    "Mobile Phone Number (mobile_phone_number)",
    "Email Address (email)",
    "First Name (first_name)",
    "Last Name",
    "Company Name (custom_10)",
    "Tags",
    "ICP Score",
    "Favourite Colour",
]
ROWS = [
    ["(212) 555-0001", "", "Ana@Example.com", "Ana", "Lee", "Acme", "vip, Client", "85", "red"],
    ["", "+1 416 555 0002", "ben@example.com", "Ben", "Roy", "Globex", "", "72", ""],
    ["555-12", "", "", "Cara", "Ng", "", "", "50", ""],  # line 4: no way to reach her
    ["212-555-0001", "", "", "Ana", "Lee", "Acme Corp", "", "90", ""],  # line 5: dup of line 2
    ["", "", "dev@example.com", "Dev", "", "", "former client", "30", ""],
    ["2125550009", "", "", "Stored", "Lead", "Newco", "", "", ""],  # line 7: in the store
    ["", "", "", "", "", "", "", "", ""],  # line 8: blank
]


def write_csv(path, rows=ROWS, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_ingestion_imports_merges_and_rejects_every_row_with_artifacts(installed, tmp_path):
    svc = installed
    (stored,) = svc.store.add_leads(
        [
            make_lead(
                9,
                processing_status=ProcessingStatus.IN_SEQUENCE,
                sequence_position=2,
                last_sent_at=svc.clock.now(),
                lead_source="webinar",
            )
        ]
    )
    path = write_csv(tmp_path / "export.csv")

    state = ingestion(path=str(path), source="spring-list", return_state=True)
    summary = state.result()

    assert {k: summary[k] for k in ("rows", "imported", "merged", "rejected")} == {
        "rows": 7,
        "imported": 3,
        "merged": 2,
        "rejected": 2,
    }
    assert summary["columns_ignored"] == ["Favourite Colour"]
    assert summary["columns_used"]["Mobile Phone Number (mobile_phone_number)"] == "phone"
    leads = {lead.phone or lead.email: lead for lead in svc.store.all_leads()}
    assert set(leads) == {"+12125550001", "+14165550002", "dev@example.com", stored.phone}
    ana = leads["+12125550001"]
    assert (ana.email, ana.company, ana.icp_score, ana.current_client) == (
        "ana@example.com",
        "Acme Corp",
        90,
        True,
    )
    assert ana.processing_status == ProcessingStatus.QUEUED
    assert ana.lead_source == "spring-list"
    assert ana.imported_at == svc.clock.now()
    assert leads["dev@example.com"].current_client is False
    again = leads[stored.phone]
    assert again.company == "Newco"  # new data merged in
    assert (again.processing_status, again.sequence_position, again.lead_source) == (
        ProcessingStatus.IN_SEQUENCE,
        2,
        "webinar",
    )
    with open(summary["rejects_file"], newline="") as rejects:
        rejected = list(csv.DictReader(rejects))
    assert [(r["line"], r["reason"][:26]) for r in rejected] == [
        ("4", "no valid phone or email: P"),
        ("8", "blank row"),
    ]
    assert rejected[0]["First Name (first_name)"] == "Cara"
    (notice,) = notices(svc, "daily")
    assert notice.lines[0] == "7 rows: 3 imported, 2 merged, 2 rejected"
    artifacts = artifacts_of(state)
    assert "Favourite Colour" in str(artifacts["ingestion-columns"]["data"])
    assert artifacts["progress"]["data"] == 100.0


def test_uysp_import_shows_progress_and_a_reimport_only_merges(installed, tmp_path):
    svc = installed
    path = write_csv(tmp_path / "export.csv")
    runner = CliRunner()

    first = runner.invoke(app, ["import", str(path), "--backlog", "--campaign", "c2"])
    assert first.exit_code == 0, first.output
    assert "7 rows: 4 imported, 1 merged, 2 rejected" in first.stdout
    assert "importing export.csv" in first.stderr
    assert "4/4" in first.stderr
    assert {lead.processing_status for lead in svc.store.all_leads()} == {ProcessingStatus.BACKLOG}
    assert {lead.campaign_id for lead in svc.store.all_leads()} == {"c2"}

    again = runner.invoke(app, ["import", str(path), "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["imported"], summary["merged"], summary["rejected"]) == (0, 5, 2)
    assert len(svc.store.all_leads()) == 4


def test_uysp_import_refuses_a_file_with_no_phone_or_email_column(installed, tmp_path):
    path = write_csv(tmp_path / "names.csv", rows=[["Ana", "Lee"]], header=["First", "Last"])
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert "no phone or email column among ['First', 'Last']" in result.stderr
    assert installed.store.all_leads() == []


# Staging


def test_staging_fills_the_days_capacity_best_tier_first(installed):
    svc = installed
    seed_campaign(svc.store, delay_days=2)
    due = svc.store.add_leads(
        make_lead(
            n,
            processing_status=ProcessingStatus.IN_SEQUENCE,
            sequence_position=1,
            variant="A",
            last_sent_at=svc.clock.now() - timedelta(days=3),
        )
        for n in range(52)
    )
    svc.store.add_leads(make_lead(n) for n in range(100, 103))  # Ready, owed step 1 today
    record_send(svc, due[0], 1, LedgerStatus.SENT, ago=timedelta(hours=1))  # texted today...
    record_send(svc, due[1], 1, LedgerStatus.SENT, ago=timedelta(hours=2))
    svc.store.update_leads(
        {lead.id: {"last_sent_at": svc.clock.now() - timedelta(hours=1)} for lead in due[:2]}
    )  # ...so not owed again: 60 - 2 sent - 50 due - 3 ready = capacity 5
    scores = {201: 95, 202: 85, 203: 70, 204: 65, 205: 62, 206: 50, 207: 30, 208: None}
    queued = svc.store.add_leads(
        make_lead(n, icp_score=s, processing_status=ProcessingStatus.QUEUED)
        for n, s in scores.items()
    )
    (backlog,) = svc.store.add_leads(
        [make_lead(300, icp_score=99, processing_status=ProcessingStatus.BACKLOG)]
    )

    summary = staging(phase="phase-1-validation")

    assert (summary["sent_today"], summary["owed_today"], summary["capacity"]) == (2, 53, 5)
    assert summary["ready_by_tier"] == {"tier_1": 2, "tier_2": 3}
    after = svc.store.get_leads([lead.id for lead in queued])
    status = {lead.icp_score: lead.processing_status for lead in after}
    assert status == {
        95: ProcessingStatus.READY,
        85: ProcessingStatus.READY,
        70: ProcessingStatus.READY,
        65: ProcessingStatus.READY,
        62: ProcessingStatus.READY,
        50: ProcessingStatus.QUEUED,
        30: ProcessingStatus.HOLD,
        None: ProcessingStatus.HOLD,
    }
    (held,) = svc.store.get_leads([queued[6].id])
    assert "staging: Hold, ICP Score 30, below 40" in held.error_log
    (untouched,) = svc.store.get_leads([backlog.id])
    assert untouched.processing_status == ProcessingStatus.BACKLOG

    again = staging(phase="phase-1-validation")
    assert (again["capacity"], again["ready"], again["held"]) == (0, 0, 0)


# Daily report


def test_daily_report_by_campaign_variant_and_step_with_ab_and_slack(installed):
    svc = installed
    a1, a2, b1, b2 = svc.store.add_leads(make_lead(n) for n in range(4))
    for lead, variant in ((a1, "A"), (a2, "A"), (b1, "B"), (b2, "B")):
        record_send(svc, lead, 1, LedgerStatus.DELIVERED, ago=timedelta(days=3), variant=variant)
    record_send(svc, a1, 2, LedgerStatus.DELIVERED, ago=timedelta(days=1, hours=1), credits=2)
    record_send(svc, a2, 2, LedgerStatus.UNDELIVERED, ago=timedelta(days=1, hours=1))
    record_send(svc, b1, 2, LedgerStatus.FAILED, ago=timedelta(hours=2), variant="B")
    record_send(svc, b2, 2, LedgerStatus.DELIVERED, ago=timedelta(hours=3), variant="B")
    now = svc.clock.now()
    svc.store.update_leads(
        {
            a1.id: {"clicked_link": True, "click_count": 2, "booked": True, "booked_at": now},
            a2.id: {"last_reply_at": now - timedelta(days=2), "last_reply_text": "who is this"},
            b1.id: {
                "sms_stop": True,
                "stop_reason": StopReason.STOP,
                "last_reply_at": now - timedelta(days=2),
            },
            b2.id: {"clicked_link": True, "click_count": 1},
        }
    )

    state = daily_report(return_state=True)
    result = state.result()

    rows = {(r["variant"], r["step"]): r for r in result["steps"]}
    assert {key: tuple(r[c] for c in REPORT_COUNTS) for key, r in rows.items()} == {
        ("A", 1): (2, 2, 0, 0, 0, 0, 0, 1, 2),  # the reply came between steps 1 and 2
        ("A", 2): (2, 1, 1, 0, 1, 1, 0, 0, 3),  # clicked, then booked after step 2
        ("B", 1): (2, 2, 0, 0, 0, 0, 1, 0, 2),  # STOP after step 1; step 2 then failed
        ("B", 2): (1, 1, 0, 1, 1, 0, 0, 0, 1),
    }
    assert rows[("A", 2)]["delivery_rate"] == 0.5
    ab = {r["variant"]: r for r in result["ab"]}
    assert (ab["A"]["people"], ab["A"]["clicked"], ab["A"]["booked"]) == (2, 1, 1)
    assert (ab["B"]["people"], ab["B"]["clicked"], ab["B"]["booked"]) == (2, 1, 0)
    assert ab["A"]["click_p_value"] is None  # the control
    assert ab["B"]["click_p_value"] == 1.0
    assert ab["A"]["booking_p_best"] > ab["B"]["booking_p_best"]
    assert (result["headline"]["Sent"], result["headline"]["Sent, last 24 h"]) == ("7", "1")

    (notice,) = notices(svc, "daily")
    assert notice.fields["Booked"] == "1"
    body = "\n".join(notice.lines)
    assert "A step 2: 2 sent, 50.0% delivered, 1 failed, 1 clicked (50.0%), 1 booked" in body
    assert "A/B B: clicks 50.0%" in body
    artifacts = artifacts_of(state)
    assert "opted_out" in str(artifacts["daily-report-funnel"]["data"])
    assert "A/B comparison" in artifacts["daily-report"]["data"]
    assert "booking_p_best" in artifacts["daily-report"]["data"]

    cli = CliRunner().invoke(app, ["report", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["steps"] == result["steps"]


REPORT_COUNTS = (
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "clicked",
    "booked",
    "opted_out",
    "replied",
    "credits",
)
