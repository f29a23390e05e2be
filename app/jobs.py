"""RQ jobs: thin wrappers that take ids, reload rows, call a service and commit.

Every job is idempotent: it checks the current state first, so a retry or a duplicate is a no-op.
The worker (``flask worker``) pushes the app context; a job started any other way builds one.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from flask import current_app, has_app_context

from app.extensions import db
from app.models.base import utcnow

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "certdesk-sweep"


def job(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not has_app_context():
            from app import create_app

            with create_app().app_context():
                return wrapper(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()

    return wrapper


@job
def deliver_message(message_id: int):
    from app.notify import deliver

    status = deliver(message_id)
    return str(status) if status else "nothing to do"


@job
def sweep(reschedule: bool = True):
    """Run every registered sweep step, then schedule the next sweep."""
    from app.sweeper import run_sweep

    results = run_sweep(utcnow())
    if reschedule:
        schedule_next_sweep()
    return results


def schedule_next_sweep(delay_seconds: int | None = None) -> None:
    from app.extensions import jobs

    if jobs.mode != "rq":
        return
    delay = delay_seconds if delay_seconds is not None else current_app.config["SWEEP_INTERVAL_SECONDS"]
    try:
        jobs.queue("default").enqueue_in(
            timedelta(seconds=delay), "app.jobs.sweep", job_id=SWEEP_JOB_ID, job_timeout=600,
            result_ttl=600, failure_ttl=24 * 3600,
        )
    except Exception:  # noqa: BLE001
        log.exception("could not schedule the next sweep")
