"""The issue guard on the real paths: the automatic job (real RQ worker + Redis) never issues past a block,
and staff get past an endorsement / wording block only with a recorded note."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.enums import CoverageLine, RequestStatus, Role
from app.extensions import db
from app.insurance import processing
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage
from app.models.base import utcnow
from app.queue import defer


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def policy(customer, line):
    return next(p for p in customer.policies if p.line is line)


def test_auto_issue_with_gl_expired_yesterday_goes_to_the_manual_queue_no_pdf_no_mail(app, make, run_jobs):
    customer = make.customer(name="Orchard Masonry LLC")
    today = utcnow().date()
    gl = policy(customer, CoverageLine.GENERAL_LIABILITY)
    gl.effective_date, gl.expiry_date = today - timedelta(days=366), today - timedelta(days=1)
    req = make.queue_request(customer=customer, type="coi", holder_name="Riverside Development Corp",
                             holder_email="certs@riverside.example.com")
    defer(db.session, processing.AUTO_JOB, req.id)
    db.session.commit()
    run_jobs()

    req = db.session.get(CertificateRequest, req.id)
    assert req.status is RequestStatus.NEW and req.needs_manual
    assert f"GL-{customer.id} expired on {gl.expiry_date:%m/%d/%Y}" in req.manual_reason
    assert count(IssuedCertificate) == 0 and count(OutboxMessage) == 0
    messages = db.session.scalars(sa.select(Activity.message).filter_by(subject_id=req.id,
                                                                        action="sent_to_manual_queue")).all()
    assert any("expired on" in m for m in messages)


def test_wos_without_a_waiver_endorsement_goes_to_staff_with_the_reason(app, make, run_jobs):
    customer = make.customer()
    policy(customer, CoverageLine.WORKERS_COMP).endorsements.clear()
    req = make.queue_request(customer=customer, type="coi_wos")
    defer(db.session, processing.AUTO_JOB, req.id)
    db.session.commit()
    run_jobs()
    req = db.session.get(CertificateRequest, req.id)
    assert req.needs_manual and "needs a waiver of subrogation endorsement" in req.manual_reason.lower()
    assert count(IssuedCertificate) == 0


def test_staff_submit_refuses_an_unbacked_mark_without_a_note_and_records_the_override(app, make, run_jobs):
    customer = make.customer()
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request(customer=customer, type="coi")
    db.session.commit()
    overrides = {"coverages": {"general_liability": {"addl_insd": "1"}}}
    with pytest.raises(processing.ActionRefused, match="additional insured endorsement.*override note"):
        processing.submit_generated(req, actor=staff, now=utcnow(), overrides=overrides)
    db.session.rollback()
    assert db.session.get(CertificateRequest, req.id).pending_issue is None  # nothing stored

    req = db.session.get(CertificateRequest, req.id)
    processing.submit_generated(req, actor=staff, now=utcnow(), overrides=overrides,
                                override_note="Carrier e-mail of 11/30 confirms AI for this holder.")
    db.session.commit()
    run_jobs()
    cert = db.session.scalar(sa.select(IssuedCertificate).filter_by(request_id=req.id))
    assert cert is not None and cert.guard["override_note"].startswith("Carrier e-mail")
    assert cert.data["coverages"][0]["addl_insd"] is True
    notes = db.session.scalars(sa.select(Activity.message).filter_by(action="guard_overridden")).all()
    assert any("Carrier e-mail of 11/30" in n for n in notes)


def test_a_policy_not_in_force_cannot_be_overridden_by_staff(app, make):
    customer = make.customer()
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request(customer=customer, type="coi")
    db.session.commit()
    # Staff type a GL expiry date in the past onto the row: the guard reads the policy on file, and the
    # edited dates do not make it print a policy the guard refuses...
    gl = policy(customer, CoverageLine.GENERAL_LIABILITY)
    gl.expiry_date = utcnow().date() - timedelta(days=2)
    gl.effective_date = gl.expiry_date - timedelta(days=365)
    db.session.commit()
    data = processing._build_data(req, now=utcnow())
    assert "general_liability" not in {r["line"] for r in data["coverages"] if r["present"]}
    # ...and a hand-made row pointing at that policy is refused even with a note.
    from app.insurance.issuing import CertificateBlocked, issue
    from app.insurance.layout import HolderInfo

    data["coverages"][0].update(present=True, policy_id=gl.id, policy_number=gl.policy_number)
    with pytest.raises(CertificateBlocked, match="expired on"):
        issue(customer, kind=req.type, holder=HolderInfo.from_request(req), actor=staff, now=utcnow(), data=data,
              override_note="Please issue anyway.")
