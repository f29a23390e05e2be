"""Outbox e-mails reach a real SMTP server through a real RQ worker, exactly once."""

import sqlalchemy as sa

from app.enums import MessageStatus
from app.extensions import db, jobs
from app.models import OutboxMessage
from app.notify import queue_email, queue_sms
from app.storage import get_store


def test_email_is_delivered_once_over_smtp(app, smtp, run_jobs):
    key = get_store().save(b"%PDF-1.4 fake attachment")
    message = queue_email("holder@example.com", "notice", subject="Hello <there>",
                          context={"heading": "Your certificate", "body": "See the attachment & enjoy."},
                          attachments=[{"key": key, "filename": "cert.pdf", "content_type": "application/pdf"}])
    db.session.commit()
    message_id = message.id

    assert run_jobs() == 1
    received = smtp.to("holder@example.com")
    assert len(received) == 1
    email = received[0]
    assert email["Subject"] == "Hello <there>"
    parts = {p.get_content_type(): p for p in email.walk()}
    assert "See the attachment & enjoy." in parts["text/plain"].get_content()
    assert "See the attachment &amp; enjoy." in parts["text/html"].get_content()
    assert parts["application/pdf"].get_filename() == "cert.pdf"
    assert db.session.get(OutboxMessage, message_id).status is MessageStatus.SENT

    # The same job again (a retry, or a duplicate enqueue): nothing more is sent.
    jobs.queue("email").enqueue("app.jobs.deliver_message", message_id)
    run_jobs()
    assert len(smtp.to("holder@example.com")) == 1
    assert db.session.get(OutboxMessage, message_id).attempts == 1


def test_without_mail_server_messages_are_held_in_outbox(app, run_jobs):
    queue_sms("+15125550100", "Your payment failed")
    db.session.commit()
    run_jobs()
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.status is MessageStatus.HELD
    assert message.body_text == "Your payment failed"


def test_dedupe_key_creates_one_message(app):
    first = queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"},
                        dedupe_key="reminder:1:7")
    second = queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"},
                         dedupe_key="reminder:1:7")
    db.session.commit()
    assert first.id == second.id
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_rolled_back_message_is_never_enqueued(app):
    queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.rollback()
    assert jobs.queue("email").count == 0


def test_enqueue_happens_only_after_commit(app):
    queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.flush()
    assert jobs.queue("email").count == 0
    db.session.commit()
    assert jobs.queue("email").count == 1


def test_sweeper_requeues_message_lost_with_redis(app, smtp, run_jobs):
    from datetime import timedelta

    from app.models.base import utcnow
    from app.sweeper import run_sweep

    message = queue_email("late@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    jobs.queue("email").empty()  # as if Redis lost the job
    run_jobs()
    assert smtp.to("late@example.com") == []
    run_sweep(utcnow() + timedelta(minutes=5))
    run_jobs()
    assert len(smtp.to("late@example.com")) == 1
    assert db.session.get(OutboxMessage, message.id).status is MessageStatus.SENT


def test_smtp_failure_leaves_message_pending_for_retry(app, run_jobs):
    from tests.conftest import free_port

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nothing listens there
    message = queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    run_jobs()
    message = db.session.get(OutboxMessage, message.id)
    assert message.status is MessageStatus.PENDING
    assert "ConnectionRefused" in message.last_error
