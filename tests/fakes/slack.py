"""A loopback fake of Slack's Web API method chat.postMessage (https://api.slack.com/methods).

Served under /api/ like slack.com. Failures come the way Slack sends them: HTTP 200 with
{"ok": false, "error": "..."} (not_authed, invalid_auth, channel_not_found, no_text,
invalid_blocks), and HTTP 429 with a Retry-After header and {"ok": false, "error": "ratelimited"}.
Channels may be named by name or id, as Slack allows.
"""

from __future__ import annotations

import threading
import time

from tests.fakes.http import FakeServer, Reply, Request

POST_MESSAGE = "/api/chat.postMessage"
SERVER_ERROR = Reply(503, "<html>Service Unavailable</html>", content_type="text/html")
DEFAULT_CHANNELS = {"#uysp-alerts": "C0ALERTS", "#uysp-daily": "C0DAILY", "#uysp-sales": "C0SALES"}
# Block Kit limits the fake enforces.
_HEADER_CHARS, _SECTION_CHARS, _FIELDS = 150, 3000, 10


def refusal(error: str) -> Reply:
    return Reply(200, {"ok": False, "error": error})


def blocks_problem(blocks: list[dict]) -> str | None:
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "header" and not 0 < len(text) <= _HEADER_CHARS:
            return "header text must be 1-150 characters"
        if block.get("type") == "section":
            fields = block.get("fields") or []
            if not text and not fields:
                return "a section needs text or fields"
            if len(text) > _SECTION_CHARS or len(fields) > _FIELDS:
                return "section text or fields over the limit"
    return None


class SlackFake(FakeServer):
    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        channels: dict[str, str] | None = None,
        retry_after: int = 1,
        latency: float = 0.0,
        rate_limit: float | None = None,
        stall_seconds: float = 2.0,
    ) -> None:
        super().__init__(latency=latency, rate_limit=rate_limit, stall_seconds=stall_seconds)
        self.token = token
        self.channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.retry_after = retry_after
        self.posts: list[dict] = []
        self._state = threading.Lock()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def rate_limited(self) -> Reply:
        return Reply(
            429,
            {"ok": False, "error": "ratelimited"},
            headers={"Retry-After": str(self.retry_after)},
        )

    def rate_limited_reply(self, request: Request) -> Reply:
        return self.rate_limited()

    def handle(self, request: Request) -> Reply:
        if (request.method, request.path) != ("POST", POST_MESSAGE):
            return refusal("unknown_method")
        authorization = request.headers.get("authorization")
        if not authorization:
            return refusal("not_authed")
        if authorization != f"Bearer {self.token}":
            return refusal("invalid_auth")
        message = request.json() or {}
        channel = message.get("channel", "")
        channel_id = self.channels.get(channel) or (
            channel if channel in self.channels.values() else None
        )
        if channel_id is None:
            return refusal("channel_not_found")
        if not message.get("text") and not message.get("blocks"):
            return refusal("no_text")
        if problem := blocks_problem(message.get("blocks") or []):
            return Reply(200, {"ok": False, "error": "invalid_blocks", "errors": [problem]})
        ts = f"{time.time():.6f}"
        with self._state:
            self.posts.append({**message, "channel": channel_id, "ts": ts})
        return Reply(
            200,
            {
                "ok": True,
                "channel": channel_id,
                "ts": ts,
                "message": {"type": "message", **message},
            },
        )
