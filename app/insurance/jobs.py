"""RQ jobs for certificates of insurance (ids in, idempotent)."""

import logging

from sqlalchemy.orm.exc import StaleDataError

from app.extensions import db
from app.jobs import job
from app.models.base import utcnow

log = logging.getLogger(__name__)


def _lock() -> bool:
    return db.engine.dialect.name == "postgresql"


@job
def auto_process_request(request_id: int):
    """Decide whether a new request is issued without staff, and if so issue and deliver it.

    Idempotent: a request that is no longer ``new``, or was already sent to the manual queue, is left
    alone, and the row lock (PostgreSQL) keeps two copies of this job from both issuing it.
    """
    from app.insurance.processing import auto_process, get_request

    req = get_request(request_id, for_update=_lock())
    if req is None:
        return "missing"
    return auto_process(req, now=utcnow())


@job
def issue_request_certificate(request_id: int):
    """Issue what staff submitted (generated from the reviewed values, or the uploaded PDF), complete the
    request and queue the e-mails (queue ``pdf``).

    Idempotent: only a request still being issued is touched. The row lock (PostgreSQL) serialises two
    copies of this job; elsewhere the row's version counter makes the second one's UPDATE fail, and it
    rolls back everything (one certificate, one set of e-mails). Unusable submitted values are recorded
    on the request (``issue_error``) for staff; unexpected errors propagate so RQ retries the job.
    """
    from app.insurance.processing import IssueFailed, get_request, issue_pending, issue_requested, record_issue_failure

    req = get_request(request_id, for_update=_lock())
    if req is None:
        return "missing"
    try:
        return issue_requested(req, now=utcnow())
    except StaleDataError:
        db.session.rollback()
        return "issued by another worker"
    except IssueFailed as exc:
        db.session.rollback()
        log.warning("certificate request %s could not be issued: %s", request_id, exc)
        req = get_request(request_id, for_update=_lock())
        if req is None or not issue_pending(req):
            return "nothing to do"
        record_issue_failure(req, str(exc), now=utcnow())
        return "failed"


@job
def run_reissue(run_id: int):
    """A re-issue run (``app.insurance.reissue_runs``): count the attempt (committed first), then re-issue
    its certificates not handled yet, one commit each (the progress the page shows). Idempotent: a run that
    is not queued or running is left alone; a retry skips the certificates an earlier attempt handled."""
    from app.insurance import reissue_runs
    from app.models import ReissueRun

    run = db.session.get(ReissueRun, run_id)
    if run is None or not run.is_working:
        return "nothing to do"
    if not reissue_runs.begin_attempt(run, now=utcnow()):
        return str(run.status)
    db.session.commit()
    reissue_runs.run_reissue(run, clock=utcnow, commit=db.session.commit)
    return f"{run.reissued_count} re-issued, {run.skipped_count} skipped"


@job
def reissue_certificates(customer_id: int, certificate_ids: list, actor_id: int | None = None):
    """Kept for jobs queued before re-issue runs existed (new re-issues go through ``run_reissue``): re-issue
    the chosen certificates as their next revisions and e-mail each holder its new revision once.
    Idempotent: a certificate that is no longer current is skipped; each is committed on its own."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.documents import deliver_certificate
    from app.insurance.issuing import CertificateBlocked, reissue
    from app.models import IssuedCertificate, User

    actor = db.session.get(User, actor_id) if actor_id else None
    done = 0
    for cert_id in certificate_ids:
        cert = db.session.get(IssuedCertificate, int(cert_id))
        if cert is None or cert.customer_id != customer_id or not cert.is_current:
            continue
        try:
            new = reissue(cert, actor=actor, now=utcnow())
        except (CertificateBlocked, CertificateDataError) as exc:
            db.session.rollback()
            log.warning("certificate %s not re-issued: %s", cert_id, exc)
            continue
        if new.holder_email:
            deliver_certificate(new, recipients=[new.holder_email], actor=actor)
        db.session.commit()
        done += 1
    return f"{done} re-issued"
