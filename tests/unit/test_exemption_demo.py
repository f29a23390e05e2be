"""The demo data: requests in several states and an active certificate with a real PDF."""

import sqlalchemy as sa

from app.cli import seed_demo
from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionRequestStatus as RS
from app.extensions import db
from app.models import ExemptionCertificate, ExemptionRequest


def test_seed_demo_adds_exemption_rows_once(app):
    seed_demo()
    seed_demo()
    statuses = set(db.session.scalars(sa.select(ExemptionRequest.status)))
    assert {RS.SENT, RS.OPENED, RS.COMPLETED, RS.EXPIRED} <= statuses
    certs = db.session.scalars(sa.select(ExemptionCertificate)).all()
    assert sorted(c.status for c in certs) == sorted([CS.ACTIVE, CS.PENDING_REVIEW])
    from app.storage import get_store

    assert all(get_store().read(c.document_key).startswith(b"%PDF") for c in certs)
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 5
