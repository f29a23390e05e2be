"""Customer page: certificates to re-issue after a renewal (preview per holder); re-issued as new revisions in
one job (real RQ worker), each holder e-mailed its new revision once."""

from datetime import timedelta

import sqlalchemy as sa

from app.enums import CoverageLine, RequestType, Role
from app.extensions import db
from app.insurance.documents import issue_certificate
from app.insurance.pdf import HolderInfo
from app.models import IssuedCertificate, OutboxMessage
from app.models.base import utcnow

HOLDER = HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                    zip_code="78701", email="certs@northwind.example.com")


def test_staff_see_the_changes_and_reissue_selected_as_new_revisions(app, make, client, auth, run_jobs):
    customer = make.customer()
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None,
                             now=utcnow() - timedelta(days=1))
    db.session.commit()
    staff = make.user(Role.REVIEWER)
    auth.login(staff)
    page = client.get(f"/customers/{customer.id}/certificates").text
    assert "Certificates to re-issue" not in page  # nothing changed yet
    gl = next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.limits = {**gl.limits, "each_occurrence": 2_000_000}
    db.session.commit()
    page = client.get(f"/customers/{customer.id}/certificates").text
    assert "Certificates to re-issue" in page and "each occurrence 1000000 → 2000000" in page
    nothing = client.post(f"/customers/{customer.id}/certificates/reissue", data={"certificate_ids": ["999999"]})
    assert nothing.status_code == 303 and db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1
    done = client.post(f"/customers/{customer.id}/certificates/reissue", data={"certificate_ids": [str(cert.id)]})
    assert done.status_code == 303
    run_jobs()
    db.session.expire_all()
    newest = db.session.scalars(sa.select(IssuedCertificate).order_by(IssuedCertificate.id.desc())).first()
    assert (newest.certificate_number, newest.revision) == (cert.certificate_number, 2)
    assert newest.data["coverages"][0]["limits"][0]["amount"] == 2_000_000
    mails = db.session.scalars(sa.select(OutboxMessage).filter_by(to_address=HOLDER.email)).all()
    assert len(mails) == 1
    run_jobs()  # nothing left to do: no third revision, no second e-mail
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 2


def test_customer_users_and_processors_cannot_reissue(app, make, client, auth):
    customer = make.customer()
    auth.login(make.user(Role.PROCESSOR))
    assert client.post(f"/customers/{customer.id}/certificates/reissue", data={"all": "1"}).status_code == 403
