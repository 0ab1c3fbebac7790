"""The LinkShortener on Switchy (https://developers.switchy.io/).

A link is created over REST: POST /v1/links/create, header Api-Authorization, body
{link: {url, domain, id, title, tags}, autofill: false} (autofill would make Switchy fetch the
booking page's metadata on every create). We choose the alias (`id`), lower case because Switchy
compares aliases without case, and draw a new one when Switchy says it is taken. Click counts
are read from the GraphQL endpoint, up to 500 aliases per query.

A link that cannot be made raises LinkError and the scheduler holds that lead's text for the
next run, unless a fallback shortener is configured: then the fallback makes the link, and its
id carries a prefix so that clicks() asks the fallback for its count.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Sequence

import httpx

from integrations.pacing import Pacer
from integrations.provider_http import PacedClient
from uysp.errors import LinkError
from uysp.ports import LinkShortener, ShortLink

log = logging.getLogger(__name__)
DEFAULT_API_URL = "https://api.switchy.io"
DEFAULT_GRAPHQL_URL = "https://graphql.switchy.io/v1/graphql"
ALIAS_ALPHABET = string.ascii_lowercase + string.digits
ALIAS_LENGTH = 7
ALIASES_PER_QUERY = 500
FALLBACK_PREFIX = "fallback:"
CLICKS_QUERY = """query LinkClicks($ids: [String!]!, $domain: String!) {
  links(where: {id: {_in: $ids}, domain: {_eq: $domain}}) { id clicks }
}"""


def new_alias() -> str:
    return "".join(secrets.choice(ALIAS_ALPHABET) for _ in range(ALIAS_LENGTH))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    found = isinstance(body, dict) and (body.get("message") or body.get("error"))
    return str(found or response.reason_phrase)


class SwitchyShortener:
    def __init__(
        self,
        token: str,
        *,
        domain: str,
        api_url: str = DEFAULT_API_URL,
        graphql_url: str = DEFAULT_GRAPHQL_URL,
        links_per_hour: float = 3600,
        cluster: bool | None = None,
        timeout: float = 10.0,
        max_connections: int = 16,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        fallback: LinkShortener | None = None,
    ) -> None:
        self.domain = domain
        self.create_url = f"{api_url.rstrip('/')}/v1/links/create"
        self.graphql_url = graphql_url
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.fallback = fallback
        self.http = PacedClient(
            Pacer("switchy", links_per_hour / 3600, cluster=cluster),
            headers={"Api-Authorization": token},
            timeout=timeout,
            max_connections=max_connections,
            backoff_seconds=backoff_seconds,
        )

    def create(self, target_url: str, *, lead_id: str, campaign: str) -> ShortLink:
        try:
            return self._create_on_switchy(target_url, lead_id, campaign)
        except LinkError as exc:
            if self.fallback is None:
                raise
            log.warning("Switchy link for lead %s failed, using the fallback: %s", lead_id, exc)
        link = self.fallback.create(target_url, lead_id=lead_id, campaign=campaign)
        return ShortLink(FALLBACK_PREFIX + link.id, link.url)

    def clicks(self, link_ids: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(link_ids, 0)
        aliases = [i for i in counts if not i.startswith(FALLBACK_PREFIX)]
        for start in range(0, len(aliases), ALIASES_PER_QUERY):
            counts.update(self._switchy_clicks(aliases[start : start + ALIASES_PER_QUERY]))
        fallback_ids = [
            i.removeprefix(FALLBACK_PREFIX) for i in counts if i.startswith(FALLBACK_PREFIX)
        ]
        if fallback_ids and self.fallback is not None:
            fallback_counts = self.fallback.clicks(fallback_ids)
            counts.update({FALLBACK_PREFIX + i: n for i, n in fallback_counts.items()})
        return counts

    def close(self) -> None:
        self.http.close()

    def _create_on_switchy(self, target_url: str, lead_id: str, campaign: str) -> ShortLink:
        problem = ""
        for _ in range(self.attempts):
            alias = new_alias()
            link = {
                "url": target_url,
                "domain": self.domain,
                "id": alias,
                "title": f"{campaign} {lead_id}",
                "tags": [campaign],
            }
            try:
                response = self.http.request(
                    "POST", self.create_url, json={"link": link, "autofill": False}
                )
            except httpx.TransportError as exc:
                # The link may exist all the same; an unused alias costs nothing, so draw again.
                problem = repr(exc)
                time.sleep(self.backoff_seconds)
                continue
            if response.is_success:
                return ShortLink(alias, f"https://{self.domain}/{alias}")
            problem = f"{response.status_code}: {_message(response)}"
            if response.is_server_error:
                time.sleep(self.backoff_seconds)
            elif response.status_code not in (409, 429):  # 409: alias taken; 429: cooled down
                break  # any other refusal would only be repeated
        raise LinkError(f"Switchy made no link for lead {lead_id}: {problem}")

    def _switchy_clicks(self, aliases: list[str]) -> dict[str, int]:
        payload = {"query": CLICKS_QUERY, "variables": {"ids": aliases, "domain": self.domain}}
        try:
            response = self.http.read("POST", self.graphql_url, json=payload)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LinkError(f"Switchy click counts unavailable: {exc!r}") from exc
        if not response.is_success or not isinstance(body, dict) or body.get("errors"):
            errors = body.get("errors") if isinstance(body, dict) else body
            raise LinkError(f"Switchy refused the click query: {response.status_code} {errors}")
        return {row["id"]: int(row["clicks"] or 0) for row in body["data"]["links"]}
