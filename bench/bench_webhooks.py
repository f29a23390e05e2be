"""Benchmark: webhook delivery throughput and the metrics query at scale.

    .venv/bin/python bench/bench_webhooks.py [--events 1000] [--workers 2] [--requests 100000] [--database-url ...]

1. Delivery: N events for one endpoint pointing at a local HTTP receiver (answers 200), delivered by
   `--workers` real `flask worker --burst` processes on Redis; prints events per second end to end
   (from the first job taken to the last delivery recorded).
2. Metrics: `--requests` exemption requests and as many COI requests inserted in bulk, then the
   metrics of one year computed as GET /api/v1/metrics does; prints the query time (best of 3).
Uses a throw-away SQLite file (or --database-url) and Redis queues under a private prefix.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Handler(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        Handler.count += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    database = args.database_url or f"sqlite:///{tmp / 'b.db'}"
    env = {**os.environ, "CERTDESK_ENV": "development", "DATABASE_URL": database,
           "UPLOAD_DIR": str(tmp / "uploads"), "QUEUE_PREFIX": f"certdesk-bench-{uuid.uuid4().hex[:8]}:",
           "WEBHOOKS_ALLOW_HTTP": "true", "MAIL_SERVER": ""}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env["WEBHOOKS_ALLOWED_HOSTS"] = f"127.0.0.1:{server.server_address[1]}"
    os.environ.update(env)

    from app import create_app

    app = create_app()
    with app.app_context():
        import sqlalchemy as sa

        from app import events, webhooks
        from app.enums import ExemptionRequestStatus as RS
        from app.enums import RequestSource, RequestStatus, RequestType, WebhookDeliveryStatus
        from app.extensions import db, jobs
        from app.metrics import metrics
        from app.models import CertificateRequest, Customer, ExemptionRequest, WebhookDelivery

        db.create_all()
        customer = Customer(name="Bench Co")
        db.session.add(customer)
        now = datetime.now(UTC)
        req = ExemptionRequest(customer_id=customer.id, customer=customer, email="b@x.example", token_hash="bench",
                               link_nonce="0" * 32, status=RS.SENT, sent_at=now, expires_at=now + timedelta(days=30),
                               reminders_sent=[], created_at=now)
        db.session.add(req)
        db.session.flush()
        webhooks.create_endpoint(f"http://127.0.0.1:{server.server_address[1]}/hook", [], actor=None, now=now)
        db.session.commit()
        for i in range(args.events):
            events.emit("exemption_request.sent", "exemption_request", req, now=now)
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()  # delivery jobs reach Redis after each commit
        t0 = time.perf_counter()
        procs = [subprocess.Popen([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "worker", "--burst", "--queues",
                                   "email"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(args.workers)]
        for p in procs:
            p.wait()
        elapsed = time.perf_counter() - t0
        db.session.expire_all()
        done = db.session.scalar(sa.select(sa.func.count(WebhookDelivery.id)).where(
            WebhookDelivery.status == WebhookDeliveryStatus.SUCCEEDED))
        print(f"webhooks: {done} of {args.events} events delivered by {args.workers} workers in {elapsed:.1f} s "
              f"= {done / elapsed:.0f} events/s (receiver saw {Handler.count}; includes worker start-up)")

        # metrics at scale: bulk rows, then the same computation as the API
        start = datetime(2026, 1, 1, tzinfo=UTC)
        rows, coi = [], []
        for i in range(args.requests):
            sent = start + timedelta(minutes=5 * i % 500_000)
            opened = sent + timedelta(hours=2) if i % 3 else None
            rows.append({"customer_id": customer.id, "email": "m@x.example", "token_hash": f"m{i}",
                         "link_nonce": "0" * 32, "status": "completed" if opened and i % 2 else "sent",
                         "source": "staff", "link_version": 1, "sent_at": sent, "expires_at": sent + timedelta(days=30),
                         "opened_at": opened, "completed_at": opened + timedelta(hours=i % 48) if opened and i % 2
                         else None, "reminders_sent": [], "version": 1, "created_at": sent})
            coi.append({"customer_id": customer.id, "type": RequestType.COI.value, "source": RequestSource.API.value,
                        "status": RequestStatus.COMPLETED.value if i % 4 else RequestStatus.NEW.value,
                        "holder_name": "H", "decision": "manual" if i % 5 == 0 else "auto", "manual_reason": "",
                        "rejection_reason": "", "fee_cents": 0, "version": 1, "created_at": sent, "updated_at": sent,
                        "completed_at": sent + timedelta(hours=i % 10) if i % 4 else None})
            if len(rows) == 5000:
                db.session.execute(sa.insert(ExemptionRequest), rows)
                db.session.execute(sa.insert(CertificateRequest), coi)
                rows, coi = [], []
        if rows:
            db.session.execute(sa.insert(ExemptionRequest), rows)
            db.session.execute(sa.insert(CertificateRequest), coi)
        db.session.commit()
        best = None
        for _ in range(3):
            t = time.perf_counter()
            metrics(date(2026, 1, 1), date(2026, 12, 31))
            best = min(best or 1e9, time.perf_counter() - t)
        print(f"metrics: one year over {args.requests:,} exemption + {args.requests:,} COI requests in "
              f"{best * 1000:.0f} ms (best of 3)")
        for q in jobs.all_queues():
            q.empty()
        db.drop_all()
    server.shutdown()


if __name__ == "__main__":
    main()
