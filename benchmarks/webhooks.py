"""The webhook receiver under a steady mix of events, on loopback, in embedded mode.

Starts `uvicorn webhooks.app:create_app --factory` on a fresh SQLite file seeded with leads,
sent texts and tracking links, then sends requests at `--rate` per second for `--duration`
seconds: delivery receipts, replies (answers, STOP, HELP), unsubscribes, outgoing-message
reports, Calendly bookings, link clicks (some by preview bots) and redeliveries of events
already sent. A poller watches the leads table to time each booking until its lead is stopped.
When the load ends it waits for the inbox to drain, then checks that every acknowledged event
was processed. Prints one JSON object:

    requests, rps, p50_ms, p99_ms (request latency), errors (transport errors and unexpected
    statuses), lost (acknowledged events never processed), booking_to_stop_p99_ms

    .venv/bin/python benchmarks/webhooks.py [--duration 30] [--rate 600] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from integrations import calendly
from integrations.clock import SystemClock
from integrations.local_links import LocalShortener
from integrations.sqlite_store import SqliteDatabase, SqliteStore
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus

ROOT = Path(__file__).resolve().parents[1]
UVICORN = [sys.executable, "-m", "uvicorn", "webhooks.app:create_app", "--factory"]
KEY, TOKEN = "bench-signing-key", "bench-token"
PERSON = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15"
BOT = "facebookexternalhit/1.1"
MIX = {  # share of requests
    "receipt": 30,
    "reply": 15,
    "click": 15,
    "booking": 10,
    "outgoing": 10,
    "redelivery": 10,
    "unsubscribe": 5,
    "bot_click": 5,
}


def seed(db_path: Path, leads: int, links: int) -> tuple[list[Lead], list[str]]:
    db = SqliteDatabase(db_path)
    store = SqliteStore(db)
    added = store.add_leads(
        Lead(
            id="",
            email=f"lead{n}@example.com",
            phone=f"+1{212 + n // 10_000}555{n % 10_000:04d}",
            first_name=f"Lead{n}",
            phone_valid=True,
            location_country="US",
            processing_status=ProcessingStatus.IN_SEQUENCE,
            sequence_position=1,
        )
        for n in range(leads)
    )
    rows = [
        LedgerEntry(
            send_key=f"{lead.id}:bench:1",
            status=LedgerStatus.SENT,
            lead_id=lead.id,
            phone=lead.phone or "",
            campaign_id="bench",
            step=1,
            text="Hi",
            provider_message_id=f"msg{n:08d}",
        )
        for n, lead in enumerate(added)
    ]
    store.reserve_sends(rows)
    store.record_sends(rows, {})
    shortener = LocalShortener(db, SystemClock(), "http://127.0.0.1/l")
    aliases = [
        shortener.create("https://calendly.com/uysp/audit", lead_id=lead.id, campaign="bench").id
        for lead in added[:links]
    ]
    db.close()
    return added, aliases


def start_receiver(db_path: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UYSP_", "PREFECT_API"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "UYSP_SQLITE_PATH": str(db_path),
        "UYSP_CALENDLY_SIGNING_KEY": KEY,
        "UYSP_SIMPLETEXTING_WEBHOOK_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [*UVICORN, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the receiver did not start")


class Load:
    """The requests to send, drawn from the mix; each lead is used by one event at most."""

    def __init__(self, leads: list[Lead], aliases: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.leads = iter(leads)
        self.receipts = itertools.count()
        self.aliases = aliases
        self.sent_bodies: list[tuple[str, bytes]] = []
        self.kinds = list(MIX)
        self.weights = list(MIX.values())

    def next(self) -> tuple[str, str, bytes, dict]:
        """(method, path, body, headers)"""
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind in ("click", "bot_click"):
            agent = PERSON if kind == "click" else BOT
            return "GET", f"/l/{self.rng.choice(self.aliases)}", b"", {"User-Agent": agent}
        if kind == "redelivery" and self.sent_bodies:
            path, body = self.rng.choice(self.sent_bodies)
            return "POST", path, body, self._headers(path, body)
        if kind == "receipt":
            n = next(self.receipts)
            report = "DELIVERY_REPORT" if self.rng.random() < 0.9 else "NON_DELIVERED_REPORT"
            values = {"messageId": f"msg{n:08d}", "carrier": "Verizon"}
            return self._texting(report, values)
        lead = next(self.leads)
        digits = (lead.phone or "")[2:]
        if kind == "booking":
            body = _calendly_body(lead)
            path = "/webhooks/calendly"
            self.sent_bodies.append((path, body))
            return "POST", path, body, self._headers(path, body) | {"X-Lead": lead.id}
        if kind == "unsubscribe":
            return self._texting("UNSUBSCRIBE_REPORT", {"phone": digits})
        text = self.rng.choices(["Sounds good, call me", "STOP", "HELP"], [7, 2, 1])[0]
        report = "OUTGOING_MESSAGE" if kind == "outgoing" else "INCOMING_MESSAGE"
        values = {"messageId": f"in-{lead.id}", "text": text, "contactPhone": digits}
        return self._texting(report, values)

    def _texting(self, report: str, values: dict) -> tuple:
        body = json.dumps({"reportId": None, "type": report, "values": values}).encode()
        path = f"/webhooks/simpletexting?token={TOKEN}"
        self.sent_bodies.append((path, body))
        return "POST", path, body, {}

    @staticmethod
    def _headers(path: str, body: bytes) -> dict:
        if not path.startswith("/webhooks/calendly"):
            return {}
        return {calendly.SIGNATURE_HEADER: calendly.sign(body, KEY, datetime.now(UTC))}


def _calendly_body(lead: Lead) -> bytes:
    payload = {
        "event": "invitee.created",
        "created_at": datetime.now(UTC).isoformat(),
        "payload": {
            "uri": f"https://api.calendly.com/scheduled_events/EV/invitees/{lead.id}",
            "email": lead.email,
            "rescheduled": False,
            "tracking": {"utm_source": "sms", "utm_content": lead.id},
            "scheduled_event": {"start_time": "2026-12-01T15:00:00.000000Z"},
        },
    }
    return json.dumps(payload).encode()


class StopWatch:
    """Times each booked lead from its request until the leads table shows it stopped."""

    def __init__(self, db_path: Path) -> None:
        self.conn = sqlite3.connect(db_path, check_same_thread=False)
        self.sent: dict[str, float] = {}
        self.stopped: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def booked(self, lead_id: str, at: float) -> None:
        with self.lock:
            self.sent[lead_id] = at

    def _poll(self) -> None:
        while not self.done.is_set():
            with self.lock:
                waiting = [i for i in self.sent if i not in self.stopped]
            for start in range(0, len(waiting), 500):
                chunk = waiting[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    f"SELECT id FROM leads WHERE sms_stop = 1 AND id IN ({marks})", chunk
                ).fetchall()
                now = time.monotonic()
                with self.lock:
                    self.stopped.update((row[0], now) for row in rows)
            time.sleep(0.005)

    def latencies_ms(self) -> list[float]:
        with self.lock:
            return [(self.stopped[i] - t) * 1000 for i, t in self.sent.items() if i in self.stopped]


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams. httpx spends more CPU on a request
    than the receiver does, and the two share the machine: with it the run measures the client."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: bytes, headers: dict) -> tuple:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def drive(port: int, load: Load, args: argparse.Namespace, watch: StopWatch) -> dict:
    """Offer `args.rate` requests a second for `args.duration` seconds over `args.concurrency`
    connections; latency is measured from the request's write to its answer."""
    latencies: list[float] = []
    accepted: set[str] = set()
    errors = 0
    queue: asyncio.Queue = asyncio.Queue(maxsize=args.concurrency * 4)

    async def worker() -> None:
        nonlocal errors
        connection = Connection(port)
        await connection.open()
        while (item := await queue.get()) is not None:
            method, path, body, headers = item
            lead_id = headers.pop("X-Lead", None)
            started = time.monotonic()
            if lead_id:
                watch.booked(lead_id, started)
            try:
                status, answer = await connection.request(method, path, body, headers)
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                errors += 1
                await connection.open()
                continue
            latencies.append((time.monotonic() - started) * 1000)
            if status not in (200, 302):
                errors += 1
            elif method == "POST" and (reply := json.loads(answer))["status"] == "accepted":
                accepted.add(reply["id"])

    workers = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    began = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - began) < args.duration:
        due = int(elapsed * args.rate) - sent
        for _ in range(due):
            await queue.put(load.next())
        sent += due
        await asyncio.sleep(0.002)
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    wall = time.monotonic() - began
    return {"latencies": latencies, "accepted": accepted, "errors": errors, "wall": wall}


def unprocessed(db_path: Path, accepted: set[str], timeout: float = 120) -> int:
    """Acknowledged events not processed once the inbox has drained (or the timeout passed)."""
    conn = sqlite3.connect(db_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()
        if pending[0] == 0:
            break
        time.sleep(0.2)
    done = {row[0] for row in conn.execute("SELECT id FROM inbox WHERE status = 'done'")}
    return len(accepted - done)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--rate", type=float, default=600, help="requests per second offered")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in flight")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "uysp.db"
        needed = int(args.rate * args.duration * 0.45) + 100  # leads that events use up
        leads, aliases = seed(db_path, needed, links=2000)
        process, url = start_receiver(db_path)
        watch = StopWatch(db_path)
        watch.thread.start()
        try:
            port = int(url.rsplit(":", 1)[1])
            result = asyncio.run(drive(port, Load(leads, aliases, args.seed), args, watch))
            lost = unprocessed(db_path, result["accepted"])
            time.sleep(0.1)
        finally:
            watch.done.set()
            process.terminate()
            process.wait(30)
    latencies = result["latencies"]
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "rps": round(len(latencies) / result["wall"], 1),
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "errors": result["errors"],
                "lost": lost,
                "booking_to_stop_p99_ms": percentile(watch.latencies_ms(), 99),
            }
        )
    )


if __name__ == "__main__":
    main()
