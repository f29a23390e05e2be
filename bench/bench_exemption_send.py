"""Benchmark: sending 1,000 exemption requests end to end.

    .venv/bin/python bench/bench_exemption_send.py [--count 1000] [--database-url ...] [--no-smtp]

Two ways of sending, each measured end to end:
  * one by one  - 1,000 separate "Send request" actions (service call + commit each; the link e-mail
                  and the expiry schedule are enqueued after each commit), as the page or API does;
  * send to many - one "Send to many" run: a job creating the 1,000 requests with progress.
Then a real RQ worker (SimpleWorker, burst) delivers every link e-mail from the outbox to a real
local SMTP server (aiosmtpd), unless --no-smtp (then messages are only marked held in the outbox).
Uses a throw-away SQLite file (or --database-url) and Redis queues under a private prefix, emptied
at the end. Prints seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Sink:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-smtp", action="store_true")
    args = parser.parse_args()

    from app import create_app
    from config import TestConfig

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    config = type("BenchConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        "UPLOAD_DIR": str(tmp / "uploads"),
        "QUEUE_PREFIX": f"certdesk-bench-{uuid.uuid4().hex[:8]}:",
    })
    app = create_app(config)
    sink = Sink()
    controller = None
    if not args.no_smtp:
        from aiosmtpd.controller import Controller

        from tests.conftest import free_port

        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)

    with app.app_context():
        import sqlalchemy as sa
        from rq import SimpleWorker

        from app.enums import MessageStatus, Role
        from app.exemptions import services
        from app.extensions import db, jobs
        from app.models import Customer, ExemptionRequest, OutboxMessage, User
        from app.models.base import utcnow
        from tests import factories

        db.create_all()
        try:
            actor = factories.user(Role.REVIEWER)
            actor_id = actor.id
            db.session.add_all([Customer(name=f"Bench Customer {i:05d}", contact_email=f"buyer{i}@bench.example.com")
                                for i in range(args.count)])
            db.session.commit()
            ids = list(db.session.scalars(sa.select(Customer.id).order_by(Customer.id)))

            def deliver() -> float:
                start = time.perf_counter()
                worker = SimpleWorker(jobs.all_queues(), connection=jobs.redis, serializer=jobs.serializer)
                worker.work(burst=True, logging_level="WARNING")
                return time.perf_counter() - start

            def delivered() -> int:
                db.session.expire_all()
                return db.session.scalar(sa.select(sa.func.count(OutboxMessage.id)).where(
                    OutboxMessage.status.in_([MessageStatus.SENT, MessageStatus.HELD])))

            # 1. one by one
            start = time.perf_counter()
            for customer_id in ids:
                customer = db.session.get(Customer, customer_id)
                services.send_request(customer, customer.contact_email, actor=actor, now=utcnow())
                db.session.commit()
            create_1 = time.perf_counter() - start
            deliver_1 = deliver()
            assert delivered() == args.count, delivered()

            # 2. send to many (one job)
            start = time.perf_counter()
            actor = db.session.get(User, actor_id)
            services.start_send_run(ids, actor=actor, now=utcnow())
            db.session.commit()
            enqueue_2 = time.perf_counter() - start
            # The run's own job goes first (default queue), then the e-mails it queued.
            start = time.perf_counter()
            worker = SimpleWorker([jobs.queue("default")], connection=jobs.redis, serializer=jobs.serializer)
            worker.work(burst=True, logging_level="WARNING")
            create_2 = time.perf_counter() - start + enqueue_2
            deliver_2 = deliver()
            assert delivered() == 2 * args.count, delivered()
            requests = db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id)))
            assert requests == 2 * args.count
            scheduled = len(jobs.queue("default").scheduled_job_registry.get_job_ids())

            dialect = db.engine.dialect.name
            transport = "SMTP (aiosmtpd)" if controller else "outbox only"
            print(f"{args.count} exemption requests, {dialect}, delivery via {transport}")
            print(f"  one by one:   create+enqueue {create_1:6.2f} s, worker delivery {deliver_1:6.2f} s, "
                  f"total {create_1 + deliver_1:6.2f} s ({1000 * (create_1 + deliver_1) / args.count:.1f} ms/request)")
            print(f"  send to many: create+enqueue {create_2:6.2f} s, worker delivery {deliver_2:6.2f} s, "
                  f"total {create_2 + deliver_2:6.2f} s ({1000 * (create_2 + deliver_2) / args.count:.1f} ms/request)")
            print(f"  SMTP messages received: {sink.count}; expiry jobs scheduled: {scheduled}")
        finally:
            for queue in jobs.all_queues():
                queue.empty()
                for registry in (queue.scheduled_job_registry, queue.failed_job_registry,
                                 queue.finished_job_registry):
                    for job_id in registry.get_job_ids():
                        registry.remove(job_id, delete_job=True)
            db.session.remove()
            if controller:
                controller.stop()


if __name__ == "__main__":
    main()
