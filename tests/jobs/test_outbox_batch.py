"""E-mail delivery in batches: one job sends every due e-mail over one SMTP connection, each message still
claimed once (sent exactly once), a refused recipient handled on its own without ending the batch."""

import sqlalchemy as sa

from app.enums import MessageStatus
from app.extensions import db
from app.models import OutboxMessage
from app.notify import queue_email


def count_connections(sink):
    sink.connections = 0

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sink.connections += 1
        session.host_name = hostname
        return responses

    sink.handle_EHLO = handle_EHLO


def queue(n, prefix="buyer"):
    for i in range(n):
        queue_email(f"{prefix}{i}@example.com", "notice", subject=f"Notice {i}",
                    context={"heading": f"Heading {i}", "body": f"Body number {i}"})
    db.session.commit()


def test_one_connection_delivers_every_due_email_once(app, smtp, run_jobs):
    count_connections(smtp)
    queue(6)
    run_jobs()
    received = sorted(rcpt for rcpts, _ in smtp.messages for rcpt in rcpts)
    assert received == sorted(f"buyer{i}@example.com" for i in range(6))  # each once, none twice
    assert {m["Subject"] for _, m in smtp.messages} == {f"Notice {i}" for i in range(6)}
    assert "Body number 3" in [m for r, m in smtp.messages if r == ["buyer3@example.com"]][0].get_body(
        ("plain",)).get_content()
    assert smtp.connections == 1
    rows = db.session.scalars(sa.select(OutboxMessage)).all()
    assert {(r.status, r.attempts) for r in rows} == {(MessageStatus.SENT, 1)}


def test_a_refused_recipient_fails_alone_and_the_batch_goes_on(app, smtp, run_jobs):
    count_connections(smtp)

    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp.handle_RCPT = handle_RCPT
    queue(2)
    queue(1, prefix="refused")
    queue(2, prefix="later")
    run_jobs()
    assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == [
        "buyer0@example.com", "buyer1@example.com", "later0@example.com", "later1@example.com"]
    refused = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "refused0@example.com"))
    assert refused.status is MessageStatus.FAILED and "550" in refused.last_error
    assert smtp.connections == 1


def test_the_batch_size_bounds_a_job(app, smtp, run_jobs):
    app.config["MAIL_BATCH_SIZE"] = 2
    count_connections(smtp)
    queue(5)
    run_jobs()
    assert len(smtp.messages) == 5 and smtp.connections == 3  # 2 + 2 + 1


def test_the_email_worker_does_not_fork_and_exits_after_its_max_jobs(app, smtp):
    import signal

    from rq import SimpleWorker, Worker

    from app.jobs import run_worker, worker_settings

    assert worker_settings(["email"]) == (SimpleWorker, 2000)
    assert worker_settings(["email", "pdf", "default"]) == (None, None)  # PDFs keep a work-horse per job
    app.config.update(WORKER_MAX_JOBS=3, MAIL_BATCH_SIZE=1)
    queue(5)
    forked = []
    original_fork = Worker.fork_work_horse

    def never_returned(signum, frame):
        raise AssertionError("the worker did not stop after WORKER_MAX_JOBS jobs")

    previous = signal.signal(signal.SIGALRM, never_returned)
    Worker.fork_work_horse = lambda self, *a, **k: forked.append(1) or original_fork(self, *a, **k)
    signal.alarm(60)
    try:
        run_worker(["email"])  # not --burst: only max_jobs can end it
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        Worker.fork_work_horse = original_fork
    assert len(smtp.messages) == 3 and forked == []
    db.session.expire_all()
    statuses = sorted(str(s) for s in db.session.scalars(sa.select(OutboxMessage.status)))
    assert statuses == ["pending", "pending", "sent", "sent", "sent"]


def test_emails_written_together_share_a_delivery_job(app, smtp, run_jobs):
    app.config["MAIL_BATCH_SIZE"] = 3
    queue(7)  # one transaction: a job for the 1st, 4th and 7th e-mail
    assert run_jobs() == 3
    assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == sorted(f"buyer{i}@example.com" for i in range(7))
    assert {str(s) for s in db.session.scalars(sa.select(OutboxMessage.status))} == {"sent"}
    queue(1)
    queue(1, prefix="other")  # separate transactions: a job each
    assert run_jobs() == 2 and len(smtp.messages) == 9


def test_a_chunk_is_claimed_in_one_statement_and_holds_its_limit(app, smtp):
    """One UPDATE … RETURNING claims the oldest due e-mails up to the limit (on PostgreSQL a SKIP LOCKED
    sub-select inside IN (…) could claim every row: the claim must stay a chunk), with what sending needs."""
    from app.models.base import utcnow
    from app.notify import claim_due_emails

    queue(30)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        rows = claim_due_emails(utcnow(), 12)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(rows) == 12 and statements.count("UPDATE") + statements.count("WITH") == 1
    assert [r.to_address for r in rows] == [f"buyer{i}@example.com" for i in range(12)]
    assert rows[3].subject == "Notice 3" and "Body number 3" in rows[3].body_text
    db.session.expire_all()
    statuses = [str(s) for s in db.session.scalars(sa.select(OutboxMessage.status).order_by(OutboxMessage.id))]
    assert statuses == ["sending"] * 12 + ["pending"] * 18
    assert len(claim_due_emails(utcnow(), 100)) == 18 and claim_due_emails(utcnow(), 100) == []


def test_a_non_forking_worker_keeps_its_smtp_connection_between_jobs_and_replaces_a_dropped_one(app, smtp, run_jobs):
    from app import notify

    count_connections(smtp)
    notify.KEEP_CONNECTION = True  # what run_worker sets for an email-only worker
    try:
        queue(1)
        queue(1, prefix="second")  # another transaction: its own job
        assert run_jobs() == 2
        assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == ["buyer0@example.com", "second0@example.com"]
        assert smtp.connections == 1  # the second job reused the first one's connection
        import socket

        notify._Connection.kept.smtp.sock.shutdown(socket.SHUT_RDWR)  # the connection dropped while idle
        queue(1, prefix="third")
        run_jobs()
        assert [rcpts for rcpts, _ in smtp.messages][-1] == ["third0@example.com"]
        assert smtp.connections == 2 and len(smtp.messages) == 3  # a fresh connection, nothing sent twice
    finally:
        notify.close_kept_connection()
        notify.KEEP_CONNECTION = False
    assert notify._Connection.kept is None
    assert {str(s) for s in db.session.scalars(sa.select(OutboxMessage.status))} == {"sent"}
