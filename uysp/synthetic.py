"""Synthetic leads for the demo and benchmarks: realistic US and Canadian numbers across every
time zone, and a share of the bad rows real exports carry."""

from __future__ import annotations

import random
from collections.abc import Iterator

from uysp.models import Lead, ProcessingStatus

# Area codes by zone, including ones with stricter state rules and a multi-zone one (208).
AREA_CODES = {
    "US": [
        "212",
        "617",
        "305",
        "904",
        "404",
        "312",
        "405",
        "214",
        "713",
        "303",
        "602",
        "208",
        "415",
        "213",
        "206",
        "503",
        "907",
        "808",
    ],
    "CA": ["416", "514", "604", "403", "902", "709", "306"],
}
FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Eli",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jon",
    "Kai",
    "Lena",
    "Marco",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
LAST_NAMES = ["Lee", "Garcia", "Smith", "Nguyen", "Brown", "Khan", "Martin", "Singh", "Roy"]
COMPANIES = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]


def synthetic_leads(count: int, seed: int = 7, bad_share: float = 0.08) -> Iterator[Lead]:
    """`count` leads, Ready for SMS; about `bad_share` of them fail a gate in some way."""
    rng = random.Random(seed)
    used: set[str] = set()
    for n in range(count):
        country = "US" if rng.random() < 0.85 else "CA"
        phone = _unique_phone(rng, country, used)
        first = rng.choice(FIRST_NAMES)
        fields: dict = {
            "phone": phone,
            "first_name": first,
            "last_name": rng.choice(LAST_NAMES),
            "email": f"{first.lower()}.{n}@example.com",
            "company": rng.choice(COMPANIES),
            "location_country": rng.choice([country, country, ""]),
            "lead_source": "demo",
            "icp_score": rng.randint(20, 100),
            "phone_valid": True,
            "processing_status": ProcessingStatus.READY,
        }
        if rng.random() < bad_share:
            fields |= _bad(rng)
        yield Lead(id="", **fields)


def _unique_phone(rng: random.Random, country: str, used: set[str]) -> str:
    while True:
        phone = f"+1{rng.choice(AREA_CODES[country])}555{rng.randint(0, 9999):04d}"
        if phone not in used:
            used.add(phone)
            return phone


def _bad(rng: random.Random) -> dict:
    return rng.choice(
        [
            {"phone": f"555-{rng.randint(10, 99)}", "phone_valid": False},
            {"first_name": None},
            {"location_country": "United Kingdom", "phone": f"+4420794{rng.randint(0, 99999):05d}"},
            {"current_client": True},
            {"hrq_status": "Archive"},
        ]
    )
