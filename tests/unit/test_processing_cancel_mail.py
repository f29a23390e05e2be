"""Cancelling a COI request tells the customer (and only the customer), once."""

import sqlalchemy as sa

from app.enums import RequestStatus, Role
from app.extensions import db
from app.insurance import processing
from app.models import OutboxMessage
from app.models.base import utcnow


def test_cancel_emails_the_customer_with_the_note(app, make):
    customer = make.customer(contact_email="office@cancel.example.com")
    req = make.queue_request(customer=customer, holder_email="holder@example.com")
    processor = make.user(Role.PROCESSOR)
    processing.cancel(req, actor=processor, now=utcnow(), note="Duplicate of #12")
    db.session.commit()
    assert req.status is RequestStatus.CANCELLED
    messages = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.to_address for m in messages] == ["office@cancel.example.com"]
    assert "was cancelled" in messages[0].subject
    assert "Duplicate of #12" in messages[0].body_text
    assert "refunded" not in messages[0].body_text
