"""Benchmark the certificate queue: one certificate PDF, and one request completed end to end.

    .venv/bin/python bench/bench_queue.py [--runs 25] [--database-url sqlite:///...]

"Submit" = what the processor's web request does: validate the reviewed values, store them on the
request, mark it as being issued, commit, hand the PDF job to Redis.
"End to end" = from that submit until a real RQ worker (burst, queue ``pdf``) has run the job: the PDF
rendered and stored, the certificate issued, the request completed, and the two e-mails (holder,
customer) with the PDF attached in the outbox, committed. (SMTP delivery afterwards is the mail job's
business.)
Uses a throw-away SQLite database (or, with --database-url postgresql+psycopg://.../test, a throw-away
database created next to the one named and dropped at the end) and Redis queues under a private prefix,
which are emptied at the end. Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@contextlib.contextmanager
def scratch_database(url: str, tmp: Path):
    """A database of our own for the run: SQLite in ``tmp``, or a new PostgreSQL database next to ``url``."""
    if not url.startswith("postgresql"):
        yield url or f"sqlite:///{tmp / 'bench.db'}"
        return
    import sqlalchemy as sa

    base = sa.make_url(url)
    name = f"certdesk_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    with scratch_database(args.database_url, tmp) as database_url:
        run(args, tmp, database_url)


def run(args, tmp: Path, database_url: str) -> None:
    from app import create_app
    from config import TestConfig

    config = type("BenchConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_DIR": str(tmp / "uploads"),
        "QUEUE_PREFIX": f"certdesk-bench-{uuid.uuid4().hex[:8]}:",
    })
    app = create_app(config)
    with app.app_context():
        from rq import SimpleWorker

        from app.enums import RequestStatus, RequestType, Role
        from app.extensions import db, jobs
        from app.insurance import processing
        from app.insurance.certificate_data import build_certificate_data
        from app.insurance.layout import HolderInfo
        from app.insurance.rendering import render_certificate_pdf
        from app.models import CertificateRequest, Customer, OutboxMessage, User
        from app.models.base import utcnow
        from tests import factories

        db.create_all()
        try:
            staff = factories.user(Role.PROCESSOR)
            customer = factories.customer(name="Benchmark Builders LLC")
            db.session.commit()

            pdf_times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                data = build_certificate_data(customer, kind=RequestType.COI, on=utcnow().date(),
                                              holder=HolderInfo(name="Holder Co", address="1 Elm St", city="Austin",
                                                                state="TX", zip_code="78701"))
                render_certificate_pdf(data)
                pdf_times.append(time.perf_counter() - start)

            staff_id, customer_id = staff.id, customer.id
            submit_times, e2e_times = [], []
            for i in range(args.runs):
                # the job's session is removed after each run: load the rows again
                staff, customer = db.session.get(User, staff_id), db.session.get(Customer, customer_id)
                req = factories.queue_request(customer=customer, holder_name=f"Holder {i} Inc")
                db.session.commit()
                request_id, emails = req.id, [req.holder_email, customer.contact_email]
                start = time.perf_counter()
                processing.submit_generated(req, actor=staff, now=utcnow(), send_to_holder=True,
                                            overrides={"coverages": {"general_liability": {
                                                "limits": {"each_occurrence": 2_000_000}}}},
                                            expected_version=req.version)
                db.session.commit()
                submit_times.append(time.perf_counter() - start)
                SimpleWorker([jobs.queue("pdf")], connection=jobs.redis, serializer=jobs.serializer).work(
                    burst=True, logging_level="WARNING")
                e2e_times.append(time.perf_counter() - start)
                assert db.session.get(CertificateRequest, request_id).status is RequestStatus.COMPLETED
                assert db.session.scalar(
                    db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.to_address.in_(emails))) >= 2
        finally:
            for queue in jobs.all_queues():
                queue.empty()
            db.session.remove()
            db.drop_all()
            db.engine.dispose()

    pdf_ms = statistics.median(pdf_times) * 1000
    e2e_ms = statistics.median(e2e_times) * 1000
    submit_ms = statistics.median(submit_times) * 1000
    print(f"runs: {args.runs}, database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
    print(f"median time to generate one certificate PDF: {pdf_ms:.0f} ms "
          f"(min {min(pdf_times) * 1000:.0f}, max {max(pdf_times) * 1000:.0f})")
    print(f"median time of a staff submit (validate, store, commit, enqueue): {submit_ms:.0f} ms "
          f"(min {min(submit_times) * 1000:.0f}, max {max(submit_times) * 1000:.0f})")
    print(f"median time to complete one request end to end (submit -> PDF job -> e-mails in outbox): {e2e_ms:.0f} ms "
          f"(min {min(e2e_times) * 1000:.0f}, max {max(e2e_times) * 1000:.0f})")


if __name__ == "__main__":
    main()
