"""`flask seed-demo` fills the certificate queue with a few demo requests, once."""

import json

import sqlalchemy as sa

from app.enums import PaymentStatus, RequestStatus, RequestType, Role
from app.extensions import db
from app.models import CertificateRequest, IssuedCertificate, Payment, SandboxCharge
from app.storage import get_store


def _counts():
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m))
                 for m in (CertificateRequest, IssuedCertificate, Payment, SandboxCharge))


def test_seed_demo_adds_queue_requests_once(app, runner, client, auth, make):
    first = runner.invoke(args=["seed-demo", "--json"])
    assert first.exit_code == 0, first.output
    assert set(json.loads(first.output)) == {"users", "customers"}
    requests = db.session.scalars(sa.select(CertificateRequest).order_by(CertificateRequest.id)).all()
    assert {r.type for r in requests} == {RequestType.COI, RequestType.COI_WOS, RequestType.POI}
    statuses = [r.status for r in requests]
    assert statuses.count(RequestStatus.NEW) >= 2 and RequestStatus.IN_PROGRESS in statuses
    assert statuses.count(RequestStatus.COMPLETED) == 1 and statuses.count(RequestStatus.REJECTED) == 1
    assert all(r.customer.status.value == "active" for r in requests)
    assert any(r.instructions for r in requests if r.status is RequestStatus.NEW)
    assert all(r.manual_reason for r in requests)  # decided: the sweeper does not re-run automation on them

    done = next(r for r in requests if r.status is RequestStatus.COMPLETED)
    [cert] = done.certificates
    assert get_store().read(cert.document_key).startswith(b"%PDF") and cert.data.get("coverages")
    rejected = next(r for r in requests if r.status is RequestStatus.REJECTED)
    assert rejected.rejection_reason and rejected.rejected_at
    paid = [p for r in requests for p in r.payments]
    assert [p.status for p in paid] == [PaymentStatus.APPROVED] and paid[0].amount_cents == 2575
    assert paid[0].request.type is RequestType.COI_WOS

    before = _counts()
    again = runner.invoke(args=["seed-demo", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["customers"] == json.loads(first.output)["customers"]
    assert _counts() == before

    auth.login(make.user(Role.PROCESSOR))
    queue = client.get("/dashboard/queue").get_data(as_text=True)
    open_requests = [r for r in requests if r.status in (RequestStatus.NEW, RequestStatus.IN_PROGRESS)]
    assert queue.count("data-request-id=") == len(open_requests)
    for r in open_requests:
        assert r.holder_name in queue
