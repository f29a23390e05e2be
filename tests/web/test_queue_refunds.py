"""Rejecting or cancelling a WOS request paid by card gives the money back, once, and says so."""

import pytest
import sqlalchemy as sa

from app.enums import PaymentMethod, RequestSource, RequestStatus, Role
from app.extensions import db
from app.insurance import fees, intake, processing
from app.models import Activity, OutboxMessage, Payment, SandboxRefund
from app.models.base import utcnow
from app.payments import APPROVE_CARD, GatewayError, RefundRefused, SandboxGateway

FIELDS = {"holder_name": "Paid Holder", "holder_email": "h@paid.example.com", "holder_phone": "5125550100",
          "holder_address": "1 Elm St", "holder_city": "Austin", "holder_state": "TX", "holder_zip": "78701",
          "project_name": "Depot", "project_location": "Austin", "project_duration": "3 months",
          "contract_details": "C-1"}


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR, name="Pia Processor")
    auth.login(user)
    return user


def _paid_wos(make, method=PaymentMethod.CARD, name="Card Payer Co"):
    customer = make.customer(name=name, payment_method=method, card=APPROVE_CARD,
                             contact_email="office@payer.example.com")
    req = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=FIELDS,
                                            actor=None, now=utcnow())
    db.session.commit()
    db.session.query(OutboxMessage).delete()
    db.session.commit()
    return req


def _reason_id(text="Needs a WOS endorsement"):
    return next(r.id for r in processing.rejection_reasons() if r.text == text)


def test_sandbox_refund_is_idempotent_and_capped(app, make):
    req = _paid_wos(make)
    payment = req.payments[0]
    gateway = SandboxGateway()
    first = gateway.refund(payment.gateway_charge_id, 2575, "refund-key-1")
    again = gateway.refund(payment.gateway_charge_id, 2575, "refund-key-1")
    assert first.refund_id == again.refund_id and first.amount_cents == 2575
    assert db.session.scalar(sa.select(SandboxRefund.calls).filter_by(idempotency_key="refund-key-1")) == 2
    with pytest.raises(RefundRefused, match="left to refund"):
        gateway.refund(payment.gateway_charge_id, 1, "refund-key-2")
    with pytest.raises(RefundRefused, match="No approved charge"):
        gateway.refund("ch_sbx_unknown", 100, "refund-key-3")
    with pytest.raises(ValueError):
        gateway.refund(payment.gateway_charge_id, 0, "refund-key-4")


def test_reject_refunds_card_payment_once_and_tells_the_customer(client, htmx, processor, make):
    req = _paid_wos(make)
    payment = req.payments[0]
    assert payment.amount_cents == 2575
    ok = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": str(req.version),
                                                              "reason_id": str(_reason_id())})
    assert ok.status_code == 200 and 'data-status="rejected"' in ok.text
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    assert payment.refunded_cents == 2575 and payment.refund_id.startswith("re_sbx_") and payment.refunded_at
    refunds = db.session.scalars(sa.select(SandboxRefund)).all()
    assert [(r.charge_id, r.amount_cents) for r in refunds] == [(payment.gateway_charge_id, 2575)]
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.to_address for m in mails] == ["office@payer.example.com"]
    assert "Your payment was refunded: $25.75" in mails[0].body_text and "card ending 4242" in mails[0].body_text
    assert "Your payment was refunded" in mails[0].body_html
    page = client.get(f"/dashboard/queue/{req.id}").text
    assert "Refunded $25.75" in page and "because the request was rejected" in page
    assert "approved card payment of $25.75 (card ending 4242), $25.75 refunded" in page

    # the same click again (stale page, double submit) refunds nothing more and sends nothing more
    again = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": "1", "reason_id": str(_reason_id())})
    assert again.status_code in (409, 422)
    assert db.session.scalar(sa.select(sa.func.count(SandboxRefund.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Activity.id)).filter_by(action="payment_refunded")) == 1
    # and a second call of the service step itself finds nothing left to refund
    assert processing.refund_payment(req, actor=processor, now=utcnow(), why="rejected") is None


def test_cancel_refunds_card_payment(htmx, processor, make):
    req = _paid_wos(make)
    response = htmx.post(f"/dashboard/queue/{req.id}/cancel", data={"version": str(req.version)})
    assert response.status_code == 200 and 'data-status="cancelled"' in response.text
    db.session.expire_all()
    assert db.session.get(Payment, req.payments[0].id).refunded_cents == 2575
    message = db.session.scalar(sa.select(Activity.message).filter_by(action="payment_refunded"))
    assert "because the request was cancelled" in message and "card ending 4242" in message


def test_ach_rejection_mentions_no_refund(htmx, processor, make):
    req = _paid_wos(make, method=PaymentMethod.ACH, name="Brook ACH Co")
    assert req.payments == [] and req.fee_cents == 2500
    ok = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": str(req.version),
                                                              "reason_id": str(_reason_id())})
    assert ok.status_code == 200
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert "refunded" not in mail.body_text and "Needs a WOS endorsement" in mail.body_text
    assert db.session.scalar(sa.select(sa.func.count(SandboxRefund.id))) == 0


def test_refund_gateway_silence_keeps_the_request_open(htmx, processor, make, monkeypatch):
    req = _paid_wos(make)

    def silent(self, charge_id, amount_cents, idempotency_key):
        raise GatewayError("timeout")

    monkeypatch.setattr(SandboxGateway, "refund", silent)
    response = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": str(req.version),
                                                                    "reason_id": str(_reason_id())})
    assert response.status_code == 422 and "could not be refunded" in response.text
    db.session.expire_all()
    again = db.session.get(type(req), req.id)
    assert again.status is RequestStatus.NEW and again.payments[0].refunded_cents == 0
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    monkeypatch.undo()
    ok = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": str(again.version),
                                                              "reason_id": str(_reason_id())})
    assert ok.status_code == 200 and 'data-status="rejected"' in ok.text


def test_fee_report_shows_refunds_and_net(client, htmx, auth, make):
    paid = _paid_wos(make)
    _paid_wos(make, name="Second Payer Co")
    auth.login(make.user(Role.PROCESSOR))
    htmx.post(f"/dashboard/queue/{paid.id}/reject", data={"version": str(paid.version),
                                                          "reason_id": str(_reason_id())})
    report = fees.wos_fee_report()
    assert (report["total"].card_charged_cents, report["total"].refunded_cents, report["total"].net_cents) == \
        (5150, 2575, 2575)
    auth.logout()
    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/fees/report").text
    assert "Refunded" in page and "−$25.75" in page and "Net" in page
    rows = client.get("/admin/fees/report.csv").text.strip().splitlines()
    assert rows[0].endswith("refunded,net") and rows[-1].endswith("51.50,0.00,25.75,25.75")


def test_cancel_dialog_says_what_cancel_does(client, processor, make):
    """The confirmation names the e-mail and the refund that cancelling really sends and makes."""
    paid = _paid_wos(make)
    page = client.get(f"/dashboard/queue/{paid.id}").get_data(as_text=True)
    assert "The customer is e-mailed that the request was cancelled" in page
    assert "The $25.75 card payment is refunded." in page
    assert "not e-mailed" not in page

    unpaid = make.queue_request()
    db.session.commit()
    page = client.get(f"/dashboard/queue/{unpaid.id}").get_data(as_text=True)
    assert "The customer is e-mailed that the request was cancelled" in page
    assert "card payment is refunded" not in page
