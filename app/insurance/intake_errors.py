"""What the COI request services refuse with (``intake``, ``fees``, ``delivery``): each message is safe to
show to the user.
"""

from __future__ import annotations

from flask_babel import gettext

from app.models import CertificateRequest, Payment

PAYMENT_FAILED = "Merchant payment failed"


class IntakeError(Exception):
    """Base class; the message is safe to show to the user."""


class RequestInvalid(IntakeError):
    """Field errors: ``errors`` maps field name -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(gettext("Please correct the highlighted fields."))


class NotEligible(IntakeError):
    """The customer may not request certificates (not active); the message says why."""


class PaymentDeclined(IntakeError):
    def __init__(self, payment: Payment):
        self.payment = payment
        super().__init__(PAYMENT_FAILED)


class PaymentUnavailable(IntakeError):
    def __init__(self, payment: Payment):
        self.payment = payment
        super().__init__(gettext("Merchant payment failed: the payment service did not answer. You were not "
                                 "charged twice; please try again in a minute."))


class IdempotencyMismatch(IntakeError):
    """The idempotency key was already used for a different request (another type or other values)."""

    def __init__(self, req: CertificateRequest):
        self.request = req
        super().__init__(f"This Idempotency-Key was already used for request #{req.id} with a different body. "
                         "Send a new key for a new request, or the same body to get the first request back.")
