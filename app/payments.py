"""Card payments behind one interface. The sandbox gateway is the default; a real gateway adapter
implements the same ``tokenize``, ``charge`` and ``refund`` methods.

``tokenize`` turns the card a person types into the gateway's token; CertDesk stores only that token,
the brand, the last four digits and the expiry, never the number or the security code.

Sandbox test cards (any future expiry, any 3-digit security code, 4 digits for American Express):

| card number         | brand            | outcome                                                      |
|---------------------|------------------|--------------------------------------------------------------|
| 4242 4242 4242 4242 | Visa             | approved                                                     |
| 5555 5555 5555 4444 | Mastercard       | approved                                                     |
| 3782 822463 10005   | American Express | approved                                                     |
| 4000 0000 0000 0002 | Visa             | declined                                                     |
| 4000 0000 0000 0119 | Visa             | gateway error on the first attempt (the charge went through  |
|                     |                  | but the answer was lost); a retry with the same idempotency  |
|                     |                  | key returns the original charge, so the customer is charged  |
|                     |                  | once                                                         |

Other numbers are refused by ``tokenize`` with a message per field. A sandbox token names only the
outcome (``tok_sbx_<outcome>_<random>``), never the number.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from flask_babel import gettext

APPROVE_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
ERROR_CARD = "4000000000000119"
MASTERCARD_CARD = "5555555555554444"
AMEX_CARD = "378282246310005"
TEST_CARDS = {APPROVE_CARD: "approve", DECLINE_CARD: "decline", ERROR_CARD: "error", MASTERCARD_CARD: "approve",
              AMEX_CARD: "approve"}
OUTCOMES = ("approve", "decline", "error")
_TOKEN = re.compile(r"^tok_sbx_(approve|decline|error)_[0-9a-f]{16}$")


def sandbox_token(card_number: str) -> str:
    """A new sandbox token for one of the test cards (it names the outcome, never the number)."""
    return f"tok_sbx_{TEST_CARDS.get(card_number, 'decline')}_{secrets.token_hex(8)}"


def card_outcome(token: str | None) -> str | None:
    """What the sandbox does with this card on file ("approve", "decline", "error"), for demos."""
    if not token:
        return None
    match = _TOKEN.match(token)
    if match:
        return match.group(1)
    if token.startswith("sandbox_"):  # tokens stored before tokenization existed
        return TEST_CARDS.get(token.removeprefix("sandbox_"), "decline")
    return None


# -- tokenization ----------------------------------------------------------------------------------

BRANDS = (("amex", "American Express", re.compile(r"^3[47]\d{13}$")),
          ("visa", "Visa", re.compile(r"^4\d{12}(\d{3})?(\d{3})?$")),
          ("mastercard", "Mastercard", re.compile(r"^(5[1-5]\d{14}|2(2[2-9]|[3-6]\d|7[01]|720)\d{12})$")),
          ("discover", "Discover", re.compile(r"^6(011|5\d\d)\d{12,15}$")))
BRAND_LABELS = {code: label for code, label, _ in BRANDS}


@dataclass(frozen=True)
class CardToken:
    """What a gateway gives back for a card: everything CertDesk may keep about it."""

    token: str
    brand: str  # "visa", "mastercard", "amex", "discover"
    last4: str
    exp_month: int
    exp_year: int

    @property
    def brand_label(self) -> str:
        return BRAND_LABELS.get(self.brand, self.brand.title())


class CardRefused(Exception):
    """The gateway would not take the card; ``errors`` maps form field (number, exp_month, exp_year, cvc)
    to a message the person can act on."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        n = int(ch)
        if index % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    return next((code for code, _, pattern in BRANDS if pattern.match(digits)), None)


def check_card(number, exp_month, exp_year, cvc, *, today: date) -> tuple[str, str, int, int]:
    """The checks every gateway makes before it tokenizes: (digits, brand, month, four-digit year) or
    CardRefused with one message per wrong field. Spaces and dashes in the number are ignored."""
    errors: dict[str, str] = {}
    digits = re.sub(r"[\s-]", "", str(number or ""))
    brand = None
    if not digits:
        errors["number"] = gettext("Enter the card number.")
    elif not digits.isdigit():
        errors["number"] = gettext("A card number has only digits (spaces are fine).")
    elif not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        errors["number"] = gettext("This card number is not valid: check the digits.")
    else:
        brand = card_brand(digits)
        if brand is None:
            errors["number"] = gettext("This card brand is not accepted (Visa, Mastercard, American Express, "
                                        "Discover).")
    month = _int(exp_month)
    if month is None or not 1 <= month <= 12:
        errors["exp_month"] = gettext("Enter the expiry month (1 to 12).")
    year = _int(exp_year)
    if year is not None and year < 100:
        year += 2000
    if year is None or not 2000 <= year <= today.year + 30:
        errors["exp_year"] = gettext("Enter the expiry year (e.g. 2029).")
    if "exp_month" not in errors and "exp_year" not in errors and (year, month) < (today.year, today.month):
        errors["exp_year"] = gettext("This card expired in %(when)s.", when=f"{month:02d}/{year}")
    code = str(cvc or "").strip()
    size = 4 if brand == "amex" else 3
    if not code.isdigit() or len(code) != size:
        errors["cvc"] = (gettext("Enter the 4-digit security code (front of the card).") if size == 4
                         else gettext("Enter the 3-digit security code."))
    if errors:
        raise CardRefused(errors)
    return digits, brand, month, year


def _int(value) -> int | None:
    from app.validation import parse_int

    return parse_int(str(value if value is not None else ""), low=0, high=9999)


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


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount_cents: int
    message: str = "Refunded"


class RefundRefused(Exception):
    """The gateway refused the refund (unknown charge, more than what is left on it): not worth retrying."""


class PaymentGateway(Protocol):
    def tokenize(self, number: str, exp_month, exp_year, cvc: str, *, today: date | None = None) -> CardToken: ...

    def charge(self, *, card_token: str, amount_cents: int, idempotency_key: str,
               description: str) -> ChargeResult: ...

    def refund(self, charge_id: str, amount_cents: int, idempotency_key: str) -> RefundResult: ...


class SandboxGateway:
    """A gateway that behaves like a real one for the test cards above, with its ledger in the database.

    Idempotency: a second call with a key it has seen returns the first call's result (the same
    charge id) and charges nothing, exactly as real gateways do. The error card records an approved
    charge and then raises :class:`GatewayError` on that first call only, simulating an answer lost
    on the way back.
    """

    def tokenize(self, number: str, exp_month, exp_year, cvc: str, *, today: date | None = None) -> CardToken:
        """Check the card and answer a token for it. Only the documented test numbers are accepted; any
        other well-formed number is refused with a message that lists them."""
        digits, brand, month, year = check_card(number, exp_month, exp_year, cvc, today=today or date.today())
        outcome = TEST_CARDS.get(digits)
        if outcome is None:
            raise CardRefused({"number": gettext(
                "The sandbox payment gateway accepts only its test cards: 4242 4242 4242 4242 (approves), "
                "5555 5555 5555 4444, 3782 822463 10005, 4000 0000 0000 0002 (declines) and 4000 0000 0000 0119.")})
        return CardToken(token=f"tok_sbx_{outcome}_{secrets.token_hex(8)}", brand=brand, last4=digits[-4:],
                         exp_month=month, exp_year=year)

    def charge(self, *, card_token: str, amount_cents: int, idempotency_key: str,
               description: str) -> ChargeResult:
        import sqlalchemy as sa

        from app.extensions import db
        from app.models.payments_sandbox import SandboxCharge

        if amount_cents <= 0:
            raise ValueError("amount_cents must be positive")
        existing = db.session.scalar(sa.select(SandboxCharge).where(SandboxCharge.idempotency_key == idempotency_key))
        if existing is not None:
            existing.calls += 1
            db.session.flush()
            return _result(existing)
        outcome = card_outcome(card_token) or "decline"
        row = SandboxCharge(
            idempotency_key=idempotency_key, charge_id=f"ch_sbx_{secrets.token_hex(8)}", card_token=card_token or "",
            amount_cents=amount_cents, outcome="declined" if outcome == "decline" else "approved",
            description=description[:200],
        )
        db.session.add(row)
        db.session.flush()
        if outcome == "error":
            raise GatewayError("The payment gateway did not answer (sandbox error card).")
        return _result(row)


    def refund(self, charge_id: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        """Give back ``amount_cents`` of an approved charge. A key it has seen returns the first refund
        (refunding nothing more); more than what is left on the charge raises :class:`RefundRefused`."""
        import sqlalchemy as sa

        from app.extensions import db
        from app.models.payments_sandbox import SandboxCharge, SandboxRefund

        if amount_cents <= 0:
            raise ValueError("amount_cents must be positive")
        existing = db.session.scalar(sa.select(SandboxRefund).where(SandboxRefund.idempotency_key == idempotency_key))
        if existing is not None:
            existing.calls += 1
            db.session.flush()
            return RefundResult(existing.refund_id, existing.amount_cents)
        charge = db.session.scalar(sa.select(SandboxCharge).where(SandboxCharge.charge_id == (charge_id or "")))
        if charge is None or charge.outcome != "approved":
            raise RefundRefused(f"No approved charge {charge_id!r} to refund.")
        already = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SandboxRefund.amount_cents), 0))
                                    .where(SandboxRefund.charge_id == charge.charge_id)) or 0
        if already + amount_cents > charge.amount_cents:
            raise RefundRefused(f"Only ${(charge.amount_cents - already) / 100:,.2f} of charge {charge_id} is left "
                                "to refund.")
        row = SandboxRefund(idempotency_key=idempotency_key, refund_id=f"re_sbx_{secrets.token_hex(8)}",
                            charge_id=charge.charge_id, amount_cents=amount_cents)
        db.session.add(row)
        db.session.flush()
        return RefundResult(row.refund_id, row.amount_cents)


def _result(row) -> ChargeResult:
    if row.outcome == "approved":
        return ChargeResult(ChargeStatus.APPROVED, row.charge_id, "Approved")
    return ChargeResult(ChargeStatus.DECLINED, None, "Card declined")


def get_gateway() -> PaymentGateway:
    """The gateway chosen by config ``PAYMENT_GATEWAY`` (default and only built-in: "sandbox")."""
    from flask import current_app

    name = current_app.config.get("PAYMENT_GATEWAY", "sandbox") or "sandbox"
    if name == "sandbox":
        return SandboxGateway()
    raise RuntimeError(f"Unknown PAYMENT_GATEWAY {name!r}; the built-in gateway is 'sandbox'.")
