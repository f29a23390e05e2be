"""The card on file, and WOS requests kept after a declined payment so they can be retried.

Replacing the card goes through the payment gateway's tokenization: the number and security code go
to the gateway and are forgotten; the customer row keeps only the token, the brand, the last four
digits and the expiry. A declined WOS payment keeps what the customer typed (a ``RequestDraft``
keyed by the declined payment); the declined e-mail, SMS and banner link to the card page with that
payment's id, and after the card is replaced the same request is offered again, filled in, with one
idempotency key, so retrying charges once however often it is clicked.

Plain service functions: explicit ``actor`` and ``now``; the caller commits.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, gettext

from app.activity import record
from app.extensions import db
from app.models import Customer, Payment, RequestDraft, User
from app.payments import BRAND_LABELS, CardRefused, CardToken, get_gateway

SUBJECT = "customer"

__all__ = ["CardRefused", "card_label", "card_page_url", "draft_for", "keep_declined_request", "replace_card"]


def card_label(customer: Customer) -> str:
    """"Visa ending 4242, expires 12/2029" (or "" when there is no card on file)."""
    if not customer.card_token:
        return ""
    brand = BRAND_LABELS.get(customer.card_brand or "", gettext("Card"))
    if customer.card_exp_month and customer.card_exp_year:
        return gettext("%(brand)s ending %(last4)s, expires %(when)s", brand=brand, last4=customer.card_last4 or "????",
                       when=f"{customer.card_exp_month:02d}/{customer.card_exp_year}")
    return gettext("%(brand)s ending %(last4)s", brand=brand, last4=customer.card_last4 or "????")


def card_expired(customer: Customer, today: date) -> bool:
    if not (customer.card_exp_month and customer.card_exp_year):
        return False
    return (customer.card_exp_year, customer.card_exp_month) < (today.year, today.month)


def replace_card(customer: Customer, *, number: str, exp_month, exp_year, cvc: str, actor: User | None,
                 now: datetime) -> CardToken:
    """Tokenize the card at the gateway and keep only token, brand, last four and expiry.

    Raises CardRefused (field -> message) when the gateway refuses it; nothing is stored then."""
    card = get_gateway().tokenize(number, exp_month, exp_year, cvc, today=now.date())
    with force_locale("en"):  # the timeline is read by staff
        before = card_label(customer) or "no card"
    customer.card_token = card.token
    customer.card_brand = card.brand
    customer.card_last4 = card.last4
    customer.card_exp_month = card.exp_month
    customer.card_exp_year = card.exp_year
    with force_locale("en"):
        after = card_label(customer)
    record(SUBJECT, customer.id, "card_replaced", actor=actor, customer_id=customer.id, now=now,
           message=f"Card on file replaced: {after} (was {before}).")
    return card


# -- declined WOS requests, kept for a retry -----------------------------------------------------------

def keep_declined_request(customer: Customer, payment: Payment, *, type: str, fields: dict,
                          actor: User | None, now: datetime) -> RequestDraft:
    """Keep what was typed for the request whose payment was declined (once per payment)."""
    from app.insurance.intake import new_idempotency_key

    draft = db.session.scalar(sa.select(RequestDraft).where(RequestDraft.payment_id == payment.id))
    if draft is not None:
        return draft
    clean = {k: (v if isinstance(v, str) else "") for k, v in (fields or {}).items()}
    draft = RequestDraft(customer_id=customer.id, payment_id=payment.id, type=str(type or "")[:20], fields=clean,
                         retry_key=new_idempotency_key(), created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(draft)
    db.session.flush()
    return draft


def draft_for(customer: Customer, payment_id) -> RequestDraft | None:
    """The kept request of this customer's declined payment ``payment_id`` (None for anything else)."""
    try:
        payment_id = int(payment_id)
    except (TypeError, ValueError):
        return None
    if not 0 < payment_id <= 2**31 - 1:
        return None
    return db.session.scalar(sa.select(RequestDraft).where(RequestDraft.payment_id == payment_id,
                                                           RequestDraft.customer_id == customer.id))


def card_page_url(payment: Payment) -> str:
    """The link in the declined e-mail and SMS: the portal's card page, then back to this request."""
    return f"{current_app.config['BASE_URL']}/portal/card?retry={payment.id}"


def retry_form_data(draft: RequestDraft) -> dict:
    """The request form's values for a retry: what was typed, and the retry's idempotency key."""
    return {**draft.fields, "type": draft.type, "idempotency_key": draft.retry_key}


def mark_retried(customer: Customer, idempotency_key: str | None, request_id: int) -> None:
    """The retry of a kept request went through: the draft is done (the card page stops offering it)."""
    if not idempotency_key:
        return
    db.session.execute(sa.update(RequestDraft)
                       .where(RequestDraft.customer_id == customer.id, RequestDraft.retry_key == idempotency_key,
                              RequestDraft.request_id.is_(None))
                       .values(request_id=request_id))
