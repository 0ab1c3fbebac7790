"""Random bodies against every endpoint: never a 5xx, and no valid event among them lost."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest

from tests.builders import make_lead
from tests.webhooks import payloads

ROUNDS = 60


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    match rng.choice(kinds):
        case "str":
            return "".join(rng.choices(string.printable + "é€😀", k=rng.randint(0, 20)))
        case "int":
            return rng.choice([0, -1, 2**63, rng.randint(-1000, 1000)])
        case "float":
            return rng.choice([1.5, -0.0, 1e308])
        case "bool":
            return rng.random() < 0.5
        case "null":
            return None
        case "list":
            return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "type",
        "values",
        "event",
        "payload",
        "uri",
        "messageId",
        "text",
        *string.ascii_lowercase,
    ]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def mutate(rng: random.Random, document: Any) -> Any:
    """The document with one value somewhere replaced, or one key dropped."""
    if isinstance(document, dict) and document:
        key = rng.choice(list(document))
        if rng.random() < 0.3:
            return {k: v for k, v in document.items() if k != key}
        return document | {key: mutate(rng, document[key])}
    if isinstance(document, list) and document:
        index = rng.randrange(len(document))
        return [*document[:index], mutate(rng, document[index]), *document[index + 1 :]]
    return random_json(rng)


def random_header(rng: random.Random) -> str:
    """A signature-like header value: t=, v1= and commas among random characters."""
    alphabet = string.ascii_letters + string.digits + ",=.-"
    return rng.choice(["t=", "v1=", ""]) + "".join(rng.choices(alphabet, k=rng.randint(1, 80)))


def random_body(rng: random.Random, valid: dict) -> bytes:
    match rng.randrange(3):
        case 0:
            return rng.randbytes(rng.randint(0, 600))
        case 1:
            return json.dumps(random_json(rng)).encode()
    return json.dumps(mutate(rng, valid)).encode()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_bodies_never_get_a_5xx_and_valid_events_are_all_processed(receiver, seed):
    rng = random.Random(seed)
    leads = receiver.svc.store.add_leads(make_lead(n) for n in range(ROUNDS))
    alias = receiver.svc.shortener.create(
        "https://calendly.com/uysp", lead_id=leads[0].id, campaign="c1"
    ).id
    statuses: list[int] = []
    valid_ids: list[str] = []

    for n, lead in enumerate(leads):
        booking = payloads.invitee(lead_id=lead.id, invitee_id=f"S{seed}N{n}")
        reply = payloads.incoming(
            "Interested, call me", contact=payloads.us_digits(lead.phone), message_id=f"m{seed}-{n}"
        )
        for kind, payload in (("calendly", booking), ("simpletexting", reply)):
            response = getattr(receiver, kind)(payload)
            assert response.status_code == 200, response.text
            valid_ids.append(response.json()["id"])
        fuzzed_calendly = random_body(rng, booking)
        fuzzed_texting = random_body(rng, reply)
        responses = [
            receiver.calendly(fuzzed_calendly),
            receiver.calendly(fuzzed_calendly, signature=random_header(rng)),
            receiver.simpletexting(fuzzed_texting),
            receiver.simpletexting(fuzzed_texting, token=str(random_json(rng))),
            receiver.http.request(
                rng.choice(["GET", "HEAD", "POST"]),
                f"/l/{rng.choice([alias, rng.randbytes(4).hex(), '%00', '..%2F'])}",
                headers={"User-Agent": rng.choice(["", "Mozilla/5.0", "Twitterbot/1.0"])},
            ),
            receiver.http.post(rng.choice(["/healthz", "/webhooks", "/l/"]), content=b"x"),
        ]
        statuses += [r.status_code for r in responses]

    deep = b"[" * 100_000 + b"]" * 100_000
    statuses += [receiver.calendly(deep).status_code, receiver.simpletexting(deep).status_code]
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert {400, 401, 404}.issubset(statuses)
    assert {receiver.processed(i).status for i in valid_ids} == {"done"}
    stopped = receiver.svc.store.stopped_among([lead.id for lead in leads])
    assert stopped == {lead.id for lead in leads}
