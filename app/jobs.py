"""RQ jobs: thin wrappers that take ids, reload rows, call a service and commit.

Every job is idempotent: it checks the current state first, so a retry or a duplicate is a no-op.
The worker (``flask worker``) pushes the app context; a job started any other way builds one.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context

from app.extensions import db
from app.models.base import utcnow

log = logging.getLogger(__name__)

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
    """Run every registered sweep step (unless another process is sweeping right now), then make
    sure the next sweep is scheduled."""
    from app.sweeper import run_sweep_once

    results = run_sweep_once(utcnow())
    if reschedule:
        ensure_next_sweep()
    return results if results is not None else "another sweep was running"


SWEEP_FUNC = "app.jobs.sweep"


def _sweep_slot(at: datetime, interval: int) -> int:
    return int(at.timestamp()) // interval


def sweep_job_id(slot: int) -> str:
    """One id per interval slot: unique per run, and the same in every process that schedules the
    sweep for that slot, so two workers starting together schedule it once."""
    from app.extensions import jobs

    return jobs.job_id(f"sweep-{slot}")


def _queued_sweeps() -> list[str]:
    from rq.job import Job

    from app.extensions import jobs

    prefix = jobs.job_id("sweep-")
    return [job_id for job_id in jobs.queue("default").get_job_ids()
            if job_id.startswith(prefix) and Job.exists(job_id, connection=jobs.redis)]


def pending_sweeps() -> list[str]:
    """Ids of this instance's sweeps waiting in Redis (scheduled or queued) whose job still exists.
    A registry entry whose job hash is gone (expired, Redis restarted) is removed: it would never run."""
    from rq.job import Job

    from app.extensions import jobs

    queue = jobs.queue("default")
    prefix = sweep_job_id(0)[:-1]
    found = []
    registry = queue.scheduled_job_registry
    for job_id in registry.get_job_ids():
        if job_id.startswith(prefix):
            if Job.exists(job_id, connection=jobs.redis):
                found.append(job_id)
            else:
                registry.remove(job_id)
    return found + _queued_sweeps()


def ensure_next_sweep(*, soon: bool = False, now: datetime | None = None) -> str | None:
    """Make sure a future sweep exists; called by every worker on start, on each maintenance tick
    and at the end of each sweep. Returns the id of the sweep it scheduled or queued, or None.

    When the last sweep is overdue (older than one interval with ``soon``, a worker starting; one and
    a half otherwise) a sweep goes straight onto the queue: it then needs no RQ scheduler, whose lock
    a killed worker holds for a minute. With a tick every half interval, a sweep runs again within two
    intervals of the last one whatever happened to Redis or the scheduler."""
    from app.extensions import jobs
    from app.sweeper import last_sweep_at

    if jobs.mode != "rq":
        return None
    now = now or datetime.now(UTC)
    interval = max(int(current_app.config["SWEEP_INTERVAL_SECONDS"]), 1)
    options = {"job_timeout": 600, "result_ttl": 600, "failure_ttl": 24 * 3600}
    try:
        # One process at a time decides, so two workers never schedule two different slots.
        if not jobs.redis.set(jobs.key("sweep-ensure-lock"), "1", nx=True, ex=30):
            return None
        try:
            queue = jobs.queue("default")
            if _queued_sweeps():
                return None  # one is waiting for a worker already
            last = last_sweep_at()
            overdue = timedelta(seconds=interval if soon else 1.5 * interval)
            if last is None or last < now - overdue:
                job_id = jobs.job_id(f"sweep-now-{_sweep_slot(now, interval)}")
                queue.enqueue(SWEEP_FUNC, job_id=job_id, **options)
                return job_id
            if pending_sweeps():
                return None
            slot = _sweep_slot(now, interval) + 1
            job_id = sweep_job_id(slot)
            queue.enqueue_at(datetime.fromtimestamp(slot * interval, UTC), SWEEP_FUNC, job_id=job_id, **options)
            return job_id
        finally:
            jobs.redis.delete(jobs.key("sweep-ensure-lock"))
    except Exception:  # noqa: BLE001 - Redis down: the next maintenance tick tries again
        log.exception("could not schedule the next sweep")
        return None


def _ensure_from_worker(soon: bool = False) -> None:
    """The worker's own process must not keep database connections its forked jobs would share."""
    try:
        ensure_next_sweep(soon=soon)
    finally:
        db.session.remove()
        db.engine.dispose()


def make_worker(queue_names, *, worker_class=None):
    """The worker ``flask worker`` runs: besides jobs, each maintenance tick (every half sweep
    interval) checks that a sweep is coming, so the chain survives a Redis restart or a lost job."""
    from rq import Worker

    from app.extensions import jobs

    base = worker_class or Worker
    interval = max(int(current_app.config["SWEEP_INTERVAL_SECONDS"]), 1)

    class SweepingWorker(base):
        jobs_run = 0  # for run_worker's max_jobs check

        def execute_job(self, job, queue):
            self.jobs_run += 1
            return super().execute_job(job, queue)

        def run_maintenance_tasks(self):
            super().run_maintenance_tasks()
            _ensure_from_worker()

    worker = jobs.worker(queue_names, worker_class=SweepingWorker)
    worker.maintenance_interval = max(interval // 2, 1)
    # Wake from the blocking dequeue (worker_ttl - 15 s) once per tick, so the tick above really runs.
    worker.worker_ttl = max(min(worker.worker_ttl, worker.maintenance_interval + 15), 16)
    return worker


# Queues whose jobs are short (an e-mail batch, a webhook POST): their worker runs jobs in its own
# process (RQ's SimpleWorker) instead of forking a work-horse per job. As a memory safeguard such a
# worker exits after ``WORKER_MAX_JOBS`` jobs (default 2,000); the process supervisor starts a fresh
# one (docs/deploy.md). Workers that also take ``pdf`` / ``default`` jobs keep forking per job.
NON_FORKING_QUEUES = frozenset({"email"})
WORKER_MAX_JOBS = 2_000


def worker_settings(queue_names) -> tuple[type | None, int | None]:
    """(worker class, max jobs) for ``flask worker --queues ...``."""
    if not set(queue_names) <= NON_FORKING_QUEUES:
        return None, None
    from rq import SimpleWorker

    return SimpleWorker, int(current_app.config.get("WORKER_MAX_JOBS") or WORKER_MAX_JOBS)


def run_worker(queue_names, *, burst: bool = False) -> None:
    """``flask worker``: run an RQ worker with the scheduler; when it stops because Redis went away
    (RQ's worker quits on a lost connection while a job runs), start a fresh one in the same process,
    so a Redis restart needs no worker restart. A stop signal or ``--burst`` ends the loop, and so does
    a non-forking worker's ``max_jobs`` (the process exits to give its memory back; see above)."""
    from app import notify

    worker_class, max_jobs = worker_settings(queue_names)
    # A worker that runs its jobs in its own process keeps its SMTP connection between them.
    notify.KEEP_CONNECTION = worker_class is not None
    try:
        _work(queue_names, burst, worker_class, max_jobs)
    finally:
        notify.close_kept_connection()
        notify.KEEP_CONNECTION = False


def _work(queue_names, burst: bool, worker_class, max_jobs) -> None:
    import time

    from redis.exceptions import ConnectionError as RedisConnectionError

    while True:
        worker = None
        try:
            _ensure_from_worker(soon=True)
            worker = make_worker(queue_names, worker_class=worker_class)
            worker.work(burst=burst, with_scheduler=True, max_jobs=max_jobs)
        except RedisConnectionError:
            log.warning("Redis is unreachable")
        # A stop signal (Ctrl+C, SIGTERM) ends the loop whether it came while a job ran (RQ sets
        # _stop_requested) or while idle (RQ only records the shutdown time and returns).
        if burst or (worker is not None and (worker._stop_requested or worker._shutdown_requested_date)):
            return
        if max_jobs and worker is not None and worker.jobs_run >= max_jobs:
            log.info("worker ran %s jobs: exiting so that a fresh process takes over", max_jobs)
            return
        log.warning("worker stopped (Redis lost?); starting a new one in 2 s")
        time.sleep(2)
