"""Benchmark the certificate queue: one certificate PDF, and one request completed end to end.

    .venv/bin/python bench/bench_queue.py [--runs 25] [--database-url sqlite:///...]

"End to end" = a processor submits the reviewed values -> the PDF is rendered and stored, the
certificate issued, the request completed, and the two e-mails (holder, customer) with the PDF
attached are in the outbox, committed. (SMTP delivery afterwards is the mail job's business.)
Uses a throw-away SQLite database (or --database-url) and Redis queues under a private prefix,
which are emptied at the end. Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--database-url", default="")
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
    with app.app_context():
        from app.enums import RequestType, Role
        from app.extensions import db, jobs
        from app.insurance import processing
        from app.insurance.pdf import HolderInfo, build_certificate_data, render_certificate_pdf
        from app.models import OutboxMessage
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

            e2e_times = []
            for i in range(args.runs):
                req = factories.queue_request(customer=customer, holder_name=f"Holder {i} Inc")
                db.session.commit()
                start = time.perf_counter()
                processing.submit_generated(req, actor=staff, now=utcnow(), send_to_holder=True,
                                            overrides={"coverages": {"general_liability": {
                                                "limits": {"each_occurrence": 2_000_000}}}},
                                            expected_version=req.version)
                db.session.commit()
                e2e_times.append(time.perf_counter() - start)
                assert db.session.scalar(
                    db.select(db.func.count(OutboxMessage.id)).where(OutboxMessage.to_address.in_(
                        [req.holder_email, customer.contact_email]))) >= 2
        finally:
            for queue in jobs.all_queues():
                queue.empty()
            db.session.remove()
            db.drop_all()

    pdf_ms = statistics.median(pdf_times) * 1000
    e2e_ms = statistics.median(e2e_times) * 1000
    print(f"runs: {args.runs}, database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
    print(f"median time to generate one certificate PDF: {pdf_ms:.0f} ms "
          f"(min {min(pdf_times) * 1000:.0f}, max {max(pdf_times) * 1000:.0f})")
    print(f"median time to complete one request end to end (submit -> PDF -> e-mails in outbox): {e2e_ms:.0f} ms "
          f"(min {min(e2e_times) * 1000:.0f}, max {max(e2e_times) * 1000:.0f})")


if __name__ == "__main__":
    main()
