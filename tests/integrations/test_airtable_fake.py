"""The loopback Airtable holds clients to Airtable's rules, or the store's tests would prove
nothing: these speak raw HTTP to it, as any client could."""

from __future__ import annotations

import requests

from tests.fakes.airtable import FakeAirtable

FIELDS = [
    {"name": "Name", "type": "singleLineText"},
    {"name": "Score", "type": "number", "options": {"precision": 0}},
    {"name": "Done", "type": "checkbox", "options": {"icon": "check", "color": "greenBright"}},
]


def client(fake: FakeAirtable) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


def test_writes_take_at_most_ten_records(airtable):
    base = airtable.add_base({"T": FIELDS})
    url = f"{airtable.url}/v0/{base}/T"
    eleven = {"records": [{"fields": {"Name": f"n{i}"}} for i in range(11)]}

    refused = client(airtable).post(url, json=eleven)
    accepted = client(airtable).post(url, json={"records": eleven["records"][:10]})

    assert refused.status_code == 422
    assert refused.json()["error"]["type"] == "INVALID_RECORDS"
    assert accepted.status_code == 200 and len(accepted.json()["records"]) == 10


def test_a_bad_formula_is_refused_naming_what_is_wrong(airtable):
    base = airtable.add_base({"T": FIELDS})
    url = f"{airtable.url}/v0/{base}/T"
    for formula, complaint in [("{Nope}=1", "Nope"), ("FOO({Name})", "FOO")]:
        answer = client(airtable).get(url, params={"filterByFormula": formula})
        assert answer.status_code == 422
        assert answer.json()["error"]["type"] == "INVALID_FILTER_BY_FORMULA"
        assert complaint in answer.json()["error"]["message"]


def test_lists_filter_sort_page_and_leave_empty_cells_out(airtable):
    base = airtable.add_base({"T": FIELDS})
    airtable.insert(
        base, "T", [{"Name": f"n{i}", "Score": i, "Done": i % 2 == 0} for i in range(5)]
    )
    url = f"{airtable.url}/v0/{base}/T"
    params = {
        "filterByFormula": "AND({Score} >= 1, NOT({Done}))",
        "sort[0][field]": "Score",
        "sort[0][direction]": "desc",
        "fields[]": ["Name", "Done"],
        "pageSize": 1,
    }
    first = client(airtable).get(url, params=params).json()
    second = client(airtable).get(url, params=params | {"offset": first["offset"]}).json()

    assert [r["fields"] for r in first["records"] + second["records"]] == [
        {"Name": "n3"},
        {"Name": "n1"},
    ]
    assert "offset" not in second


def test_too_many_requests_get_airtables_429_then_a_penalty():
    with FakeAirtable(requests_per_second=2, rate_limit_penalty=60) as fake:
        base = fake.add_base({"T": FIELDS})
        session = client(fake)
        statuses = [session.get(f"{fake.url}/v0/{base}/T").status_code for _ in range(4)]
        refused = session.get(f"{fake.url}/v0/{base}/T")

    assert statuses == [200, 200, 429, 429]
    assert refused.json() == {
        "errors": [
            {
                "error": "RATE_LIMIT_REACHED",
                "message": "Rate limit exceeded. Please try again later",
            }
        ]
    }
