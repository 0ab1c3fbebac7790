"""The health flow and `uysp doctor`: quiet on a healthy system, and each check, broken on
purpose, reported as the problem it is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect.states import Scheduled
from rich.console import Console
from typer.testing import CliRunner

import uysp.cli_ops
from flows.health import health
from tests.builders import make_lead, seed_campaign
from tests.fakes.http import FakeServer, Reply, Request
from uysp.cli_ops import app
from uysp.models import LedgerEntry, LedgerStatus, ProcessingStatus, send_key
from uysp.ports import Services

FINE, BROKEN, LATE = "health-test-fine", "health-test-broken", "health-test-late"


@flow(name=FINE)
def fine_flow() -> int:
    return 1


@flow(name=BROKEN)
def broken_flow() -> None:
    raise RuntimeError("the flow broke")


class Receiver(FakeServer):
    """The webhook receiver's health endpoint."""

    status = 200

    def handle(self, request: Request) -> Reply:
        if request.path == "/healthz":
            return Reply(self.status, {"ok": self.status == 200})
        return Reply(404, {"detail": "Not Found"})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture(scope="module")
def fine_run() -> None:
    fine_flow()


@pytest.fixture
def healthy(installed, receiver, fine_run) -> Services:
    """Everything in order: templates for every step, leads moving, credits, a receiver."""
    svc = installed
    seed_campaign(svc.store)
    now = svc.clock.now()
    svc.store.add_leads(
        [
            make_lead(1, imported_at=now - timedelta(hours=3)),
            make_lead(2, processing_status=ProcessingStatus.QUEUED, imported_at=now),
            make_lead(
                3,
                processing_status=ProcessingStatus.IN_SEQUENCE,
                sequence_position=1,
                variant="A",
                last_sent_at=now - timedelta(days=1),
            ),
            make_lead(4, processing_status=ProcessingStatus.COMPLETE),
        ]
    )
    return svc


def doctor(receiver: Receiver, *flows: str) -> tuple[int, dict[str, str]]:
    """Run `uysp doctor`; its exit code and, per check, the row it printed."""
    args = ["doctor", "--webhook-url", receiver.url]
    for name in flows or (FINE,):
        args += ["--flow", name]
    result = CliRunner().invoke(app, args)
    rows: dict[str, str] = {}
    current = None
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃").split("│")]
        if len(cells) != 3:
            continue
        if cells[0]:
            current = cells[0]
            rows[current] = " ".join(cells[1:])
        elif current:
            rows[current] += " " + cells[2]
    return result.exit_code, rows


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    """A terminal wide enough that table rows are not wrapped mid-sentence."""
    monkeypatch.setattr(uysp.cli_ops, "console", Console(width=250))


def test_a_healthy_system_passes_every_check(healthy, receiver):
    code, rows = doctor(receiver)
    assert code == 0, rows
    assert set(rows) == {
        "flow runs",
        "deployments",
        "send ledger",
        "stuck leads",
        "processing status",
        "templates",
        "credits",
        "webhook receiver",
    }
    assert all(row.startswith("OK") for row in rows.values()), rows
    assert f"{FINE}: Completed" in rows["flow runs"]
    assert "no deployments" in rows["deployments"]
    assert "Queued: 1" in rows["processing status"]


def fail_a_flow(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    broken_flow(return_state=True)
    return (FINE, BROKEN)


def leave_a_run_late(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(LATE)
        deployment_id = client.create_deployment(flow_id=flow_id, name="every-10-minutes")
        client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=datetime.now(UTC) - timedelta(hours=1))
        )
    return (FINE, LATE)


def strand_ledger_rows(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    lead = svc.store.all_leads()[0]
    rows = [
        LedgerEntry(
            send_key=send_key(lead.id, "c1", step),
            status=LedgerStatus.RESERVED,
            lead_id=lead.id,
            phone=lead.phone,
            campaign_id="c1",
            step=step,
            reserved_at=svc.clock.now() - timedelta(hours=1),
        )
        for step in (1, 2)
    ]
    svc.store.reserve_sends(rows)
    svc.store.update_ledger([rows[1].model_copy(update={"status": LedgerStatus.UNKNOWN})])
    return ()


def strand_a_queued_lead(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    imported = svc.clock.now() - timedelta(hours=49)
    svc.store.add_leads(
        [make_lead(9, processing_status=ProcessingStatus.QUEUED, imported_at=imported)]
    )
    return ()


def drop_a_status(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    svc.store.add_leads([make_lead(9, processing_status=None)])
    return ()


def delete_a_template(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    seed_campaign(svc.store, campaign="c2", skip={("B", 3)})
    return ()


def spend_the_credits(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    svc.gateway.starting_credits = 10
    return ()


def break_the_receiver(svc: Services, receiver: Receiver) -> tuple[str, ...]:
    receiver.status = 503
    return ()


BREAKERS: dict[str, tuple[Callable, str, str]] = {
    "failed flow": (fail_a_flow, "flow runs", f"{BROKEN}: Failed"),
    "late deployment": (leave_a_run_late, "deployments", "waiting more than 15 min to start"),
    "stuck ledger rows": (strand_ledger_rows, "send ledger", "1 Reserved, 1 Unknown"),
    "stuck lead": (strand_a_queued_lead, "stuck leads", "1 lead(s) stuck more than 48 h"),
    "lead with no status": (drop_a_status, "processing status", "1 lead(s) with no Processing"),
    "missing template": (
        delete_a_template,
        "templates",
        "variant B: no active template for step 3",
    ),
    "low credits": (spend_the_credits, "credits", "10 credits left, under 1,000"),
    "receiver down": (break_the_receiver, "webhook receiver", "/healthz answered 503"),
}


@pytest.mark.parametrize("breaker", BREAKERS.values(), ids=BREAKERS.keys())
def test_each_broken_check_is_reported_and_fails_the_doctor(healthy, receiver, breaker):
    breaks, check, message = breaker
    flows = breaks(healthy, receiver)
    code, rows = doctor(receiver, *flows)
    assert code == 1
    assert {name for name, row in rows.items() if row.startswith("PROBLEM")} == {check}
    assert message in rows[check]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the store plays no part
def test_an_unreachable_prefect_api_is_a_problem(healthy, receiver):
    nothing_listening = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(nothing_listening):
        code, rows = doctor(receiver)
    assert code == 1
    for check in ("flow runs", "deployments"):
        assert rows[check].startswith("PROBLEM Prefect API unreachable")


def test_the_health_flow_alerts_only_when_something_is_wrong(healthy, receiver):
    svc = healthy
    quiet = health(flows=[FINE], webhook_url=receiver.url)
    assert quiet["ok"] is True
    assert [n for c, n in svc.notifier.sent if c == "alerts"] == []

    spend_the_credits(svc, receiver)
    break_the_receiver(svc, receiver)
    loud = health(flows=[FINE], webhook_url=receiver.url)

    assert loud["ok"] is False
    assert loud["problems"] == ["credits", "webhook receiver"]
    (alert,) = [n for c, n in svc.notifier.sent if c == "alerts"]
    assert alert.title == "Health: 2 problem(s)"
    assert alert.level == "error"
    assert "credits: 10 credits left, under 1,000" in alert.lines
