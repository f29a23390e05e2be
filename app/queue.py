"""Background jobs: RQ on Redis, enqueued only after the database commit.

Services never talk to Redis. They call ``defer(...)``, which parks the job on the current
SQLAlchemy session; an ``after_commit`` hook hands the parked jobs to RQ once the rows they
read are durable, and a rollback drops them. If Redis is unreachable at that moment the work is
not lost: the periodic sweeper finds the rows still waiting (outbox messages, PDF documents,
links past their expiry) and enqueues them again. Every job is idempotent, so a duplicate is harmless.

Job data is stored on Redis with RQ's JSON serializer (never pickle: whoever could write to Redis
could otherwise run code in a worker), so job arguments are plain ids, strings and lists. Every job id
carries the instance's ``QUEUE_PREFIX``, so instances sharing one Redis never touch each other's jobs.

``JOB_MODE=inline`` (used by ``make run`` when no Redis can be found) runs the jobs in a
background thread of the web process instead.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSession

log = logging.getLogger(__name__)

QUEUE_NAMES = ("email", "pdf", "default")
JOB_TIMEOUTS = {"email": 120, "pdf": 1800, "default": 600}


@dataclass
class DeferredJob:
    func: str
    args: tuple
    queue: str = "default"
    at: datetime | None = None
    job_id: str | None = None
    kwargs: dict = field(default_factory=dict)


class JobQueue:
    def __init__(self) -> None:
        self.app = None
        self._redis = None

    def init_app(self, app) -> None:
        self.app = app
        app.extensions["jobs"] = self

    # -- connection -----------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.app.config["JOB_MODE"]

    @property
    def redis(self):
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(self.app.config["REDIS_URL"], socket_connect_timeout=2)
        return self._redis

    @property
    def serializer(self):
        from rq.serializers import JSONSerializer

        return JSONSerializer

    def queue(self, name: str = "default"):
        from rq import Queue

        prefix = self.app.config["QUEUE_PREFIX"]
        return Queue(f"{prefix}{name}", connection=self.redis, default_timeout=JOB_TIMEOUTS[name],
                     serializer=self.serializer)

    def job_id(self, name: str) -> str:
        """A job id under this instance's prefix (RQ allows letters, digits, ``-`` and ``_``)."""
        prefix = re.sub(r"[^A-Za-z0-9_-]", "-", self.app.config["QUEUE_PREFIX"])
        return f"{prefix}{name}"

    def new_job_id(self) -> str:
        return self.job_id(uuid.uuid4().hex)

    def key(self, name: str) -> str:
        """A Redis key under this instance's prefix (locks, the last-sweep stamp)."""
        return f"{self.app.config['QUEUE_PREFIX']}{name}"

    def worker(self, queue_names=QUEUE_NAMES, worker_class=None):
        """An RQ worker for this instance's queues, reading jobs with the JSON serializer."""
        from rq import Worker

        worker_class = worker_class or Worker
        return worker_class([self.queue(n) for n in queue_names], connection=self.redis,
                            serializer=self.serializer)

    def all_queues(self):
        return [self.queue(name) for name in QUEUE_NAMES]

    # -- enqueueing -------------------------------------------------------------------------
    def enqueue_now(self, job: DeferredJob):
        """Send one job to RQ (or run it inline). Failures are logged, never raised: the row
        that asked for the job is already committed and the sweeper will pick it up again."""
        if self.mode == "inline":
            return self._run_inline(job)
        from rq import Retry

        options: dict[str, Any] = {
            "job_timeout": JOB_TIMEOUTS[job.queue],
            "failure_ttl": 7 * 24 * 3600,
            "result_ttl": 3600,
            "retry": Retry(max=3, interval=[10, 60, 300]),
        }
        options["job_id"] = self.job_id(job.job_id) if job.job_id else self.new_job_id()
        try:
            q = self.queue(job.queue)
            if job.at is not None:
                return q.enqueue_at(job.at, job.func, *job.args, **job.kwargs, **options)
            return q.enqueue(job.func, *job.args, **job.kwargs, **options)
        except Exception:  # noqa: BLE001 - Redis down: the sweeper re-enqueues from the database
            log.exception("could not enqueue %s%r; the sweeper will retry", job.func, job.args)
            return None

    def _run_inline(self, job: DeferredJob):
        delay = 0.0
        if job.at is not None:
            delay = (job.at - datetime.now(UTC)).total_seconds()
            if delay > 3600:
                return None  # far-future schedules are left to the periodic sweep
        app = self.app

        def run() -> None:
            from rq.utils import import_attribute

            with app.app_context():
                try:
                    import_attribute(job.func)(*job.args, **job.kwargs)
                except Exception:  # noqa: BLE001
                    log.exception("inline job %s%r failed", job.func, job.args)

        timer = threading.Timer(max(delay, 0.0), run)
        timer.daemon = True
        timer.start()
        return timer


def defer(session, func: str, *args, queue: str = "default", at: datetime | None = None,
          job_id: str | None = None, **kwargs) -> None:
    """Park a job on ``session``; it is enqueued after the next successful commit."""
    session.info.setdefault("deferred_jobs", []).append(
        DeferredJob(func=func, args=args, queue=queue, at=at, job_id=job_id, kwargs=kwargs)
    )


@sa.event.listens_for(FlaskSession, "after_commit")
def _enqueue_after_commit(session) -> None:
    pending = session.info.pop("deferred_jobs", [])
    if not pending:
        return
    jobs = current_app.extensions["jobs"]  # the JobQueue (app.extensions.jobs) init_app registered
    for job in pending:
        jobs.enqueue_now(job)


@sa.event.listens_for(FlaskSession, "after_rollback")
def _drop_on_rollback(session) -> None:
    session.info.pop("deferred_jobs", None)
