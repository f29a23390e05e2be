"""An SMTP outage loses nothing: temporary failures wait on a schedule of hours to days (as a mail
server does), sweeps never use up attempts, "failed" comes only after about three days and tells
the admins, who can retry; the exemption request page shows the delivery problem meanwhile.

Time is moved with ``now``: ``tick(t)`` does what the scheduler, the sweep and the delivery jobs do
at time ``t`` (the real worker path is covered by the first test)."""

from datetime import timedelta

import sqlalchemy as sa

from app.enums import MessageStatus, Role
from app.extensions import db, jobs
from app.models import OutboxMessage
from app.models.base import utcnow
from app.notify import RETRY_DELAYS, deliver, queue_email
from app.sweeper import run_sweep
from tests.conftest import free_port


def _queue(n: int, prefix: str = "buyer") -> list[int]:
    ids = [queue_email(f"{prefix}{i}@example.com", "notice", subject=f"Message {i}",
                       context={"heading": "h", "body": f"body {i}"}).id for i in range(n)]
    db.session.commit()
    return ids


def _tick(t) -> int:
    """At time t: the sweep re-enqueues what is due, and every delivery job (the scheduled retry, a
    duplicate, a sweep's re-enqueue) runs ``deliver`` with that time. Returns how many it tried."""
    run_sweep(t)
    tried = 0
    for message_id in db.session.scalars(sa.select(OutboxMessage.id).where(
            OutboxMessage.status == MessageStatus.PENDING)).all():
        tried += deliver(message_id, now=t) is not None
    db.session.expire_all()
    return tried


def _set_451(sink, on: bool):
    async def temporary_failure(server, session, envelope):
        return "451 4.3.0 Try again later"

    if on:
        sink.handle_DATA = temporary_failure
    else:
        del sink.handle_DATA


def test_first_failure_waits_for_its_time_and_an_early_job_uses_no_attempt(app, smtp, run_jobs):
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = free_port()  # nothing listens: connection refused
    [message_id] = _queue(1)
    run_jobs()  # a real worker: first attempt refused
    message = db.session.get(OutboxMessage, message_id)
    assert message.status is MessageStatus.PENDING and message.attempts == 1
    assert "ConnectionRefused" in message.last_error
    assert message.next_attempt_at > utcnow() + timedelta(seconds=50)
    retry_ids = jobs.queue("email").scheduled_job_registry.get_job_ids()
    assert retry_ids == [jobs.job_id(f"outbox-{message_id}-1")]

    # The sweep before that time re-enqueues nothing; a duplicate job claims nothing.
    run_sweep(utcnow() + timedelta(seconds=30))
    jobs.queue("email").enqueue("app.jobs.deliver_message", message_id)
    app.config["MAIL_PORT"] = port
    run_jobs()
    message = db.session.get(OutboxMessage, message_id)
    assert message.attempts == 1 and message.status is MessageStatus.PENDING
    assert smtp.messages == []

    # Its time comes (moved back here instead of waiting a minute): the retry delivers it once.
    message.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    jobs.queue("email").enqueue("app.jobs.deliver_message", message_id)
    jobs.queue("email").enqueue("app.jobs.deliver_message", message_id)
    run_jobs()
    assert len(smtp.to("buyer0@example.com")) == 1
    assert db.session.get(OutboxMessage, message_id).status is MessageStatus.SENT


def test_refused_then_451_then_up_delivers_each_message_once(app, smtp):
    port = app.config["MAIL_PORT"]
    ids = _queue(20)
    t0 = utcnow()
    # 30 minutes of connection refused, then 5 hours of 451, ticking every minute as the sweep does.
    app.config["MAIL_PORT"] = free_port()
    t = t0
    while t < t0 + timedelta(minutes=30):
        _tick(t)
        t += timedelta(minutes=1)
    attempts_refused = {m.attempts for m in db.session.scalars(sa.select(OutboxMessage))}
    assert attempts_refused == {4}  # at 0, 1, 6 and 21 minutes: not one per sweep
    app.config["MAIL_PORT"] = port
    _set_451(smtp, True)
    while t < t0 + timedelta(hours=5, minutes=30):
        _tick(t)
        t += timedelta(minutes=1)
    messages = db.session.scalars(sa.select(OutboxMessage)).all()
    assert {m.status for m in messages} == {MessageStatus.PENDING}
    assert all("451" in m.last_error for m in messages)
    assert smtp.messages == []
    _set_451(smtp, False)
    while t < t0 + timedelta(hours=14):
        _tick(t)
        t += timedelta(minutes=5)
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.status for m in messages] == [MessageStatus.SENT] * 20
    assert sorted(rcpts[0] for rcpts, _ in smtp.messages) == sorted(f"buyer{i}@example.com" for i in range(20))
    assert len({m["Message-ID"] for _, m in smtp.messages}) == 20
    assert [m.id for m in messages] == ids


def test_failed_only_after_the_whole_schedule_then_admins_are_told_and_can_retry(app, smtp, client, auth, make):
    port = app.config["MAIL_PORT"]
    admin = make.user(Role.ADMIN, email="boss@certdesk.example")
    db.session.commit()
    [message_id] = _queue(1, prefix="late")
    app.config["MAIL_PORT"] = free_port()
    t0 = utcnow()
    t = t0
    two_days = t0 + timedelta(days=2)
    while t < two_days:
        _tick(t)
        t += timedelta(minutes=10)
    assert db.session.get(OutboxMessage, message_id).status is MessageStatus.PENDING  # still trying after 2 days
    while t < t0 + timedelta(days=4):
        _tick(t)
        t += timedelta(minutes=10)
    message = db.session.get(OutboxMessage, message_id)
    assert message.status is MessageStatus.FAILED
    assert message.attempts == len(RETRY_DELAYS) + 1
    alert = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == admin.email))
    assert alert is not None and "late0@example.com" in alert.subject
    assert "gave up" in alert.body_text and "/admin/outbox" in alert.body_text

    app.config["MAIL_PORT"] = port
    auth.login(admin)
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "could not be delivered" in page and "Retry failed" in page
    response = client.post("/admin/outbox/retry-failed")
    assert response.status_code == 303
    assert "1 failed message will be sent again" in client.get("/admin/outbox").get_data(as_text=True)
    _tick(utcnow())
    assert db.session.get(OutboxMessage, message_id).status is MessageStatus.SENT
    assert len(smtp.to("late0@example.com")) == 1
    assert "could not be delivered" not in client.get("/admin/outbox").get_data(as_text=True)


def test_recipient_refused_for_good_fails_at_once(app, smtp):
    async def no_such_user(server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user"

    smtp.handle_RCPT = no_such_user
    [message_id] = _queue(1, prefix="ghost")
    _tick(utcnow())
    message = db.session.get(OutboxMessage, message_id)
    assert message.status is MessageStatus.FAILED and message.attempts == 1
    assert "No such user" in message.last_error


def test_exemption_request_page_shows_its_undelivered_link(app, smtp, client, auth, make):
    from app.exemptions import services

    reviewer = make.user(Role.REVIEWER)
    customer = make.customer()
    app.config["MAIL_PORT"] = free_port()
    req, _ = services.send_request(customer, "buyer@customer.example.com", actor=reviewer, now=utcnow())
    db.session.commit()
    _tick(utcnow())
    auth.login(reviewer)
    page = client.get(f"/exemptions/requests/{req.id}").get_data(as_text=True)
    assert "is not delivered yet" in page and "buyer@customer.example.com" in page
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.ref == f"exemption-request:{req.id}"))
    message.status = MessageStatus.FAILED
    db.session.commit()
    page = client.get(f"/exemptions/requests/{req.id}").get_data(as_text=True)
    assert "could not be delivered: the customer has not received this link" in page


def test_sent_is_committed_before_quit(app, smtp, monkeypatch):
    """At least once, with the shortest window: the row is committed as sent as soon as the server
    accepted the DATA, before QUIT, so a worker dying after that point cannot send it again."""
    import smtplib

    seen_at_quit = []
    docmd = smtplib.SMTP.docmd

    def watching_docmd(self, cmd, args=""):
        if cmd.upper() == "QUIT":
            with db.engine.connect() as conn:  # another connection: only committed rows are visible
                seen_at_quit.append(conn.scalar(sa.select(OutboxMessage.status)))
        return docmd(self, cmd, args)

    monkeypatch.setattr(smtplib.SMTP, "docmd", watching_docmd)
    [message_id] = _queue(1, prefix="quit")
    _tick(utcnow())
    assert seen_at_quit == [MessageStatus.SENT]
    assert len(smtp.to("quit0@example.com")) == 1
    assert db.session.get(OutboxMessage, message_id).attempts == 1
