"""SimpleTexting v2 webhook reports (https://api-doc.simpletexting.com/, "Webhook Reports").

Every report is {"reportId", "webhookId", "type", "values"}, `type` one of INCOMING_MESSAGE,
OUTGOING_MESSAGE, DELIVERY_REPORT, NON_DELIVERED_REPORT, UNSUBSCRIBE_REPORT. The values:
messages {"messageId", "subject", "mediaItems", "text", "accountPhone", "contactPhone",
"timestamp", "category", "referenceType"}; delivery reports {"messageId", "category",
"referenceType", "accountPhone", "contactPhone", "carrier"}; unsubscribes {"contactId",
"phone"}. Phones come as 10-digit US numbers ("8001234567").

SimpleTexting documents no signature for its webhooks, so the receiver checks a secret token in
the URL instead. Its retry behaviour is undocumented; redeliveries are recognised by message id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from uysp.events import PayloadError, ReportType, TextReport

_CONTACT_FIELD = {  # where the contact's number is, in the reports that act on the contact
    ReportType.INCOMING_MESSAGE: "contactPhone",
    ReportType.UNSUBSCRIBE_REPORT: "phone",
}
_REQUIRED = _CONTACT_FIELD | {
    ReportType.DELIVERY_REPORT: "messageId",
    ReportType.NON_DELIVERED_REPORT: "messageId",
}


class _Values(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messageId: str | None = None
    text: str | None = None
    contactPhone: str | None = None
    phone: str | None = None
    carrier: str | None = None
    timestamp: datetime | None = None


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reportId: str | None = None
    type: ReportType
    values: _Values


def parse(body: bytes) -> tuple[TextReport, str | None]:
    """The report in a webhook body and SimpleTexting's report id. Raises PayloadError naming
    the bad field."""
    try:
        report = _Report.model_validate(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError("body", f"not JSON ({exc})") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise PayloadError(field, error["msg"]) from exc
    values = report.values
    required = _REQUIRED.get(report.type)
    if required and not getattr(values, required):
        raise PayloadError(f"values.{required}", f"required for {report.type}")
    phone = None
    if field := _CONTACT_FIELD.get(report.type):
        phone = provider_e164(getattr(values, field), f"values.{field}")
    parsed = TextReport(
        type=report.type,
        phone=phone,
        text=values.text or "",
        message_id=values.messageId or None,
        carrier=values.carrier or None,
        sent_at=values.timestamp,
    )
    return parsed, report.reportId


def event_id(report: TextReport, report_id: str | None, body: bytes) -> str:
    """The message id names a message's report of each type; unsubscribes carry none, so their
    report id (or the body's hash) names them."""
    if report.message_id:
        return f"simpletexting:{report.type}:{report.message_id}"
    if report_id:
        return f"simpletexting:{report.type}:report:{report_id}"
    return f"simpletexting:{report.type}:sha256:{hashlib.sha256(body).hexdigest()}"


def provider_e164(raw: str, field: str) -> str:
    """SimpleTexting's '8001234567' as '+18001234567'. Not validated against numbering plans:
    the provider already delivered to it, and leads are matched on the E.164 text alone."""
    digits = "".join(c for c in raw if c.isdigit())
    if len(digits) == 10:
        return "+1" + digits
    if (len(digits) == 11 and digits.startswith("1")) or (raw.strip().startswith("+") and digits):
        return "+" + digits
    raise PayloadError(field, f"{raw!r} is not a phone number")
