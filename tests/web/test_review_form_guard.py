"""The staff review form: per row the policy (so insurer and letter), ADDL INSD / SUBR WVD boxes that say
whether an endorsement backs them, the OTHER row from another line's policy; the guard decides on submit."""

import sqlalchemy as sa

from app.enums import CoverageLine, EndorsementKind, Role
from app.extensions import db
from app.models import CertificateRequest, Endorsement


def _gl(customer):
    return next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)


def test_review_form_offers_policies_marks_and_other_row(app, make, client, htmx, auth):
    customer = make.customer()
    req = make.queue_request(customer=customer, type="coi")
    auth.login(make.user(Role.PROCESSOR))
    db.session.commit()
    page = htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": str(req.version)})
    assert page.status_code == 200
    text = page.text
    assert 'name="cov.general_liability.policy_id"' in text and f"GL-{customer.id}" in text
    assert "ADDL INSD" in text and "no additional insured endorsement on file: needs an override note" in text
    assert "waiver of subrogation endorsement on file)" in text  # the WC policy's blanket waiver
    assert 'name="cov.other.policy_id"' in text and "Issue guard" in text


def _submit(htmx, req, **fields):
    req = db.session.get(CertificateRequest, req.id)
    db.session.refresh(req)
    return htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": str(req.version), **fields})


def test_unbacked_mark_needs_a_note_other_customers_policy_is_refused(app, make, client, htmx, auth):
    customer, other = make.customer(), make.customer()
    req = make.queue_request(customer=customer, type="coi")
    auth.login(make.user(Role.PROCESSOR))
    db.session.commit()
    marks = {"cov.general_liability.marks": "1", "cov.general_liability.addl_insd": "1"}
    refused = _submit(htmx, req, **marks)
    assert refused.status_code == 422
    assert "additional insured endorsement" in refused.text and "override note" in refused.text
    assert db.session.get(CertificateRequest, req.id).pending_issue is None
    foreign = _submit(htmx, req, **{"cov.general_liability.policy_id": str(_gl(other).id)})
    assert foreign.status_code == 422 and "not on file for this customer" in foreign.text
    assert db.session.get(CertificateRequest, req.id).pending_issue is None
    wrong_line = _submit(htmx, req, **{"cov.general_liability.policy_id": str(
        next(p for p in customer.policies if p.line is CoverageLine.AUTOMOBILE).id)})
    assert wrong_line.status_code == 422 and "cannot print on the commercial general liability row" in wrong_line.text
    ok = _submit(htmx, req, override_note="Carrier agreed by e-mail, see ticket 77.", **marks)
    assert ok.status_code == 200
    pending = db.session.get(CertificateRequest, req.id).pending_issue
    gl_row = next(r for r in pending["data"]["coverages"] if r["line"] == "general_liability")
    assert gl_row["addl_insd"] is True and pending["override_note"].startswith("Carrier agreed")


def test_backed_mark_and_other_row_from_another_line_pass_without_a_note(app, make, client, htmx, auth):
    customer = make.customer()
    _gl(customer).endorsements.append(Endorsement(kind=EndorsementKind.ADDITIONAL_INSURED))
    req = make.queue_request(customer=customer, type="coi")
    auth.login(make.user(Role.PROCESSOR))
    db.session.commit()
    auto = next(p for p in customer.policies if p.line is CoverageLine.AUTOMOBILE)
    ok = _submit(htmx, req, **{"cov.general_liability.marks": "1", "cov.general_liability.addl_insd": "1",
                               "cov.other.policy_id": str(auto.id)})
    assert ok.status_code == 200, ok.text[:500]
    data = db.session.scalar(sa.select(CertificateRequest.pending_issue).filter_by(id=req.id))["data"]
    other_row = next(r for r in data["coverages"] if r["line"] == "other")
    assert other_row["present"] and other_row["policy_number"] == auto.policy_number
    assert "Automobile liability" in other_row["detail"]
