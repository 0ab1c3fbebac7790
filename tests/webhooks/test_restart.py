"""A receiver killed with SIGKILL after its 2xx loses nothing: the next one processes it all.

The receiver runs as `uvicorn webhooks.app:create_app --factory` in its own process, configured
by UYSP_* variables like a deployment. To kill it between the 2xx and the processing on cue, the
test holds the inbox worker's lock, as a second receiver on the same file would: the first
receiver then only receives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from integrations import calendly
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tests.builders import make_lead
from tests.webhooks import payloads
from tests.webhooks.conftest import SIGNING_KEY, TOKEN
from uysp.models import StopReason
from webhooks.dispatch import WORKER_LOCK
from webhooks.inbox import Inbox

ROOT = Path(__file__).resolve().parents[2]
UVICORN = [sys.executable, "-m", "uvicorn", "webhooks.app:create_app", "--factory"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReceiverProcess:
    def __init__(self, db_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UYSP_", "PREFECT_API"))}
        env |= {
            "PYTHONPATH": str(ROOT),
            "UYSP_SQLITE_PATH": str(db_path),
            "UYSP_CALENDLY_SIGNING_KEY": SIGNING_KEY,
            "UYSP_SIMPLETEXTING_WEBHOOK_TOKEN": TOKEN,
        }
        self.process = subprocess.Popen(
            [*UVICORN, "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "the receiver exited"
            assert time.monotonic() < deadline, "the receiver did not start"
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def wait_for(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def post_booking(url: str, lead_id: str, n: int) -> httpx.Response:
    body = json.dumps(payloads.invitee(lead_id=lead_id, invitee_id=f"INV{n:04d}")).encode()
    signature = calendly.sign(body, SIGNING_KEY, datetime.now(UTC))
    return httpx.post(
        f"{url}/webhooks/calendly",
        content=body,
        headers={calendly.SIGNATURE_HEADER: signature},
    )


def test_events_acknowledged_before_a_kill_are_processed_after_restart(tmp_path):
    db_path = tmp_path / "uysp.db"
    db = SqliteDatabase(db_path)
    store, inbox, lock = SqliteStore(db), Inbox(db), SqliteRunLock(db)
    booked, replier = store.add_leads([make_lead(1), make_lead(2)])
    assert lock.acquire(WORKER_LOCK, "another-receiver", 120)

    first = ReceiverProcess(db_path)
    responses = [
        post_booking(first.url, booked.id, 1),
        httpx.post(
            f"{first.url}/webhooks/simpletexting",
            params={"token": TOKEN},
            json=payloads.incoming("STOP", contact=payloads.us_digits(replier.phone)),
        ),
    ]
    first.kill()

    assert [r.status_code for r in responses] == [200, 200]
    assert inbox.counts()["pending"] == 2
    assert store.stopped_among([booked.id, replier.id]) == set()

    lock.release(WORKER_LOCK, "another-receiver")
    second = ReceiverProcess(db_path)
    try:
        wait_for(lambda: inbox.counts()["done"] == 2)
    finally:
        second.kill()
    after = {lead.id: lead for lead in store.get_leads([booked.id, replier.id])}
    assert (after[booked.id].booked, after[booked.id].stop_reason) == (True, StopReason.BOOKED)
    assert after[replier.id].stop_reason == StopReason.STOP


def test_a_kill_in_the_middle_of_a_burst_loses_no_acknowledged_event(tmp_path):
    db_path = tmp_path / "uysp.db"
    db = SqliteDatabase(db_path)
    store, inbox = SqliteStore(db), Inbox(db)
    leads = store.add_leads(make_lead(n) for n in range(300))
    receiver = ReceiverProcess(db_path)
    acknowledged: list[str] = []

    def post_all() -> None:
        for n, lead in enumerate(leads):
            try:
                response = post_booking(receiver.url, lead.id, n)
            except httpx.TransportError:
                return  # the receiver is gone
            if response.status_code == 200:
                acknowledged.append(lead.id)

    sender = threading.Thread(target=post_all)
    sender.start()
    wait_for(lambda: len(acknowledged) >= 50)
    receiver.kill()
    sender.join(30)
    assert 50 <= len(acknowledged) < len(leads)

    restarted = ReceiverProcess(db_path)
    try:
        wait_for(lambda: inbox.counts()["pending"] == 0)
    finally:
        restarted.kill()
    assert store.stopped_among(acknowledged) == set(acknowledged)
