"""The receiver as deployed, in process: the FastAPI app served by uvicorn on a loopback port
(in a thread), over real SQLite, with its embedded worker processing the inbox. Requests go
over real HTTP with httpx. No Prefect server is involved."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from integrations import calendly
from integrations.sqlite_store import SqliteStore
from uysp.events import InboxEvent
from uysp.ports import Services
from uysp.settings import Settings
from webhooks.app import create_app
from webhooks.inbox import Inbox

SIGNING_KEY = "calendly-test-signing-key"
TOKEN = "st-test-token"


@pytest.fixture
def store(db):
    """The HTTP layer runs on the embedded store; tests/flows covers every backend."""
    return SqliteStore(db)


@pytest.fixture
def inbox(db) -> Inbox:
    return Inbox(db)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        sqlite_path=tmp_path / "uysp.db",
        calendly_signing_key=SIGNING_KEY,
        simpletexting_webhook_token=TOKEN,
    )


class ServerThread:
    """uvicorn serving an app on a free loopback port until `stop`."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Receiver:
    http: httpx.Client
    svc: Services
    inbox: Inbox

    def calendly(
        self, payload: Any, *, signature: str | bytes | None = None, **headers
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if signature is None:
            signature = calendly.sign(body, SIGNING_KEY, self.svc.clock.now())
        headers = {calendly.SIGNATURE_HEADER: signature, **headers} if signature else headers
        return self.http.post("/webhooks/calendly", content=body, headers=headers)

    def simpletexting(self, payload: Any, *, token: str = TOKEN) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.http.post("/webhooks/simpletexting", params={"token": token}, content=body)

    def processed(self, event_id: str, timeout: float = 5) -> InboxEvent:
        """The event once the worker has settled it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.inbox.get(event_id)
            if event is not None and event.status != "pending":
                return event
            time.sleep(0.01)
        raise AssertionError(f"{event_id} was not processed within {timeout} s")

    def send(self, kind: str, payload: Any) -> InboxEvent:
        """Post one event, expect it accepted, and return it processed."""
        response = getattr(self, kind)(payload)
        assert response.status_code == 200, response.text
        return self.processed(response.json()["id"])


@pytest.fixture
def receiver(services, inbox, settings) -> Iterator[Receiver]:
    server = ServerThread(create_app(services, inbox, dispatch="embedded", settings=settings))
    url = server.start()
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            yield Receiver(http, services, inbox)
    finally:
        server.stop()
