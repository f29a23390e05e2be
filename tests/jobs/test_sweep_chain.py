"""The periodic sweep cannot stop: every worker tick makes sure a future sweep exists (after a Redis
flush, after a lost job hash), each run has its own id under the instance prefix, two workers
starting together schedule one sweep and never sweep at the same time, and the time of the last
sweep shows on the admin outbox page and in ``flask check-services``. Jobs are stored as JSON."""

import json
import zlib
from datetime import timedelta

from app.enums import Role
from app.extensions import db, jobs
from app.jobs import ensure_next_sweep, make_worker, pending_sweeps
from app.models.base import utcnow
from app.notify import queue_email
from app.sweeper import last_sweep_at, run_sweep, run_sweep_once


def _flush_this_run():
    """Redis restarted empty, for this test run only: delete every key carrying our prefix."""
    deleted = 0
    for pattern in (f"*{jobs.job_id('')}*", f"*{jobs.key('')}*"):
        for key in jobs.redis.scan_iter(match=pattern, count=1000):
            deleted += jobs.redis.delete(key)
    return deleted


def test_job_ids_carry_the_instance_prefix(app):
    queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    [job_id] = jobs.queue("email").get_job_ids()
    assert job_id.startswith(jobs.job_id(""))
    assert "certdesk-test-" in job_id  # the test run's QUEUE_PREFIX, made a valid job id
    [sweep_id] = [ensure_next_sweep()]
    assert sweep_id.startswith(jobs.job_id("sweep-"))


def test_job_data_is_json_not_pickle(app):
    queue_email("a@example.com", "notice", subject="x", context={"heading": "h", "body": "b"})
    db.session.commit()
    [job_id] = jobs.queue("email").get_job_ids()
    data = jobs.redis.hget(f"rq:job:{job_id}", "data")
    func, instance, args, kwargs = json.loads(zlib.decompress(data))
    assert func == "app.jobs.deliver_message" and isinstance(args[0], int)


def test_a_worker_tick_recreates_the_sweep_after_redis_restarts_empty(app):
    run_sweep(utcnow())  # a recent sweep: the next one is scheduled for its slot
    worker = make_worker(["default"])
    worker.run_maintenance_tasks()
    first = pending_sweeps()
    assert len(first) == 1
    assert _flush_this_run() > 0
    assert pending_sweeps() == []
    worker.run_maintenance_tasks()  # the next tick (one per sweep interval)
    assert len(pending_sweeps()) == 1


def test_a_lost_sweep_job_hash_is_replaced(app):
    run_sweep(utcnow())
    ensure_next_sweep()
    [job_id] = pending_sweeps()
    jobs.redis.delete(f"rq:job:{job_id}")  # the job hash expired; its registry entry is left
    ensure_next_sweep()
    [new_id] = pending_sweeps()
    assert jobs.redis.exists(f"rq:job:{new_id}")


def test_each_run_has_its_own_id_and_workers_starting_together_schedule_one(app, run_jobs):
    run_sweep(utcnow())
    now = utcnow()
    interval = app.config["SWEEP_INTERVAL_SECONDS"]
    first = ensure_next_sweep(now=now)
    assert ensure_next_sweep(now=now) is None  # a second worker finds it
    assert pending_sweeps() == [first]
    # The next run (one interval later) gets another id.
    jobs.queue("default").scheduled_job_registry.remove(first, delete_job=True)
    second = ensure_next_sweep(now=now + timedelta(seconds=interval))
    assert second != first


def test_two_sweeps_at_once_run_once(app):
    jobs.redis.set(jobs.key("sweep-lock"), "1", ex=60)  # another process is sweeping
    try:
        assert run_sweep_once(utcnow()) is None
    finally:
        jobs.redis.delete(jobs.key("sweep-lock"))
    assert "outbox" in run_sweep_once(utcnow())


def test_worker_start_runs_a_sweep_at_once_when_none_ran(app, run_jobs):
    job_id = ensure_next_sweep(soon=True)
    assert job_id in jobs.queue("default").get_job_ids()  # on the queue: no scheduler needed
    assert ensure_next_sweep(soon=True) is None  # a second worker starting finds it
    run_jobs()
    assert last_sweep_at() is not None


def test_an_overdue_sweep_is_queued_directly_when_the_scheduler_is_gone(app):
    """The worker holding RQ's scheduler lock was killed: scheduled sweeps sit in the registry for a
    minute. A worker tick sees the last sweep is 1.5 intervals old and queues one itself."""
    interval = app.config["SWEEP_INTERVAL_SECONDS"]
    run_sweep(utcnow())
    scheduled = ensure_next_sweep()
    assert scheduled in jobs.queue("default").scheduled_job_registry.get_job_ids()
    later = utcnow() + timedelta(seconds=interval)
    assert ensure_next_sweep(now=later) is None  # one interval: the scheduled one is still due
    queued = ensure_next_sweep(now=utcnow() + timedelta(seconds=1.5 * interval + 2))
    assert queued in jobs.queue("default").get_job_ids()


def test_last_sweep_shows_on_the_outbox_page_and_in_check_services(app, client, auth, make, runner):
    result = runner.invoke(args=["check-services"])
    assert result.exit_code != 0 and "sweep stale: no sweep has run yet" in result.output
    run_sweep(utcnow())
    result = runner.invoke(args=["check-services"])
    assert result.exit_code == 0, result.output
    assert "sweep ok: last sweep" in result.output

    auth.login(make.user(Role.ADMIN))
    db.session.commit()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "Repair sweep: last sweep" in page and "No worker seems to be running" not in page

    from app.models import Setting
    from app.sweeper import LAST_SWEEP_KEY

    db.session.get(Setting, LAST_SWEEP_KEY).value = (utcnow() - timedelta(hours=1)).isoformat()
    db.session.commit()
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "No worker seems to be running" in page
    result = runner.invoke(args=["check-services"])
    assert result.exit_code != 0 and "sweep stale" in result.output
