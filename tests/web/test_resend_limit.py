"""Finding 12: a customer user's certificate resends are limited per user (each may name 20
addresses); staff are not limited."""

import sqlalchemy as sa

from app.enums import RequestType, Role
from app.extensions import db
from app.models import IssuedCertificate, OutboxMessage
from app.storage import get_store


def _cert(customer):
    cert = IssuedCertificate(certificate_number="N-1", kind=RequestType.COI, customer_id=customer.id,
                             holder_name="Holder", holder_email="h@holder.example.com", holder_key="holder",
                             document_key=get_store().save(b"%PDF-1.4 x"), filename="x.pdf")
    db.session.add(cert)
    db.session.commit()
    return cert


def _resend(client, customer, cert, n):
    return client.post(f"/customers/{customer.id}/certificates/resend",
                       data={"certificate_ids": [cert.id], "extra_emails": f"x{n}@example.com"})


def test_customer_user_resends_are_limited_per_user(app, client, auth, make, run_jobs):
    app.config["RESEND_RATE_LIMIT"] = "3 per hour"
    customer = make.customer()
    cert = _cert(customer)
    auth.login(make.user(Role.CUSTOMER, customer=customer))
    for n in range(3):
        assert _resend(client, customer, cert, n).status_code == 303
    refused = _resend(client, customer, cert, 99)
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    run_jobs()
    sent = {m.to_address for m in db.session.scalars(sa.select(OutboxMessage))}
    assert "x99@example.com" not in sent and "x2@example.com" in sent
    # another user of the same customer has a limit of their own
    auth.logout()
    auth.login(make.user(Role.CUSTOMER, customer=customer))
    assert _resend(client, customer, cert, 100).status_code == 303


def test_staff_resends_are_not_limited(app, client, auth, make):
    app.config["RESEND_RATE_LIMIT"] = "1 per hour"
    customer = make.customer()
    cert = _cert(customer)
    auth.login(make.user(Role.REVIEWER))
    for n in range(3):
        assert _resend(client, customer, cert, n).status_code == 303
