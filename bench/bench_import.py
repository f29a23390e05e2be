"""Benchmark: import a 50,000-row holders CSV (pass 1) and a links CSV (pass 2) as RQ jobs.

Runs the real path: upload (read + header check + store), the check job (preview with per-row
errors), confirmation, the write job; then the same file again (idempotent: nothing new). Jobs run
in a real RQ SimpleWorker against Redis, on a throw-away database.

    .venv/bin/python bench/bench_import.py                       # SQLite file in a temp dir
    .venv/bin/python bench/bench_import.py --rows 50000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres   # a scratch PG database

Prints one line per phase: wall seconds and the process's peak RSS.

``--generation 1000`` also times the mass-generation job (the whole workflow around
``batching.render_batch``: run row, job, file storage, sent-certificates rows) for that many linked holders.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from config import Config  # noqa: E402

STATES = ["TX", "CA", "NY", "FL", "IL", "WA", "CO", "GA", "OH", "AZ"]
WORDS = ["North", "Lake", "Summit", "River", "Cedar", "Bay", "Mesa", "Pioneer", "Harbor", "Green", "Oak", "Tri"]
KINDS = ["Builders", "Property Management", "Partners", "Holdings", "Development", "Contractors", "Owners"]


def make_csv(rows: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    lines = ["name,email,phone,address,city,state,zip"]
    for i in range(rows):
        name = f"{rnd.choice(WORDS)}{rnd.choice(WORDS).lower()} {rnd.choice(KINDS)} {i}"
        email = f"certs{i}@holder{i % 997}.example.com" if i % 3 else ""
        phone = f"(512) 555-{i % 10000:04d}" if i % 2 else ""
        lines.append(f"{name},{email},{phone},{100 + i % 9000} Main St,Austin,{rnd.choice(STATES)},"
                     f"{10000 + i % 89999:05d}")
    return ("\n".join(lines) + "\n").encode()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temp directory")
    parser.add_argument("--generation", type=int, default=0, help="also time a generation job for N holders")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-import-"))
    db_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    created_db = None
    if db_url.startswith("postgresql"):
        admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        created_db = f"certdesk_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{created_db}"'))
        db_url = sa.make_url(db_url).set(database=created_db).render_as_string(hide_password=False)

    config = type("BenchConfig", (Config,), {
        "SQLALCHEMY_DATABASE_URI": db_url, "UPLOAD_DIR": str(tmp / "uploads"), "JOB_MODE": "rq",
        "QUEUE_PREFIX": f"certdesk-bench-{uuid.uuid4().hex[:8]}:", "MAX_UPLOAD_BYTES": 50 * 1024 * 1024,
    })
    from rq import SimpleWorker

    from app import create_app
    from app.customers import imports
    from app.enums import ImportKind, ImportStatus
    from app.extensions import db, jobs
    from app.models import Holder, ImportRun
    from app.models.base import utcnow
    from app.queue import defer

    app = create_app(config)
    data = make_csv(args.rows)
    print(f"database: {sa.make_url(db_url).get_backend_name()}, "
          f"rows: {args.rows:,}, file: {len(data) / 1e6:.1f} MB")

    def work() -> float:
        start = time.perf_counter()
        worker = SimpleWorker(jobs.all_queues(), connection=jobs.redis, serializer=jobs.serializer)
        with app.app_context():
            worker.work(burst=True)
        return time.perf_counter() - start

    results = []
    try:
        with app.app_context():
            db.create_all()
            for label in ("first import", "same file again"):
                t0 = time.perf_counter()
                run = imports.start_import(ImportKind.HOLDERS, data, "bench.csv", actor=None, now=utcnow())
                defer(db.session, "app.customers.holder_jobs.check_holder_import", run.id)
                db.session.commit()
                upload = time.perf_counter() - t0
                check = work()
                run = db.session.get(ImportRun, run.id)
                assert run.status is ImportStatus.PREVIEW, run.message
                preview = (run.preview["new"], run.preview["existing"], run.error_rows)
                t1 = time.perf_counter()
                imports.confirm_import(run, actor=None, now=utcnow())
                defer(db.session, "app.customers.holder_jobs.apply_holder_import", run.id)
                db.session.commit()
                write = work() + (time.perf_counter() - t1)
                db.session.expire_all()
                run = db.session.get(ImportRun, run.id)
                assert run.status is ImportStatus.DONE and run.percent == 100
                holders = db.session.scalar(sa.select(sa.func.count(Holder.id)))
                total = upload + check + write
                results.append((label, upload, check, write, total, run.created_count, holders, preview))
                print(f"{label:>16}: upload {upload:5.2f}s  check job {check:5.2f}s  write job {write:5.2f}s  "
                      f"total {total:5.2f}s  created {run.created_count:,}  holders {holders:,}  "
                      f"preview new/existing/errors {preview}  peak RSS {peak_mb():.0f} MB")
            if args.generation:
                bench_generation(app, work, args.generation)
            db.session.remove()
            db.engine.dispose()
    finally:
        if created_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)'))
    for queue in jobs.all_queues():
        queue.delete(delete_jobs=True)


def bench_generation(app, work, count: int) -> None:
    from datetime import date

    from app.cli import _policies_for
    from app.customers import generation
    from app.enums import GenerationStatus
    from app.extensions import db
    from app.models import Customer, CustomerHolder, GenerationRun, Holder, SentCertificate
    from app.models.base import utcnow

    customer = Customer(name="Benchmark Roofing LLC", contact_email="office@bench.example.com", address="1 Main St",
                        city="Austin", state="TX", zip_code="78701")
    db.session.add(customer)
    db.session.flush()
    customer.policies.extend(_policies_for(customer, date.today()))
    ids = list(db.session.scalars(sa.select(Holder.id).order_by(Holder.id).limit(count)))
    db.session.execute(sa.insert(CustomerHolder), [{"customer_id": customer.id, "holder_id": i, "created_at": utcnow()}
                                                   for i in ids])
    db.session.commit()
    for mode, record_sent in (("merged", False), ("zip", False), ("merged", True), ("zip", True)):
        t0 = time.perf_counter()
        run = generation.start_generation(customer, holder_ids=None, mode=mode, record_sent=record_sent, actor=None,
                                          now=utcnow())
        db.session.commit()
        start = time.perf_counter() - t0
        job = work()
        db.session.expire_all()
        run = db.session.get(GenerationRun, run.id)
        assert run.status is GenerationStatus.DONE and run.percent == 100, run.error
        sent = db.session.scalar(sa.select(sa.func.count(SentCertificate.id)).where(
            SentCertificate.generation_run_id == run.id))
        size = (Path(app.config["UPLOAD_DIR"]) / run.file_key).stat().st_size
        print(f"generation {len(ids):,} holders, {mode:>6}, record sent {record_sent!s:>5}: start {start:4.2f}s  "
              f"job {job:5.2f}s  file {size / 1e6:.1f} MB  sent rows {sent:,}  peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
