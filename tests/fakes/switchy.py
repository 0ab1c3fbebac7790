"""A loopback fake of Switchy's API (https://developers.switchy.io/): REST link creation and
the Hasura-style GraphQL endpoint that reads click counts, on one server.

POST /v1/links/create with header Api-Authorization and body {link: {url, domain, id, title,
tags, ...}, autofill} creates a link; `url` and `domain` are required, and an `id` (alias)
already taken on that domain, compared without case as Switchy does, is refused with 409.
Switchy documents no response or error bodies: the fake answers 201 with the link object and
refuses with {"message": ...}. POST /v1/graphql answers `links(where: {id: {_in: $ids},
domain: {_eq: $domain}}) { id clicks }` with the variables given, and GraphQL errors in an
`errors` list.
"""

from __future__ import annotations

import re
import secrets
import string
import threading
from datetime import UTC, datetime

from tests.fakes.http import FakeServer, Reply, Request

CREATE = "/v1/links/create"
GRAPHQL = "/v1/graphql"
SERVER_ERROR = Reply(502, {"message": "Bad gateway"})
_LINKS = re.compile(
    r"links\s*\(\s*where\s*:\s*\{(?P<where>.*)\}\s*\)\s*\{(?P<fields>[^{}]*)\}", re.S
)
_ID_IN = re.compile(r"\bid\s*:\s*\{\s*_in\s*:\s*\$(\w+)\s*\}")
_DOMAIN_EQ = re.compile(r"\bdomain\s*:\s*\{\s*_eq\s*:\s*\$(\w+)\s*\}")


def graphql_error(message: str, code: str) -> dict:
    return {"errors": [{"message": message, "extensions": {"path": "$", "code": code}}]}


class SwitchyFake(FakeServer):
    def __init__(
        self,
        *,
        token: str = "switchy-test-token",
        latency: float = 0.0,
        rate_limit: float | None = None,
        stall_seconds: float = 2.0,
    ) -> None:
        super().__init__(latency=latency, rate_limit=rate_limit, stall_seconds=stall_seconds)
        self.token = token
        self.links: dict[tuple[str, str], dict] = {}  # by (domain, alias in lower case)
        self._state = threading.Lock()

    @property
    def api_url(self) -> str:
        return self.url

    @property
    def graphql_url(self) -> str:
        return f"{self.url}{GRAPHQL}"

    # Behaviour a test arranges
    def click(self, domain: str, alias: str, times: int = 1) -> None:
        with self._state:
            self.links[(domain, alias.lower())]["clicks"] += times

    def take_alias(self, domain: str, alias: str) -> None:
        """Someone else's link already uses this alias."""
        with self._state:
            self.links[(domain, alias.lower())] = _link(
                domain, alias, "https://example.com/", "", []
            )

    def rate_limited_reply(self, request: Request) -> Reply:
        return Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "1"})

    # The API
    def handle(self, request: Request) -> Reply:
        if request.headers.get("api-authorization") != self.token:
            if request.path == GRAPHQL:
                return Reply(401, graphql_error("invalid api key", "access-denied"))
            return Reply(401, {"message": "Unauthorized"})
        if (request.method, request.path) == ("POST", CREATE):
            return self._create(request)
        if (request.method, request.path) == ("POST", GRAPHQL):
            return self._graphql(request)
        return Reply(404, {"message": "Not found"})

    def _create(self, request: Request) -> Reply:
        link = (request.json() or {}).get("link") or {}
        url, domain = link.get("url"), link.get("domain")
        if not url or not domain:
            return Reply(400, {"message": "link.url and link.domain are required"})
        alias = link.get("id") or "".join(secrets.choice(string.ascii_lowercase) for _ in range(7))
        with self._state:
            if (domain, alias.lower()) in self.links:
                return Reply(409, {"message": f"The id {alias} is already used on {domain}"})
            created = _link(domain, alias, url, link.get("title") or "", link.get("tags") or [])
            self.links[(domain, alias.lower())] = created
        return Reply(201, {k: v for k, v in created.items() if k != "clicks"})

    def _graphql(self, request: Request) -> Reply:
        body = request.json() or {}
        variables = body.get("variables") or {}
        match = _LINKS.search(body.get("query") or "")
        ids_var = _ID_IN.search(match["where"]) if match else None
        if not match or not ids_var or ids_var[1] not in variables:
            return Reply(200, graphql_error("the fake understands only links by id", "validation"))
        fields = match["fields"].split()
        if unknown := set(fields) - {"id", "domain", "url", "title", "clicks"}:
            return Reply(200, graphql_error(f"field(s) {sorted(unknown)} not found", "validation"))
        wanted = {str(alias).lower() for alias in variables[ids_var[1]]}
        domain_var = _DOMAIN_EQ.search(match["where"])
        domain = variables.get(domain_var[1]) if domain_var else None
        with self._state:
            found = [
                {name: link[name] for name in fields}
                for (link_domain, alias), link in self.links.items()
                if alias in wanted and domain in (None, link_domain)
            ]
        return Reply(200, {"data": {"links": found}})


def _link(domain: str, alias: str, url: str, title: str, tags: list[str]) -> dict:
    return {
        "id": alias,
        "domain": domain,
        "url": url,
        "title": title,
        "description": "",
        "tags": tags,
        "showGDPR": False,
        "uniq": secrets.randbelow(10**9),
        "workspaceId": 1,
        "createdDate": datetime.now(UTC).isoformat(),
        "clicks": 0,
    }
