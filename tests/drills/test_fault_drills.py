"""Fault drills with real processes (each well under a minute). The figures each drill measures are
printed (run with ``-s`` to see them) and asserted: nothing lost, nothing sent twice except the
documented at-least-once window.

- SMTP refused, then ``451``, then up: every message delivered once.
- Redis stopped during 50 exemption sends and 20 COI submissions and started empty: every e-mail once, the
  sweep runs again with no worker restart.
- A worker SIGKILLed in the middle of a batch of 80 e-mails (the job process too): nothing lost; duplicates counted.
- The worker holding RQ's scheduler lock SIGKILLed: the sweep runs again within two intervals.
"""

import time
from collections import Counter

import sqlalchemy as sa

from app.enums import MessageStatus, Role
from app.extensions import db, jobs
from app.models import ExemptionRequest, OutboxMessage
from app.models.base import utcnow
from app.notify import queue_email
from app.sweeper import last_sweep_at
from tests.drills.conftest import wait_for


def _statuses() -> Counter:
    return Counter(db.session.scalars(sa.select(OutboxMessage.status)).all())


def _queue(n: int, prefix: str) -> None:
    for i in range(n):
        queue_email(f"{prefix}{i}@example.com", "notice", subject=f"Drill {i}", context={"heading": "h", "body": "b"})
    db.session.commit()


def test_smtp_refused_then_451_then_up_delivers_each_message_once(app, private_redis, switchable_smtp, workers):
    app.config["MAIL_RETRY_DELAYS"] = (1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)  # ~30 s instead of ~3 days
    n = 20
    _queue(n, "outage")  # SMTP is down (nothing listens on its port)
    started = time.monotonic()
    workers.start()
    ok = wait_for(lambda: db.session.scalar(sa.select(sa.func.min(OutboxMessage.attempts))) >= 1, 45)
    assert ok, workers.log_tail()
    time.sleep(3)
    switchable_smtp.up(answer_451=True)
    time.sleep(4)
    assert _statuses()[MessageStatus.SENT] == 0
    assert switchable_smtp.sink.messages == []
    switchable_smtp.up()
    up_at = time.monotonic()
    assert wait_for(lambda: _statuses()[MessageStatus.SENT] == n, 40), _statuses()
    recovery = time.monotonic() - up_at
    per_rcpt = Counter(r[0] for r, _ in switchable_smtp.sink.messages)
    attempts = Counter(db.session.scalars(sa.select(OutboxMessage.attempts)).all())
    print(f"\nSMTP drill: {n} messages, lost 0, duplicated {sum(c - 1 for c in per_rcpt.values())}, "
          f"delivered {recovery:.1f} s after the server came up ({time.monotonic() - started:.1f} s in all); "
          f"attempts per message {dict(sorted(attempts.items()))}")
    assert len(per_rcpt) == n and set(per_rcpt.values()) == {1}
    assert _statuses() == Counter({MessageStatus.SENT: n})


def test_redis_restarted_empty_during_exemption_sends(app, make, private_redis, switchable_smtp, workers):
    from app.enums import RequestSource
    from app.exemptions import services
    from app.insurance.intake import submit_certificate_request
    from app.models import CertificateRequest

    switchable_smtp.up()
    reviewer = make.user(Role.REVIEWER)
    customers = [make.customer() for _ in range(5)]
    # COI submissions whose program is decided by staff: the drill is about their e-mails, not PDFs.
    coi_customers = [make.customer(automation_enabled=False) for _ in range(2)]
    db.session.commit()
    workers.start()
    assert wait_for(lambda: last_sweep_at() is not None, 30)
    n, sent, coi = 50, 0, 0

    def send(count, cois):
        nonlocal sent, coi
        for _ in range(count):
            services.send_request(customers[sent % 5], f"buyer{sent}@example.com", actor=reviewer, now=utcnow())
            db.session.commit()
            sent += 1
        for _ in range(cois):
            submit_certificate_request(
                coi_customers[coi % 2], type="coi", source=RequestSource.PORTAL, actor=None, now=utcnow(),
                fields={"holder_name": f"Holder {coi}", "holder_email": f"holder{coi}@example.com",
                        "holder_address": "1 Elm St", "holder_city": "Austin", "holder_state": "TX",
                        "holder_zip": "78701", "holder_phone": "5125550100", "project_name": "Depot",
                        "project_location": "Austin", "project_duration": "3 months", "contract_details": "C-1"})
            db.session.commit()
            coi += 1

    send(20, 8)
    private_redis.stop()  # Redis goes away in the middle of the sends: enqueues fail, rows are committed
    stopped_at = time.monotonic()
    send(20, 8)
    time.sleep(5)
    private_redis.start()  # back, empty
    jobs._redis = None
    restarted_at = time.monotonic()
    send(10, 4)
    assert sent == n and coi == 20
    assert db.session.scalar(sa.select(sa.func.count(CertificateRequest.id))) == 20
    total = db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)))
    restarted_wall, first_sweep = time.time(), []

    def all_sent() -> bool:
        last = last_sweep_at()
        if not first_sweep and last is not None and last.timestamp() > restarted_wall:
            first_sweep.append(time.monotonic() - restarted_at)
        return _statuses()[MessageStatus.SENT] == total

    ok = wait_for(all_sent, 45, step=0.1)
    assert ok, f"{_statuses()}\n{workers.log_tail()}"
    message_ids = Counter(m["Message-ID"] for _, m in switchable_smtp.sink.messages)
    assert len(message_ids) == total and set(message_ids.values()) == {1}  # every e-mail once, COI ones too
    delivered_after = time.monotonic() - restarted_at
    before = last_sweep_at()
    assert wait_for(lambda: last_sweep_at() > before, 15)  # the sweep keeps running, same worker
    sweep_back = first_sweep[0] if first_sweep else time.monotonic() - restarted_at
    per_rcpt = Counter(r[0] for r, _ in switchable_smtp.sink.messages if r[0].startswith("buyer"))
    print(f"\nRedis drill: {n} exemption sends and 20 COI submissions ({total} e-mails; "
          f"{restarted_at - stopped_at:.1f} s outage), "
          f"lost {n - len(per_rcpt)}, duplicated {sum(c - 1 for c in per_rcpt.values())}, "
          f"all delivered {delivered_after:.1f} s after Redis came back empty, the first sweep after "
          f"{sweep_back:.1f} s (interval {app.config['SWEEP_INTERVAL_SECONDS']} s), worker restarts 0")
    assert workers.procs[0].poll() is None  # the same worker, never restarted
    assert sorted(per_rcpt) == sorted(f"buyer{i}@example.com" for i in range(n))
    assert set(per_rcpt.values()) == {1}
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == n


def test_worker_sigkilled_mid_batch_loses_nothing(app, private_redis, switchable_smtp, workers):
    switchable_smtp.delay = 0.1  # most of the time a message is inside DATA when the kill comes
    switchable_smtp.up()
    n = 80
    _queue(n, "batch")
    first = workers.start()
    assert wait_for(lambda: (s := _statuses())[MessageStatus.SENT] >= 20 and s[MessageStatus.SENDING], 40, step=0.02)
    workers.kill(first)
    killed = _statuses()
    killed_at = time.monotonic()
    workers.start()
    workers.start()
    assert wait_for(lambda: _statuses()[MessageStatus.SENT] == n, 50), _statuses()
    per_rcpt = Counter(r[0] for r, _ in switchable_smtp.sink.messages)
    duplicates = sum(c - 1 for c in per_rcpt.values())
    print(f"\nSIGKILL drill: {n} e-mails, killed at {dict(killed)}, lost {n - len(per_rcpt)}, "
          f"duplicated {duplicates} (same Message-ID), all sent {time.monotonic() - killed_at:.1f} s after the kill")
    assert len(per_rcpt) == n
    assert duplicates <= killed[MessageStatus.SENDING]  # only a message in flight at the kill can repeat


def test_sweep_runs_again_after_the_scheduler_lock_holder_is_killed(app, private_redis, workers):
    interval = app.config["SWEEP_INTERVAL_SECONDS"]
    holder = workers.start()
    assert wait_for(lambda: last_sweep_at() is not None, 30)
    workers.start()  # a second worker: RQ's scheduler lock stays with the first
    time.sleep(2 * interval)
    assert "Acquired scheduler lock" in (workers.log_dir / "worker-0.log").read_text(errors="replace")
    assert wait_for(lambda: last_sweep_at() is not None and time.time() - last_sweep_at().timestamp() < 0.5, 10,
                    step=0.05)
    workers.kill(holder)
    killed_at = time.time()
    # RQ keeps the dead worker's scheduler lock for about a minute; the sweep must not wait for it.
    ok = wait_for(lambda: last_sweep_at().timestamp() > killed_at + 0.1, 4 * interval + 10, step=0.1)
    assert ok, workers.log_tail()
    gap = last_sweep_at().timestamp() - killed_at
    sweeps = []
    for _ in range(3):
        before = last_sweep_at()
        assert wait_for(lambda b=before: last_sweep_at() > b, 3 * interval + 5, step=0.1)
        sweeps.append(last_sweep_at())
    print(f"\nScheduler-lock drill: interval {interval} s; first sweep {gap:.1f} s after the lock holder was "
          f"SIGKILLed (RQ's lock lasts ~61 s), then every "
          f"{(sweeps[-1] - sweeps[0]).total_seconds() / 2:.1f} s with the surviving worker")
    assert gap <= 2 * interval + 3  # within two intervals (plus process start-up slack on a busy machine)
