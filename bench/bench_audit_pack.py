"""Benchmark: an exemption audit pack over N certificates (default 10,000).

    .venv/bin/python bench/bench_audit_pack.py [--count 10000] [--database-url ...]

Creates N approved certificates (two states each, a small PDF document each) in a throw-away SQLite file
(or --database-url, e.g. a scratch PostgreSQL database), then builds one audit pack over all of them
for one state pair and a one-year range through the service the job calls. Prints seconds (data set,
pack), the ZIP's size and peak memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database-url")
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
        from app.enums import AuditPackStatus, ExemptionFormType, ExemptionReason, PurchaseType
        from app.enums import ExemptionCertificateStatus as CS
        from app.exemptions import audit
        from app.extensions import db
        from app.models import AuditPack, CertificateJurisdiction, Customer, ExemptionCertificate
        from app.storage import get_store
        from tests.factories import tiny_pdf

        db.create_all()
        t0 = time.perf_counter()
        store = get_store()
        customers = [Customer(name=f"Bench Customer {i}") for i in range(max(1, args.count // 10))]
        db.session.add_all(customers)
        db.session.flush()
        activated = datetime(2026, 1, 15, tzinfo=UTC)
        for i in range(args.count):
            key = store.save(tiny_pdf(f"Certificate {i}"))
            db.session.add(ExemptionCertificate(
                customer_id=customers[i % len(customers)].id, status=CS.ACTIVE, reason=ExemptionReason.RESALE,
                purchase_type=PurchaseType.BLANKET, form_type=ExemptionFormType.UNIFORM_MULTISTATE,
                tax_id_number=f"TX-{i:08d}", effective_date=date(2026, 1, 1), purchaser_name=f"Buyer {i}",
                purchaser_address="1 Main St", signer_name="Pat", signed_on=date(2026, 1, 1), document_key=key,
                document_filename=f"cert-{i}.pdf", document_content_type="application/pdf", document_pages=1,
                submitted_at=activated, activated_at=activated, created_at=activated, checks=[],
                jurisdictions=[CertificateJurisdiction(state="TX", state_id_number=f"32{i:09d}"),
                               CertificateJurisdiction(state="OK", state_id_number="")]))
            if i % 1000 == 999:
                db.session.commit()
        db.session.commit()
        setup = time.perf_counter() - t0

        pack = AuditPack(date_from=date(2026, 1, 1), date_to=date(2026, 12, 31), jurisdictions=["OK", "TX"],
                         status=AuditPackStatus.RUNNING, created_at=activated)
        db.session.add(pack)
        db.session.commit()
        t1 = time.perf_counter()
        audit.build_pack(pack, now=datetime.now(UTC), progress=lambda p: db.session.commit())
        db.session.commit()
        elapsed = time.perf_counter() - t1
        path = store.path(pack.file_key)
        with zipfile.ZipFile(path) as zf:
            members = len(zf.namelist())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"certificates: {args.count}  data set: {setup:.1f} s  audit pack: {elapsed:.1f} s  "
              f"({1000 * elapsed / args.count:.2f} ms per certificate)  zip: {path.stat().st_size / 1e6:.1f} MB, "
              f"{members} members  peak RSS: {peak:.0f} MB")
        db.drop_all()


if __name__ == "__main__":
    main()
