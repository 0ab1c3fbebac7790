"""A base for loopback HTTP fakes of the providers' APIs.

Each fake is a real HTTP/1.1 server on 127.0.0.1 (a random port, one thread per connection) so
an adapter is tested exactly as it runs: its own client, pool, timeouts and error handling. The
base gives every fake the same controls: latency, a rate limit over a sliding 1-second window,
scripted faults, random faults (`chaos`: a callable that may pick a fate for each request), an
offline switch, and a log of every request for assertions.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request as the fake received it; `status` is what it answered (None: no answer)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class Fault(Enum):
    DROP_AFTER_ACCEPT = "drop_after_accept"
    """Handle the request (a message is sent, a link is made), then close without answering."""
    STALL = "stall"
    """Hold the request unanswered for `stall_seconds`, then close; it is never handled."""


Chaos = Callable[[Request], Reply | Fault | None]


class FakeServer:
    """Subclasses implement `handle` (and `rate_limited_reply`); the base does the rest."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rate_limit: float | None = None,
        stall_seconds: float = 2.0,
        chaos: Chaos | None = None,
    ) -> None:
        self.latency = latency
        self.rate_limit = rate_limit
        self.stall_seconds = stall_seconds
        self.chaos = chaos
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._recent: deque[float] = deque()  # arrival times within the last second
        self._faults: deque[tuple[Reply | Fault, str | None]] = deque()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._port = 0

    # What a subclass provides
    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def rate_limited_reply(self, request: Request) -> Reply:
        return Reply(429, {"error": "rate limited"}, headers={"Retry-After": "1"})

    # Lifecycle
    def start(self) -> Self:
        self._serve()
        return self

    def stop(self) -> None:
        self.go_offline()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def go_offline(self) -> None:
        """Refuse connections, and close the open ones, until `come_online`."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def come_online(self) -> None:
        if self._httpd is None:
            self._serve()

    # Controls
    def fail_next(self, fault: Reply | Fault, times: int = 1, *, path: str | None = None) -> None:
        """Answer the next `times` requests (to paths starting with `path`, if given) this way."""
        with self._lock:
            self._faults.extend([(fault, path)] * times)

    # Observations
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._log)

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def count_status(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)

    def max_requests_per_second(self) -> int:
        """The most requests that arrived within any 1-second window."""
        times = sorted(r.at for r in self.requests)
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    # Serving
    def _serve(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._port = httpd.server_address[1]
        self._httpd = httpd
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def _arrive(self, request: Request) -> Reply | Fault | None:
        """Log the request and decide its fate before it is handled: a rate-limit refusal,
        a scripted fault, a fault `chaos` picks, or None to handle it normally."""
        with self._lock:
            self._log.append(request)
            while self._recent and request.at - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(request.at)
            if self.rate_limit is not None and len(self._recent) > self.rate_limit:
                return self.rate_limited_reply(request)
            for index, (fault, path) in enumerate(self._faults):
                if path is None or request.path.startswith(path):
                    del self._faults[index]
                    return fault
        chaos = self.chaos
        return chaos(request) if chaos is not None else None

    def _track(self, conn: socket.socket, is_open: bool) -> None:
        with self._lock:
            (self._connections.add if is_open else self._connections.discard)(conn)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs do
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, True)

    def finish(self) -> None:
        self.fake._track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces stderr
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            at=time.monotonic(),
        )
        fate = self.fake._arrive(request)
        if fate is Fault.STALL:
            time.sleep(self.fake.stall_seconds)
            self._hang_up()
            return
        if isinstance(fate, Reply):
            self._answer(request, fate)
            return
        if self.fake.latency:
            time.sleep(self.fake.latency)
        reply = self.fake.handle(request)
        if fate is Fault.DROP_AFTER_ACCEPT:
            self._hang_up()
            return
        self._answer(request, reply)

    def _answer(self, request: Request, reply: Reply) -> None:
        body = reply.encoded()
        request.status = reply.status
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
