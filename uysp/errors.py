"""Classified failures. Adapters raise these; the scheduler decides from the class alone."""

from __future__ import annotations

from uysp.models import ErrorClass


class SendError(Exception):
    """A send that did not go out, for a reason the adapter has classified."""

    error_class: ErrorClass = ErrorClass.TRANSIENT

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"


class PermanentSendError(SendError):
    """This number can never be texted: invalid contact, unsubscribed, not a phone number."""

    error_class = ErrorClass.PERMANENT

    def __init__(self, message: str, *, code: str | None = None, stop_reason: str = "INVALID"):
        super().__init__(message, code=code)
        self.stop_reason = stop_reason


class TransientSendError(SendError):
    """A provider hiccup (5xx, timeout before sending, 429): leave it for the next run."""

    error_class = ErrorClass.TRANSIENT


class ConfigurationError(SendError):
    """Our side is wrong (bad token, unknown account phone): halt the run and alert."""

    error_class = ErrorClass.CONFIGURATION


class OutcomeUnknownError(SendError):
    """The request may have reached the provider but no answer came back: never retry blindly,
    reconcile against the provider's log instead."""


class LinkError(Exception):
    """A tracking link could not be created; the lead's text waits for the next run."""


class StoreError(Exception):
    """The lead store refused or failed a request; the message names table and field."""
