"""SimpleTexting's adapter over HTTP against the loopback fake: the requests it makes, the
contact book, the failures it classifies, reconciliation's log, and its pace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from integrations.simpletexting import SimpleTextingGateway
from tests.fakes import simpletexting as st
from tests.fakes.http import Fault
from uysp.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentSendError,
    TransientSendError,
)

ACCOUNT = "8005550100"
TEXT = "Hi Ann, it's Ana from UYSP. Want a free 15-min sales audit?"


@pytest.fixture
def fake() -> Iterator[st.SimpleTextingFake]:
    with st.SimpleTextingFake(account_phone=ACCOUNT, stall_seconds=1.0) as server:
        yield server


def gateway_for(
    fake: st.SimpleTextingFake, *, token: str | None = None, account: str = ACCOUNT, **options
) -> SimpleTextingGateway:
    settings = {
        "api_url": fake.api_url,
        "cluster": False,
        "rate_per_second": 500,
        "timeout": 0.5,
        "backoff_seconds": 0.01,
    }
    return SimpleTextingGateway(token or fake.token, account, **(settings | options))


@pytest.fixture
def gateway(fake) -> Iterator[SimpleTextingGateway]:
    gateway = gateway_for(fake)
    yield gateway
    gateway.close()


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def phone(n: int) -> str:
    return f"+1212555{n:04d}"


def test_a_send_is_one_documented_request(fake, gateway):
    receipt = gateway.send("+12125550101", TEXT)

    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/v2/api/messages")
    assert request.headers["authorization"] == f"Bearer {fake.token}"
    assert request.json() == {
        "contactPhone": "2125550101",
        "accountPhone": ACCOUNT,
        "mode": "AUTO",
        "text": TEXT,
    }
    assert receipt.message_id == fake.messages[0]["id"]
    assert (receipt.segments, receipt.credits) == (1, 1)


def test_a_long_text_costs_the_credits_simpletexting_reports(fake, gateway):
    receipt = gateway.send("+12125550101", "x" * 200)

    assert (receipt.segments, receipt.credits) == (2, 2)


def test_first_texts_write_contact_names_in_batches(fake):
    gateway = gateway_for(fake, contact_batch_size=3)
    for n in range(6):
        gateway.send(phone(n), TEXT, first_name=f"Lead{n}", new_contact=True)

    batches = fake.requests_to("POST", "/v2/api/contacts-batch/batch-update")
    assert len(batches) == 2
    assert [len(b.json()["updates"]) for b in batches] == [3, 3]
    assert fake.contacts["2125550004"]["firstName"] == "Lead4"
    assert len(fake.requests) == 6 + 2
    gateway.close()


def test_later_steps_write_no_contact_unless_the_name_changed(fake):
    gateway = gateway_for(fake, contact_batch_size=1)
    gateway.send(phone(1), TEXT, first_name="Ann", new_contact=True)
    gateway.send(phone(1), TEXT + " 2", first_name="Ann")
    gateway.send(phone(2), TEXT + " 2", first_name="Bob")  # its first step was an earlier run's
    gateway.send(phone(1), TEXT + " 3", first_name="Annie")

    upserts = fake.requests_to("POST", "/v2/api/contacts")
    assert [u.json() for u in upserts] == [
        {"contactPhone": "2125550001", "firstName": "Ann"},
        {"contactPhone": "2125550001", "firstName": "Annie"},
    ]
    assert upserts[0].param("upsert") == "true"
    assert fake.contacts["2125550001"]["firstName"] == "Annie"
    gateway.close()


def test_names_waiting_for_a_batch_are_written_when_the_gateway_closes(fake):
    gateway = gateway_for(fake, contact_batch_size=100)
    gateway.send(phone(1), TEXT, first_name="Ann", new_contact=True)
    assert fake.contacts["2125550001"]["firstName"] is None

    gateway.close()

    assert fake.contacts["2125550001"]["firstName"] == "Ann"


def test_a_refused_contact_upsert_stops_its_send(fake):
    gateway = gateway_for(fake, contact_batch_size=1)

    with pytest.raises(PermanentSendError):
        gateway.send("+11235550100", TEXT, first_name="Ann", new_contact=True)

    assert fake.messages == []
    gateway.close()


def test_a_failed_contact_batch_is_logged_and_the_sends_go_on(fake, caplog):
    gateway = gateway_for(fake, contact_batch_size=2)
    fake.fail_next(st.SERVER_ERROR, times=3, path="/v2/api/contacts-batch")

    for n in range(2):
        gateway.send(phone(n), TEXT, first_name=f"Lead{n}", new_contact=True)

    assert len(fake.messages) == 2
    assert "batch update of 2 contacts failed" in caplog.text
    gateway.close()


def test_a_number_that_texted_stop_is_a_permanent_stop(fake, gateway):
    fake.unsubscribe("+12125550101")

    with pytest.raises(PermanentSendError) as raised:
        gateway.send("+12125550101", TEXT)

    assert raised.value.stop_reason == "STOP"
    assert "local unsubscribe" in str(raised.value)


def test_a_number_simpletexting_cannot_text_is_permanent(fake, gateway):
    with pytest.raises(PermanentSendError) as raised:
        gateway.send("+11115550100", TEXT)

    assert raised.value.code == "INVALID_PHONE"


def test_an_account_phone_not_on_the_account_halts_the_run(fake):
    gateway = gateway_for(fake, account="+1 (800) 555-9999")

    with pytest.raises(ConfigurationError) as raised:
        gateway.send("+12125550101", TEXT)

    assert raised.value.code == "ACCOUNT_PHONE_NOT_FOUND"
    assert fake.messages == []


def test_a_bad_token_halts_the_run_without_showing_the_token(fake):
    gateway = gateway_for(fake, token="revoked-token")

    with pytest.raises(ConfigurationError) as raised:
        gateway.send("+12125550101", TEXT)

    assert raised.value.code == "UNAUTHORIZED"
    assert "revoked-token" not in str(raised.value)


def test_a_dropped_answer_is_unknown_never_resent_and_in_the_log(fake, gateway):
    fake.fail_next(Fault.DROP_AFTER_ACCEPT, path=st.MESSAGES)

    with pytest.raises(OutcomeUnknownError):
        gateway.send("+12125550101", TEXT)

    assert len(fake.requests_to("POST", st.MESSAGES)) == 1
    (logged,) = gateway.message_log("+12125550101", an_hour_ago())
    assert (logged.message_id, logged.text) == (fake.messages[0]["id"], TEXT)


def test_a_send_that_times_out_is_unknown_and_reconciliation_finds_nothing(fake, gateway):
    fake.fail_next(Fault.STALL, path=st.MESSAGES)

    with pytest.raises(OutcomeUnknownError):
        gateway.send("+12125550101", TEXT)

    assert gateway.message_log("+12125550101", an_hour_ago()) == []


def test_an_unreachable_provider_is_transient_and_nothing_was_sent(fake, gateway):
    fake.go_offline()

    with pytest.raises(TransientSendError) as raised:
        gateway.send("+12125550101", TEXT)

    fake.come_online()
    assert raised.value.code == "CONNECT_FAILED"
    assert fake.messages == []


def test_a_429_send_is_tried_again_after_the_cool_down(fake):
    gateway = gateway_for(fake, backoff_seconds=0.3)
    fake.fail_next(st.TOO_MANY_REQUESTS, path=st.MESSAGES)

    gateway.send("+12125550101", TEXT)

    refused, sent = fake.requests
    assert (refused.status, sent.status) == (429, 201)
    assert sent.at - refused.at >= 0.3
    assert len(fake.messages) == 1
    gateway.close()


def test_sends_already_waiting_for_their_turn_also_wait_out_a_429(fake):
    gateway = gateway_for(fake, rate_per_second=10, backoff_seconds=0.5)
    gateway.send(phone(0), TEXT)  # the next sends all queue for their turn
    fake.fail_next(st.TOO_MANY_REQUESTS, path=st.MESSAGES)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: gateway.send(phone(n), TEXT), range(1, 5)))

    refused = next(r for r in fake.requests if r.status == 429)
    later = [r.at - refused.at for r in fake.requests if r.at > refused.at]
    assert len(later) == 4 and min(later) >= 0.5
    assert len(fake.messages) == 5
    gateway.close()


def test_a_send_refused_by_429_past_its_retries_is_transient(fake):
    gateway = gateway_for(fake, backoff_seconds=0.05, rate_limited_retries=2)
    fake.fail_next(st.TOO_MANY_REQUESTS, times=3, path=st.MESSAGES)

    with pytest.raises(TransientSendError) as raised:
        gateway.send("+12125550101", TEXT)

    assert raised.value.code == "HTTP_429"
    assert fake.count_status(429) == 3
    assert fake.messages == []
    gateway.close()


def test_a_server_error_is_transient(fake, gateway):
    fake.fail_next(st.SERVER_ERROR, path=st.MESSAGES)

    with pytest.raises(TransientSendError) as raised:
        gateway.send("+12125550101", TEXT)

    assert raised.value.code == "HTTP_503"


def test_the_log_reads_outbound_texts_to_that_phone_since_then_over_pages(fake, gateway):
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    inbound = {"directionType": "MO", "text": "STOP"}
    for n in range(501):
        fake.messages.append(
            {
                "id": f"{n:024x}",
                "text": f"text {n}",
                "contactPhone": "2125550101",
                "accountPhone": ACCOUNT,
                "directionType": "MT",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
    fake.messages.append(fake.messages[0] | {"id": "old", "timestamp": old})
    fake.messages.append(fake.messages[0] | {"id": "in"} | inbound)
    fake.messages.append(fake.messages[0] | {"id": "other", "contactPhone": "2125550102"})

    log = gateway.message_log("+12125550101", an_hour_ago())

    assert len(log) == 501
    assert {m.phone for m in log} == {"+12125550101"}
    assert len(fake.requests_to("GET", st.MESSAGES)) == 2


def test_messages_since_reads_every_outbound_text_of_the_account_over_pages(fake, gateway):
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    for n in range(501):
        fake.messages.append(
            {
                "id": f"{n:024x}",
                "text": f"text {n}",
                "contactPhone": f"212555{n:04d}",
                "accountPhone": ACCOUNT,
                "directionType": "MT",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
    fake.messages.append(fake.messages[0] | {"id": "old", "timestamp": old})
    fake.messages.append(fake.messages[0] | {"id": "in", "directionType": "MO", "text": "STOP"})
    fake.messages.append(fake.messages[0] | {"id": "other account", "accountPhone": "8005550199"})

    log = gateway.messages_since(an_hour_ago())

    assert len(log) == 501
    assert {m.phone for m in log} == {phone(n) for n in range(501)}
    reads = fake.requests_to("GET", st.MESSAGES)
    assert [r.param("page") for r in reads] == ["0", "1"]
    assert all(r.param("contactPhone") is None for r in reads)
    assert {r.param("accountPhone") for r in reads} == {ACCOUNT}


def test_an_unreadable_account_log_is_none_not_empty(fake, gateway):
    gateway.send("+12125550101", TEXT)
    fake.fail_next(st.SERVER_ERROR, times=3, path=st.MESSAGES)  # past the read's retries

    assert gateway.messages_since(an_hour_ago()) is None


def test_the_log_is_read_through_a_429(fake, gateway):
    gateway.send("+12125550101", TEXT)
    fake.fail_next(st.TOO_MANY_REQUESTS, path=st.MESSAGES)

    assert [m.text for m in gateway.message_log("+12125550101", an_hour_ago())] == [TEXT]


def test_an_unreadable_log_is_none_not_empty(fake):
    gateway = gateway_for(fake, token="revoked-token")

    assert gateway.message_log("+12125550101", an_hour_ago()) is None


def test_the_balance_is_not_offered_by_the_api(gateway):
    assert gateway.credits_remaining() is None


def test_concurrent_sends_keep_under_the_rate_limit():
    with st.SimpleTextingFake(account_phone=ACCOUNT, rate_limit=20, latency=0.05) as fake:
        gateway = gateway_for(fake, rate_per_second=18)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            receipts = list(pool.map(lambda n: gateway.send(phone(n), TEXT), range(36)))
        elapsed = time.monotonic() - started
        gateway.close()

    assert len({r.message_id for r in receipts}) == 36
    assert fake.count_status(429) == 0
    assert fake.max_requests_per_second() <= 20
    assert 35 / 18 <= elapsed < 36 / 18 + 0.5  # paced, and not serialised behind the latency
