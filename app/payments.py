"""Card payments behind one interface. The sandbox gateway is the default; a real gateway adapter
implements the same ``charge`` method.

Sandbox test cards (the customer's card on file is stored as a token ``sandbox_<number>``):

| card number        | outcome                                                                |
|--------------------|------------------------------------------------------------------------|
| 4242 4242 4242 4242 | approved                                                              |
| 4000 0000 0000 0002 | declined                                                              |
| 4000 0000 0000 0119 | gateway error on the first attempt (the charge went through but the   |
|                     | answer was lost); a retry with the same idempotency key returns the    |
|                     | original charge, so the customer is charged once                       |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

APPROVE_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
ERROR_CARD = "4000000000000119"
TEST_CARDS = {APPROVE_CARD: "approve", DECLINE_CARD: "decline", ERROR_CARD: "error"}


def sandbox_token(card_number: str) -> str:
    return f"sandbox_{card_number}"


def card_outcome(token: str | None) -> str | None:
    """What the sandbox does with this card on file ("approve", "decline", "error"), for demos."""
    if not token or not token.startswith("sandbox_"):
        return None
    return TEST_CARDS.get(token.removeprefix("sandbox_"), "decline")


class ChargeStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    charge_id: str | None
    message: str = ""


class GatewayError(Exception):
    """The gateway did not answer clearly (timeout, 5xx). Safe to retry with the same key."""


class PaymentGateway(Protocol):
    def charge(self, *, card_token: str, amount_cents: int, idempotency_key: str,
               description: str) -> ChargeResult: ...
