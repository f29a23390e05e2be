"""Card payments behind one interface. The sandbox gateway is the default; a real gateway adapter
implements the same ``charge`` and ``refund`` methods.

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


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount_cents: int
    message: str = "Refunded"


class RefundRefused(Exception):
    """The gateway refused the refund (unknown charge, more than what is left on it): not worth retrying."""


class PaymentGateway(Protocol):
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

    def charge(self, *, card_token: str, amount_cents: int, idempotency_key: str,
               description: str) -> ChargeResult:
        import secrets

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
        import secrets

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
