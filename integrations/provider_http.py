"""The HTTP side shared by the provider adapters: one pooled httpx.Client per adapter, every
request paced by the provider's Pacer, and a cool-down after a 429 that every thread of the
adapter honours, so the whole process backs off together instead of retrying into the limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import httpx

from integrations.pacing import Pacer

NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures that prove the request never reached the provider."""


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    try:
        return max(float(response.headers["Retry-After"]), 0.0)
    except (KeyError, ValueError):
        return default


class PacedClient:
    def __init__(
        self,
        pacer: Pacer,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_connections: int = 32,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.pacer = pacer
        self.backoff_seconds = backoff_seconds
        self.client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            event_hooks={"request": [self._wait_turn]},
        )
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """One paced request. A 429 starts the shared cool-down and is returned to the caller;
        transport errors are raised as httpx raises them."""
        response = self.client.request(method, url, **kwargs)
        if response.status_code == 429:
            self.cool_down(retry_after_seconds(response, self.backoff_seconds))
        return response

    def read(self, method: str, url: str, *, attempts: int = 3, **kwargs) -> httpx.Response:
        """A request that is safe to repeat (a read): tried again after transport errors, 429
        and 5xx, up to `attempts` times in all. The last try's response or error is the caller's."""
        for attempt in range(1, attempts):
            try:
                response = self.request(method, url, **kwargs)
            except httpx.TransportError:
                time.sleep(self.backoff_seconds * attempt)
                continue
            if response.status_code == 429:
                continue  # the cool-down spaces the next try
            if not response.is_server_error:
                return response
            time.sleep(self.backoff_seconds * attempt)
        return self.request(method, url, **kwargs)

    def _wait_turn(self, request: httpx.Request) -> None:
        """The pace, kept as late as it can be: httpx calls this with the request built and about
        to be written, so a stall of this thread before then cannot bunch requests up."""
        while True:  # a 429 that came while this request waited for its turn holds it too
            self._wait_out_cool_down()
            self.pacer.wait()
            if not self._cooling_down():
                return

    def cool_down(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def close(self) -> None:
        self.client.close()

    def _cooling_down(self) -> bool:
        with self._lock:
            return self._resume_at > time.monotonic()

    def _wait_out_cool_down(self) -> None:
        with self._lock:
            delay = self._resume_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
