"""Queue services: transitions, the auto-issue decision, relabel, reject, cancel, conflicts, reasons."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.enums import (
    CERTIFICATE_REQUEST_TRANSITIONS,
    AutomationDecision,
    InvalidTransition,
    IssueState,
    RequestStatus,
    RequestType,
    Role,
    can_transition,
)
from app.extensions import db
from app.insurance import processing
from app.insurance.certificate_data import should_auto_issue
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage, RejectionReason
from app.models.insurance import DEFAULT_REJECTION_REASONS

NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
S = RequestStatus


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_transition_matrix(app, make, current, target):
    req = make.queue_request(status=current.value)
    allowed = {S.NEW: {S.IN_PROGRESS, S.COMPLETED, S.REJECTED, S.CANCELLED},
               S.IN_PROGRESS: {S.COMPLETED, S.REJECTED, S.CANCELLED}}.get(current, set())
    assert can_transition(CERTIFICATE_REQUEST_TRANSITIONS, current, target) == (target in allowed)
    if target in allowed:
        processing.transition(req, target, actor=None, now=NOW)
        assert req.status is target
        rows = db.session.scalars(sa.select(Activity).filter_by(subject_type="certificate_request",
                                                                subject_id=req.id)).all()
        assert [r.action for r in rows] == [f"status_{target.value}"]
    else:
        with pytest.raises(InvalidTransition):
            processing.transition(req, target, actor=None, now=NOW)
        assert req.status is current


def _req(type_="coi", instructions="", automation=True):
    return SimpleNamespace(type=RequestType(type_), instructions=instructions,
                           customer=SimpleNamespace(automation_enabled=automation))


@pytest.mark.parametrize(("req", "discrepancies", "expected", "why"), [
    (_req("coi"), [], True, "no discrepancies"),
    (_req("poi"), [], True, "no discrepancies"),
    (_req("coi_wos"), [], False, "waiver of subrogation"),
    (_req("coi", automation=False), [], False, "not enabled"),
    (_req("poi", instructions="Please add the project owner as additional insured"), [], False,
     "special instructions"),
    (_req("coi", instructions="   "), [], True, "no discrepancies"),
    (_req("coi"), ["No general liability policy in force"], False, "general liability policy"),
])
def test_should_auto_issue(req, discrepancies, expected, why):
    ok, reason = should_auto_issue(req, discrepancies)
    assert ok is expected
    assert why in reason.lower()


def test_mark_in_progress_records_who(app, make):
    staff = make.user(Role.PROCESSOR, name="Pia Processor")
    req = make.queue_request()
    processing.mark_in_progress(req, actor=staff, now=NOW, expected_version=req.version)
    db.session.commit()
    assert req.status is S.IN_PROGRESS and req.assigned_to_id == staff.id and req.started_at == NOW
    entry = db.session.scalar(sa.select(Activity).filter_by(subject_id=req.id, action="marked_in_progress"))
    assert entry.actor_label == "Pia Processor"
    other = make.user(Role.REVIEWER)
    with pytest.raises(processing.RequestConflict, match="Pia Processor is already working"):
        processing.mark_in_progress(req, actor=other, now=NOW)


def test_relabel_both_ways_and_refuses_poi(app, make):
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request(type="coi")
    processing.relabel(req, "coi_wos", actor=staff, now=NOW)
    assert req.type is RequestType.COI_WOS
    processing.relabel(req, "coi", actor=staff, now=NOW)
    assert req.type is RequestType.COI
    with pytest.raises(processing.ActionRefused):
        processing.relabel(req, "poi", actor=staff, now=NOW)
    poi = make.queue_request(type="poi")
    with pytest.raises(processing.ActionRefused):
        processing.relabel(poi, "coi", actor=staff, now=NOW)
    messages = db.session.scalars(sa.select(Activity.message).filter_by(subject_id=req.id, action="relabelled")).all()
    assert "Relabelled from Certificate of insurance to Certificate of insurance with WOS." in messages


def test_reject_with_configured_reason_emails_customer_only(app, make):
    staff = make.user(Role.PROCESSOR)
    customer = make.customer(contact_email="owner@acme.example.com")
    req = make.queue_request(customer=customer)
    reason = next(r for r in processing.rejection_reasons() if r.text == "Incomplete address")
    processing.reject(req, str(reason.id), actor=staff, now=NOW, note="Suite number missing",
                      expected_version=req.version)
    db.session.commit()
    assert req.status is S.REJECTED and req.rejection_reason == "Incomplete address" and req.rejected_at == NOW
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.to_address for m in mails] == ["owner@acme.example.com"]  # not the holder
    assert "Reason: Incomplete address" in mails[0].body_text
    assert "Suite number missing" in mails[0].body_text and "Incomplete address" in mails[0].body_html


@pytest.mark.parametrize("reason_id", [None, "", "abc", "99999"])
def test_reject_needs_a_listed_reason(app, make, reason_id):
    req = make.queue_request()
    with pytest.raises(processing.ActionRefused, match="Pick a rejection reason"):
        processing.reject(req, reason_id, actor=make.user(Role.PROCESSOR), now=NOW)
    assert req.status is S.NEW
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_reject_refuses_deactivated_reason(app, make):
    reason = processing.rejection_reasons()[0]
    processing.set_reason_active(reason, False)
    req = make.queue_request()
    with pytest.raises(processing.ActionRefused):
        processing.reject(req, reason.id, actor=make.user(Role.PROCESSOR), now=NOW)


def test_cancel_and_closed_requests_refuse_actions(app, make):
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request()
    processing.cancel(req, actor=staff, now=NOW, note="Customer called: not needed")
    assert req.status is S.CANCELLED and req.cancelled_at == NOW
    for action in (lambda: processing.mark_in_progress(req, actor=staff, now=NOW),
                   lambda: processing.relabel(req, "coi_wos", actor=staff, now=NOW),
                   lambda: processing.cancel(req, actor=staff, now=NOW),
                   lambda: processing.submit_uploaded(req, actor=staff, now=NOW, data=b"%PDF-1.4", filename="x.pdf")):
        with pytest.raises(processing.RequestConflict, match="already cancelled"):
            action()


def test_stale_version_is_a_conflict(app, make):
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request()
    seen = req.version
    processing.mark_in_progress(req, actor=staff, now=NOW)
    db.session.commit()
    with pytest.raises(processing.RequestConflict, match="Someone else changed this request first"):
        processing.reject(req, processing.rejection_reasons()[0].id, actor=staff, now=NOW, expected_version=seen)
    assert req.status is S.IN_PROGRESS


def test_concurrent_writers_second_gets_stale_data(app, make):
    """Both loaded version 1 and passed the version check; the row's version counter stops the second."""
    a = make.user(Role.PROCESSOR, name="Ann")
    b = make.user(Role.PROCESSOR, name="Bob")
    req = make.queue_request()
    db.session.commit()
    mine = db.session.get(CertificateRequest, req.id)
    assert mine.version == 1
    with Session(db.engine) as other:
        theirs = other.get(CertificateRequest, req.id)
        theirs.assigned_to_id = b.id
        theirs.status = S.IN_PROGRESS  # what another web process did, committed first
        other.commit()
    with pytest.raises(processing.StaleDataError):
        processing.cancel(mine, actor=a, now=NOW, expected_version=1)
    db.session.rollback()
    fresh = db.session.get(CertificateRequest, req.id, populate_existing=True)
    assert fresh.status is S.IN_PROGRESS and fresh.assigned_to_id == b.id
    assert db.session.scalar(sa.select(sa.func.count(Activity.id)).filter_by(action="cancelled")) == 0


@pytest.mark.parametrize(("data", "filename"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "certificate.pdf"),
    (b"this is not a pdf at all", "certificate.pdf"),
    (b"", "empty.pdf"),
    (b"%PDF-1.4\n garbage without pages", "broken.pdf"),
])
def test_upload_refuses_non_pdfs_and_stores_nothing(app, make, data, filename, tmp_path):
    req = make.queue_request()
    with pytest.raises(processing.UploadRejected):
        processing.submit_uploaded(req, actor=make.user(Role.PROCESSOR), now=NOW, data=data, filename=filename)
    assert req.status is S.NEW
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    uploads = tmp_path / "uploads"
    assert not any(p.is_file() for p in uploads.rglob("*"))


def test_auto_process_skips_decided_and_closed(app, make):
    req = make.queue_request(manual_reason="Discrepancies: something", decision=AutomationDecision.MANUAL)
    assert processing.auto_process(req, now=NOW) == "nothing to do"
    done = make.queue_request(status="completed")
    assert processing.auto_process(done, now=NOW) == "nothing to do"


def test_auto_process_sends_wos_to_manual_queue_with_reason(app, make):
    req = make.queue_request(type="coi_wos")
    assert processing.auto_process(req, now=NOW) == "manual"
    assert req.status is S.NEW and req.needs_manual and "waiver of subrogation" in req.manual_reason.lower()
    entry = db.session.scalar(sa.select(Activity).filter_by(subject_id=req.id, action="sent_to_manual_queue"))
    assert "Waiver of subrogation" in entry.message
    assert processing.auto_process(req, now=NOW) == "nothing to do"  # idempotent


def test_auto_process_manual_when_automation_disabled(app, make):
    req = make.queue_request(customer=make.customer(automation_enabled=False), type="poi")
    assert processing.auto_process(req, now=NOW) == "manual"
    assert "not enabled" in req.manual_reason


def test_attempt_automation_refused_without_automation(app, make):
    req = make.queue_request(customer=make.customer(automation_enabled=False))
    with pytest.raises(processing.ActionRefused, match="upload the issued certificate"):
        processing.attempt_automation(req, actor=make.user(Role.PROCESSOR), now=NOW)
    assert req.status is S.NEW


def test_sweep_requeues_undecided_new_requests(app, make):
    old = make.queue_request(created_at=datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    make.queue_request(created_at=datetime(2026, 6, 1, 14, 59, 30, tzinfo=UTC))  # too fresh
    make.queue_request(created_at=datetime(2026, 6, 1, 14, 0, tzinfo=UTC), manual_reason="decided",
                       decision=AutomationDecision.MANUAL)
    assert processing.requeue_undecided(NOW) == 1
    jobs = db.session.info["deferred_jobs"]
    assert [(j.func, j.args) for j in jobs] == [(processing.AUTO_JOB, (old.id,))]


# -- rejection reasons ------------------------------------------------------------------------------

def test_reasons_seeded_lazily_once(app):
    assert [r.text for r in processing.rejection_reasons()] == DEFAULT_REJECTION_REASONS
    processing.ensure_default_reasons()
    assert db.session.scalar(sa.select(sa.func.count(RejectionReason.id))) == len(DEFAULT_REJECTION_REASONS)


def test_reasons_add_deactivate_reorder(app):
    added = processing.add_reason("  Policy   cancelled ")
    assert added.text == "Policy cancelled"
    with pytest.raises(processing.ActionRefused, match="already"):
        processing.add_reason("policy cancelled")
    with pytest.raises(processing.ActionRefused):
        processing.add_reason("   ")
    processing.move_reason(added, "up")
    texts = [r.text for r in processing.rejection_reasons()]
    assert texts[-2:] == ["Policy cancelled", "Holder name incomplete"]
    first = processing.rejection_reasons()[0]
    processing.move_reason(first, "up")  # already first: stays
    assert processing.rejection_reasons()[0].id == first.id
    processing.set_reason_active(first, False)
    assert first.id not in [r.id for r in processing.rejection_reasons()]
    assert first.id in [r.id for r in processing.rejection_reasons(include_inactive=True)]
    assert processing.add_reason(first.text).is_active  # re-adding reactivates


def test_seed_hook_registered(app):
    from app.cli import SEED_HOOKS

    assert SEED_HOOKS.count(processing.seed_rejection_reasons) == 1


def test_sweep_step_registered(app):
    from app.sweeper import SWEEPS

    assert SWEEPS["coi_auto_process"] is processing.requeue_undecided


# -- asynchronous issuing (Submit -> PDF job) --------------------------------------------------------

def test_submit_generated_stores_values_and_defers_the_pdf_job(app, make):
    staff = make.user(Role.PROCESSOR, name="Pia Processor")
    req = make.queue_request(holder_email="certs@holder.example.com",
                             customer=make.customer(contact_email="office@c.example.com"))
    db.session.commit()
    overrides = {"coverages": {"general_liability": {"limits": {"each_occurrence": 3_000_000}}},
                 "holder": {"name": "Harbor Holdings LLC"}}
    processing.submit_generated(req, actor=staff, now=NOW, overrides=overrides, send_to_holder=True,
                                expected_version=req.version)
    assert req.status is S.IN_PROGRESS and req.assigned_to_id == staff.id  # a new request: who is on it
    assert req.issue_requested_at == NOW and processing.issue_pending(req)
    p = req.pending_issue
    assert p["mode"] == "generated" and p["actor_id"] == staff.id and p["holder"]["name"] == "Harbor Holdings LLC"
    gl = next(row for row in p["data"]["coverages"] if row["line"] == "general_liability")
    assert any(item["amount"] == 3_000_000 for item in gl["limits"])
    assert p["recipients"] == ["certs@holder.example.com", "office@c.example.com"]
    jobs = db.session.info["deferred_jobs"]
    assert [(j.func, j.args, j.queue) for j in jobs] == [(processing.ISSUE_JOB, (req.id,), "pdf")]
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    db.session.commit()

    # while it is being issued every action is refused with a clear message
    other = make.user(Role.REVIEWER)
    for action in (lambda: processing.submit_generated(req, actor=other, now=NOW),
                   lambda: processing.cancel(req, actor=other, now=NOW),
                   lambda: processing.reject(req, processing.rejection_reasons()[0].id, actor=other, now=NOW)):
        with pytest.raises(processing.RequestConflict, match="Pia Processor already submitted this request"):
            action()

    assert processing.issue_requested(req, now=NOW) == "issued"
    db.session.commit()
    assert req.status is S.COMPLETED and req.completed_at == NOW and not processing.issue_pending(req)
    cert = db.session.scalar(sa.select(IssuedCertificate))
    assert cert.holder_name == "Harbor Holdings LLC" and cert.issued_by_id == staff.id
    assert sorted(db.session.scalars(sa.select(OutboxMessage.to_address))) == p["recipients"]
    assert processing.issue_requested(req, now=NOW) == "nothing to do"  # idempotent
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 1


def test_issue_failure_is_recorded_and_retry_needs_a_failure(app, make):
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request()
    with pytest.raises(processing.ActionRefused, match="no failed certificate"):
        processing.retry_issue(req, actor=staff, now=NOW)
    req.pending_issue = {"mode": "uploaded", "document_key": "00/missing", "recipients": []}
    req.issuing, req.issue_requested_at = IssueState.PENDING, NOW
    with pytest.raises(processing.IssueFailed, match="missing from the file store"):
        processing.issue_requested(req, now=NOW)
    processing.record_issue_failure(req, "the uploaded file is missing.", now=NOW)
    assert not processing.issue_pending(req) and req.issue_error == "the uploaded file is missing."
    entry = db.session.scalar(sa.select(Activity).filter_by(subject_id=req.id, action="issue_failed"))
    assert "Nothing was sent" in entry.message
    processing.retry_issue(req, actor=staff, now=NOW)
    assert processing.issue_pending(req) and req.issue_error == "" and req.pending_issue["document_key"] == "00/missing"


def test_sweep_requeues_lost_issue_jobs_and_gives_up_after_an_hour(app, make):
    def pending(minutes_ago, status="in_progress"):
        req = make.queue_request(status=status)
        req.pending_issue = {"mode": "generated", "data": {"x": 1}, "recipients": []}
        req.issuing, req.issue_requested_at = IssueState.PENDING, NOW - timedelta(minutes=minutes_ago)
        return req

    lost = pending(5)
    pending(1)  # the job may still be on its way
    pending(30, status="completed")  # done
    ancient = pending(61)
    db.session.flush()
    assert processing.requeue_issue_requests(NOW) == 2
    jobs = db.session.info["deferred_jobs"]
    assert [(j.func, j.args, j.queue) for j in jobs] == [(processing.ISSUE_JOB, (lost.id,), "pdf")]
    assert ancient.issue_requested_at is None and "kept failing" in ancient.issue_error
    assert ancient.issuing is IssueState.FAILED and lost.issuing is IssueState.PENDING


def test_issue_sweep_step_registered(app):
    from app.sweeper import SWEEPS

    assert SWEEPS["coi_issue_requests"] is processing.requeue_issue_requests


def test_two_issue_jobs_at_once_issue_once(app, make):
    """A second copy of the job passed the 'still being issued' check with a stale row: its UPDATE matches
    no row (version counter), so it rolls back — one certificate, one set of e-mails."""
    staff = make.user(Role.PROCESSOR)
    req = make.queue_request()
    db.session.commit()
    processing.submit_generated(req, actor=staff, now=NOW, expected_version=req.version)
    db.session.commit()
    stale = db.session.get(CertificateRequest, req.id)
    assert processing.issue_pending(stale)
    with Session(db.engine) as other:  # the first copy, in another worker, completed it first
        mine = other.get(CertificateRequest, req.id)
        mine.status, mine.completed_at = S.COMPLETED, NOW
        other.commit()
    with pytest.raises(processing.StaleDataError):
        processing.issue_requested(stale, now=NOW)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_issue_job_swallows_a_lost_race_and_records_failures(app, make, monkeypatch):
    from app.insurance import jobs

    staff = make.user(Role.PROCESSOR)
    req = make.queue_request()
    db.session.commit()
    processing.submit_generated(req, actor=staff, now=NOW, expected_version=req.version)
    db.session.commit()
    request_id = req.id

    def lost(req, *, now):
        raise processing.StaleDataError("lost the race")

    monkeypatch.setattr(processing, "issue_requested", lost)
    assert jobs.issue_request_certificate(request_id) == "issued by another worker"

    def unusable(req, *, now):
        raise processing.IssueFailed("the data is unusable.")

    monkeypatch.setattr(processing, "issue_requested", unusable)
    assert jobs.issue_request_certificate(request_id) == "failed"
    fresh = db.session.get(CertificateRequest, request_id)
    assert fresh.issue_error == "the data is unusable." and fresh.issue_requested_at is None
    monkeypatch.undo()
    assert jobs.issue_request_certificate(request_id) == "nothing to do"  # not being issued any more
    assert jobs.issue_request_certificate(999_999) == "missing"
