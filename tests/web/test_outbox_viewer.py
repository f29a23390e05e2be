"""Admins read the outbox like a mail catcher: what the recipient gets, links included."""

import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import OutboxMessage


def test_admin_sees_the_working_exemption_link_in_the_outbox(app, client, auth, make):
    req, token = make.exemption_request(email="buyer@example.com")
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "buyer@example.com"))
    assert token not in message.body_text  # the row keeps a placeholder only
    auth.login(make.user(Role.ADMIN))
    listing = client.get("/admin/outbox").get_data(as_text=True)
    assert "buyer@example.com" in listing
    page = client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert f'href="http://certdesk.test/portal/r/{token}"' in page


def test_reviewer_cannot_read_the_outbox(app, client, auth, make):
    make.exemption_request(email="buyer@example.com")
    auth.login(make.user(Role.REVIEWER))
    assert client.get("/admin/outbox").status_code == 403


def test_a_held_message_says_held_not_delivered(client, auth, make):
    from app.enums import MessageStatus
    from app.models.base import utcnow
    from app.notify import queue_email

    auth.login(make.user(Role.ADMIN))
    message = queue_email("someone@example.com", "notice", subject="Held here",
                          context={"heading": "Hi", "body": "Body"})
    message.status, message.sent_at = MessageStatus.HELD, utcnow()
    db.session.commit()
    page = client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert "<dt>Held</dt>" in page and "<dt>Delivered</dt>" not in page
    assert db.session.get(OutboxMessage, message.id).is_held
