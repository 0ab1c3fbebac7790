"""The SmsGateway contract: the same assertions over the sandbox and over SimpleTexting's
adapter talking HTTP to the loopback fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from integrations.clock import SystemClock
from integrations.sandbox_sms import Failure, SandboxGateway
from integrations.simpletexting import SimpleTextingGateway
from integrations.sqlite_store import SqliteDatabase
from tests.fakes import simpletexting as st
from tests.fakes.http import Fault
from uysp.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from uysp.models import StopReason
from uysp.ports import SmsGateway
from uysp.segments import segment_count

PHONE = "+12125550101"
OTHER_PHONE = "+12125550102"
TEXT = "Hi Ann, it's Ana from UYSP. Want a free 15-min sales audit? https://hi.switchy.io/abc1234"

EXPECTED: dict[Failure, tuple[type[SendError], str | None]] = {
    Failure.INVALID_CONTACT: (PermanentSendError, "INVALID_CONTACT"),
    Failure.UNSUBSCRIBED: (PermanentSendError, "UNSUBSCRIBED"),
    Failure.INVALID_NUMBER: (PermanentSendError, "INVALID_PHONE"),
    Failure.SERVER_ERROR: (TransientSendError, None),
    Failure.TIMEOUT_BEFORE_SEND: (TransientSendError, None),
    Failure.RATE_LIMITED: (TransientSendError, None),
    Failure.BAD_TOKEN: (ConfigurationError, "UNAUTHORIZED"),
    Failure.UNKNOWN_ACCOUNT_PHONE: (ConfigurationError, "ACCOUNT_PHONE_NOT_FOUND"),
}


@dataclass
class GatewayCase:
    gateway: SmsGateway
    break_next_send: Callable[[Failure, str], None]
    """Make the next send to this phone fail this way."""
    restore: Callable[[], None] = lambda: None


def simpletexting_breaker(fake: st.SimpleTextingFake) -> Callable[[Failure, str], None]:
    scripted = {
        Failure.INVALID_CONTACT: st.INVALID_CONTACT,
        Failure.INVALID_NUMBER: st.INVALID_PHONE,
        Failure.SERVER_ERROR: st.SERVER_ERROR,
        Failure.BAD_TOKEN: st.BAD_TOKEN,
        Failure.UNKNOWN_ACCOUNT_PHONE: st.TENANT_PHONE_NOT_FOUND,
        Failure.DROPPED_AFTER_ACCEPT: Fault.DROP_AFTER_ACCEPT,
    }

    def break_next_send(failure: Failure, phone: str) -> None:
        if failure == Failure.UNSUBSCRIBED:
            fake.unsubscribe(phone)
        elif failure == Failure.TIMEOUT_BEFORE_SEND:
            fake.go_offline()
        elif failure == Failure.RATE_LIMITED:  # a limit that outlasts the adapter's retries
            fake.fail_next(st.TOO_MANY_REQUESTS, times=3, path=st.MESSAGES)
        else:
            fake.fail_next(scripted[failure], path=st.MESSAGES)

    return break_next_send


@pytest.fixture(params=["sandbox", "simpletexting"])
def case(request, tmp_path) -> Iterator[GatewayCase]:
    if request.param == "sandbox":
        db = SqliteDatabase(tmp_path / "x.db")
        sandbox = SandboxGateway(db, SystemClock())
        yield GatewayCase(sandbox, lambda failure, phone: sandbox.fail_next(failure))
        db.close()
        return
    with st.SimpleTextingFake() as fake:
        gateway = SimpleTextingGateway(
            fake.token,
            "8005550100",
            api_url=fake.api_url,
            cluster=False,
            rate_per_second=200,
            timeout=1.0,
            backoff_seconds=0.01,
        )
        yield GatewayCase(gateway, simpletexting_breaker(fake), fake.come_online)
        gateway.close()


def recently() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=1)


def test_send_returns_a_provider_id_segments_and_credits(case):
    receipt = case.gateway.send(PHONE, TEXT, first_name="Ann", new_contact=True)

    assert receipt.message_id
    assert receipt.segments == segment_count(TEXT)
    assert receipt.credits is not None and receipt.credits >= 1


def test_each_send_gets_its_own_id(case):
    first = case.gateway.send(PHONE, TEXT)
    second = case.gateway.send(PHONE, TEXT + " (2)")

    assert first.message_id != second.message_id


def test_the_message_log_shows_what_was_sent_to_that_phone_since_then(case):
    receipt = case.gateway.send(PHONE, TEXT, first_name="Ann", new_contact=True)
    case.gateway.send(OTHER_PHONE, "someone else's text")

    log = case.gateway.message_log(PHONE, recently())

    assert [(m.message_id, m.text) for m in log] == [(receipt.message_id, TEXT)]
    assert case.gateway.message_log(PHONE, datetime.now(UTC) + timedelta(minutes=1)) == []


def test_messages_since_lists_every_outbound_text_to_any_phone(case):
    first = case.gateway.send(PHONE, TEXT, first_name="Ann", new_contact=True)
    second = case.gateway.send(OTHER_PHONE, "someone else's text")

    log = case.gateway.messages_since(recently())

    assert {(m.message_id, m.phone, m.text) for m in log} == {
        (first.message_id, PHONE, TEXT),
        (second.message_id, OTHER_PHONE, "someone else's text"),
    }
    assert all(m.sent_at >= recently() for m in log)
    assert case.gateway.messages_since(datetime.now(UTC) + timedelta(minutes=1)) == []


@pytest.mark.parametrize("failure", list(EXPECTED), ids=str)
def test_a_classified_failure_raises_its_class_and_sends_nothing(case, failure):
    error_class, code = EXPECTED[failure]
    case.break_next_send(failure, PHONE)

    with pytest.raises(error_class) as raised:
        case.gateway.send(PHONE, TEXT)

    assert type(raised.value) is error_class
    if code is not None:
        assert raised.value.code == code
    case.restore()
    assert case.gateway.message_log(PHONE, recently()) == []


def test_an_unsubscribed_number_stops_the_lead_as_stop(case):
    case.break_next_send(Failure.UNSUBSCRIBED, PHONE)

    with pytest.raises(PermanentSendError) as raised:
        case.gateway.send(PHONE, TEXT)

    assert raised.value.stop_reason == StopReason.STOP


def test_an_invalid_number_stops_the_lead_as_invalid(case):
    case.break_next_send(Failure.INVALID_NUMBER, PHONE)

    with pytest.raises(PermanentSendError) as raised:
        case.gateway.send(PHONE, TEXT)

    assert raised.value.stop_reason == StopReason.INVALID


def test_a_send_dropped_after_accept_is_unknown_and_the_log_shows_it(case):
    case.break_next_send(Failure.DROPPED_AFTER_ACCEPT, PHONE)

    with pytest.raises(OutcomeUnknownError):
        case.gateway.send(PHONE, TEXT)

    assert [m.text for m in case.gateway.message_log(PHONE, recently())] == [TEXT]


def test_the_gateway_works_again_after_a_failure(case):
    case.break_next_send(Failure.SERVER_ERROR, PHONE)
    with pytest.raises(TransientSendError):
        case.gateway.send(PHONE, TEXT)

    receipt = case.gateway.send(PHONE, TEXT)

    assert [m.message_id for m in case.gateway.message_log(PHONE, recently())] == [
        receipt.message_id
    ]
