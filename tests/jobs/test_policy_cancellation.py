"""A policy cancelled: the verify page of every certificate that lists it says so at once, and only holders
that the policy's notice-of-cancellation endorsement covers get an e-mail (real RQ worker, real SMTP server)."""

import pytest
import sqlalchemy as sa

from app.customers.policies import cancel_policy
from app.enums import CoverageLine, EndorsementKind, RequestType, Role
from app.extensions import db
from app.insurance.documents import issue_certificate
from app.insurance.layout import HolderInfo
from app.models import Activity, Endorsement, OutboxMessage
from app.models.base import utcnow

HOLDERS = [HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                      zip_code="78701", email="certs@northwind.example.com"),
           HolderInfo(name="Lakeside Property Management", address="12 Lake Dr", city="Austin", state="TX",
                      zip_code="78702", email="coi@lakeside.example.com"),
           HolderInfo(name="Summit Tower LLC", address="1 Summit Way", city="Austin", state="TX", zip_code="78703",
                      email="docs@summit.example.com")]


@pytest.mark.parametrize(("named", "notified"), [
    (" lakeside property  MANAGEMENT", ["coi@lakeside.example.com"]),   # one holder named (case, spacing ignored)
    (None, [h.email for h in HOLDERS]),                                  # a blanket notice endorsement
    ("nobody", []),                                                      # no endorsement for these holders
])
def test_cancelled_policy_shows_on_verify_pages_at_once_and_mails_only_endorsed_holders(
        app, make, client, run_jobs, smtp, named, notified):
    customer = make.customer(name="Acme Roofing LLC")
    gl = next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)
    if named != "nobody":
        gl.endorsements.append(Endorsement(kind=EndorsementKind.NOTICE_OF_CANCELLATION, form_number="IL 70 20",
                                           holder_name=named))
    certs = [issue_certificate(customer, kind=RequestType.COI, holder=h, actor=None, now=utcnow()) for h in HOLDERS]
    db.session.commit()
    for cert in certs:
        assert "Current." in client.get(f"/verify/{cert.verification_code}").text
    today = utcnow().date()
    cancel_policy(gl, today.isoformat(), actor=make.user(Role.ADMIN), now=utcnow())
    db.session.commit()
    for cert in certs:  # before any job ran
        page = client.get(f"/verify/{cert.verification_code}").text
        assert f"A policy on it was cancelled on {today:%m/%d/%Y}." in page and "Current." not in page
    run_jobs()
    run_jobs()
    for holder in HOLDERS:
        received = smtp.to(holder.email)
        if holder.email not in notified:
            assert received == []
            continue
        assert len(received) == 1
        mail = received[0]
        assert mail["Subject"] == f"Notice of cancellation: policy {gl.policy_number} of Acme Roofing LLC"
        body = " ".join(mail.get_body(("plain",)).get_content().split())
        cert = next(c for c in certs if c.holder_email == holder.email)
        assert f"The policy {gl.policy_number} of Acme Roofing LLC was cancelled." in body
        assert f"({holder.name}) as a certificate holder" in body
        assert f"Certificates that list this policy: {cert.certificate_number}" in body
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == len(notified)
    timeline = db.session.scalar(sa.select(Activity.message).filter_by(subject_type="policy", subject_id=gl.id,
                                                                       action="cancellation_notices"))
    assert (timeline is not None) == bool(notified)
