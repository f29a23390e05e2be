"""The job plumbing itself: inline fallback, the self-rescheduling sweep, the worker command."""

import time

import sqlalchemy as sa

from app.enums import MessageStatus
from app.extensions import db, jobs
from app.jobs import pending_sweeps
from app.models import OutboxMessage
from app.notify import queue_email


def test_inline_mode_runs_jobs_after_commit_without_redis(app):
    app.config["JOB_MODE"] = "inline"
    message = queue_email("inline@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    for _ in range(50):
        db.session.expire_all()
        if db.session.get(OutboxMessage, message.id).status is MessageStatus.HELD:
            break
        time.sleep(0.1)
    assert db.session.get(OutboxMessage, message.id).status is MessageStatus.HELD
    assert jobs.queue("email").count == 0


def test_sweep_job_runs_steps_and_schedules_the_next_sweep(app, run_jobs):
    jobs.queue("default").enqueue("app.jobs.sweep")
    run_jobs()
    scheduled = pending_sweeps()
    assert len(scheduled) == 1
    assert scheduled[0].startswith(jobs.job_id("sweep-"))


def test_sweep_cli_prints_what_it_did(app, runner):
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0
    assert '"outbox": 0' in result.output


def test_worker_cli_burst_delivers_queued_mail(app, runner):
    queue_email("cli@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.scalar(sa.select(OutboxMessage.status)) is MessageStatus.HELD
