"""The Notifier on Slack: chat.postMessage through slack-sdk's WebClient, a Block Kit message
with a plain-text fallback, and slack-sdk's RateLimitErrorRetryHandler to wait out a 429.

A Slack failure is logged and counted and never stops a flow: notify() returns False. Notices
arrive with phone numbers already masked; nothing here logs the token or a notice's lines.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from integrations.pacing import Pacer
from uysp.ports import Channel, Notice

log = logging.getLogger(__name__)
DEFAULT_API_URL = "https://slack.com/api/"
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}
# Block Kit limits: header text, section text, a field's text, fields per section.
_HEADER_CHARS, _SECTION_CHARS, _FIELD_CHARS, _FIELDS = 150, 3000, 2000, 10


def escape(text: str) -> str:
    """Slack reads &, < and > as markup; a notice's text is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fallback_text(notice: Notice) -> str:
    """What notifications and clients without Block Kit show."""
    return _clip(escape("\n".join([notice.title, *notice.lines])), _SECTION_CHARS)


def blocks(notice: Notice) -> list[dict]:
    title = f"{_EMOJI.get(notice.level, '')} {notice.title}".strip()
    message: list[dict] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title, _HEADER_CHARS), "emoji": True},
        }
    ]
    body = "\n".join(escape(line) for line in notice.lines)
    if body.strip():
        message.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(body, _SECTION_CHARS)}}
        )
    if notice.fields:
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{escape(str(k))}*\n{escape(str(v))}", _FIELD_CHARS)}
            for k, v in list(notice.fields.items())[:_FIELDS]
        ]
        message.append({"type": "section", "fields": fields})
    return message


def _slack_error(exc: SlackApiError) -> str:
    """Slack's error name ("invalid_auth"), or the HTTP status when Slack gave none."""
    response = exc.response
    if response.status_code >= 500 or not response.get("error"):
        return f"http_{response.status_code}"
    return str(response["error"])


class SlackNotifier:
    def __init__(
        self,
        token: str,
        *,
        channels: Mapping[Channel, str],
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        rate_per_second: float = 1.0,
        cluster: bool | None = None,
        rate_limit_retries: int = 2,
    ) -> None:
        self.channels = dict(channels)
        self.pacer = Pacer("slack", rate_per_second, cluster=cluster)
        self.client = WebClient(
            token=token,
            base_url=api_url,
            timeout=timeout,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries)],
        )
        self.failures: Counter[str] = Counter()  # by Slack's error name or the exception's type
        self._lock = threading.Lock()

    def notify(self, channel: Channel, notice: Notice) -> bool:
        try:
            self.pacer.wait()
            self.client.chat_postMessage(
                channel=self.channels[channel], text=fallback_text(notice), blocks=blocks(notice)
            )
        except SlackApiError as exc:
            return self._failed(channel, notice, _slack_error(exc))
        except Exception as exc:  # a notifier never stops a flow
            return self._failed(channel, notice, type(exc).__name__)
        return True

    def _failed(self, channel: Channel, notice: Notice, reason: str) -> bool:
        with self._lock:
            self.failures[reason] += 1
        log.warning("Slack notice %r to %s not posted: %s", notice.title, channel, reason)
        return False
