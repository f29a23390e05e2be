"""Re-issue runs: staff re-issue chosen certificates of one customer as new revisions (after a renewal or
new limits) in one background job with progress, e-mailing each holder its new revision once.

``start_reissue`` (the web request) records a ``ReissueRun`` (status ``queued``) with the chosen
certificate ids; its job is enqueued after the commit. The job counts its attempt first (committed, so
a crash still counts it), then ``run_reissue`` re-issues the certificates one by one.

Decisions:
- **One e-mail per holder, idempotent per holder.** The certificates are handled holder by holder (by
  e-mail address): the holder's new revisions, its one e-mail with all of them attached (an outbox row,
  deduplicated by the first new certificate) and their ids in ``run.processed`` are committed together,
  so a retried job skips what an earlier attempt did: no certificate is re-issued twice, no holder
  e-mailed twice.
- **What cannot be re-issued is skipped, visibly.** A certificate that is no longer current (re-issued
  meanwhile), not this customer's, or that the issue guard now blocks (e.g. a mark no endorsement backs
  any more, a policy not in force) is counted as skipped and listed on the run with the reason; the run
  carries on with the others.
- **Dead workers.** The sweep enqueues again a run left ``queued`` or ``running`` without progress;
  after MAX_ATTEMPTS attempts the run fails with a message (a certificate that crashes its worker every
  time stops being retried).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from app import activity, lifecycle
from app.enums import ReissueStatus
from app.extensions import db
from app.models import Customer, IssuedCertificate, ReissueRun, User
from app.queue import defer

REISSUE_JOB = "app.insurance.jobs.run_reissue"
QUEUED_GRACE = timedelta(minutes=5)    # a queued run nobody picked up after this is enqueued again
RUNNING_GRACE = timedelta(minutes=15)  # a running run without progress for this long lost its worker
MAX_ATTEMPTS = 3
ERRORS_KEPT = 200


def start_reissue(customer: Customer, certificate_ids: list[int], *, actor: User | None,
                  now: datetime) -> ReissueRun:
    """Record the chosen certificates (ids the caller checked are this customer's candidates, in order,
    once each) as a queued run; its job reaches the queue after the commit."""
    ids = list(dict.fromkeys(int(i) for i in certificate_ids))
    run = ReissueRun(customer_id=customer.id, status=ReissueStatus.QUEUED, certificate_ids=ids, processed=[],
                     errors=[], total=len(ids), created_by_id=actor.id if actor is not None else None,
                     created_at=now, updated_at=now)
    db.session.add(run)
    db.session.flush()
    activity.record("customer", customer.id, "reissue_queued", actor=actor, customer_id=customer.id, now=now,
                    message=f"{len(ids)} certificate(s) queued for re-issue as new revisions (run #{run.id}).")
    defer(db.session, REISSUE_JOB, run.id, queue="pdf")
    return run


def begin_attempt(run: ReissueRun, *, now: datetime) -> bool:
    """Count one more attempt before any work (the caller commits it at once). False, and the run failed
    with the reason, when MAX_ATTEMPTS were used already."""
    if run.attempts >= MAX_ATTEMPTS:
        _fail(run, now, _gave_up(run))
        return False
    run.attempts += 1
    lifecycle.transition(run, ReissueStatus.RUNNING, actor=None, now=now,
                         note=f"Attempt {run.attempts}: {run.total - len(run.processed or [])} of {run.total} "
                              "certificate(s) to re-issue.")
    return True


def _gave_up(run: ReissueRun) -> str:
    return (f"Re-issue stopped after {run.attempts} attempts with {run.done_count} of {run.total} certificates "
            "handled (the worker stopped each time before finishing). Start the re-issue again for the rest; if "
            "it fails again, ask an administrator to check the workers.")


def _fail(run: ReissueRun, now: datetime, message: str) -> None:
    run.error = message[:500]
    lifecycle.transition(run, ReissueStatus.FAILED, actor=None, now=now, note=message)


def _skip(run: ReissueRun, cert_id: int, cert: IssuedCertificate | None, message: str) -> None:
    run.skipped_count += 1
    if len(run.errors or []) < ERRORS_KEPT:
        run.errors = [*(run.errors or []), {
            "certificate_id": cert_id, "number": cert.certificate_number if cert is not None else "",
            "revision": cert.revision if cert is not None else None,
            "holder": cert.holder_name if cert is not None else "", "message": message}]


def reissue_one(run: ReissueRun, cert_id: int, *, actor: User | None, now: datetime) -> IssuedCertificate | None:
    """Re-issue one certificate of the run, or record why not. Marks the id processed; the caller e-mails
    the holder and commits (all of it together). Returns the new revision, if any."""
    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.issuing import CertificateBlocked, reissue

    run.processed = [*(run.processed or []), cert_id]
    run.updated_at = now
    cert = db.session.get(IssuedCertificate, cert_id)
    if cert is None or cert.customer_id != run.customer_id:
        _skip(run, cert_id, None, "Not a certificate of this customer.")
        return None
    if not cert.is_current:
        newer = cert.superseded_by
        _skip(run, cert_id, cert, "Already superseded" + (f" by revision {newer.revision}." if newer else "."))
        return None
    try:
        new = reissue(cert, actor=actor, now=now)
    except (CertificateBlocked, CertificateDataError) as exc:
        _skip(run, cert_id, cert, str(exc))
        return None
    run.reissued_count += 1
    return new


def _by_holder(ids: list[int]) -> list[tuple[str, list[int]]]:
    """The ids grouped by holder e-mail address (case ignored), in the order first seen; a certificate
    without an address is a group of its own."""
    addresses = dict(db.session.execute(sa.select(IssuedCertificate.id, IssuedCertificate.holder_email)
                                        .where(IssuedCertificate.id.in_(ids))).all()) if ids else {}
    groups: dict[str, list[int]] = {}
    for cert_id in ids:
        address = (addresses.get(cert_id) or "").strip().lower()
        groups.setdefault(address or f"#{cert_id}", []).append(cert_id)
    return [("" if key.startswith("#") else key, group) for key, group in groups.items()]


def run_reissue(run: ReissueRun, *, clock: Callable[[], datetime], commit: Callable[[], None]) -> ReissueRun:
    """Re-issue the run's certificates not handled yet, holder by holder: each holder's new revisions and
    its one e-mail (all of them attached) are committed together (progress the page polls, and what a retry
    skips); then end the run. ``clock`` gives the time of each step."""
    from app.insurance.documents import deliver_to_holder

    actor = db.session.get(User, run.created_by_id) if run.created_by_id else None
    done = set(run.processed or [])
    todo = [int(i) for i in run.certificate_ids or [] if i not in done]
    for address, group in _by_holder(todo):
        new = [c for c in (reissue_one(run, cert_id, actor=actor, now=clock()) for cert_id in group) if c]
        if new and address:
            deliver_to_holder(new, address, actor=actor)
            run.emailed_count += 1
        commit()
    lifecycle.transition(run, ReissueStatus.DONE, actor=None, now=clock(),
                         note=f"{run.reissued_count} re-issued, {run.emailed_count} e-mailed, "
                              f"{run.skipped_count} skipped.")
    activity.record("customer", run.customer_id, "reissue_done", actor=actor, customer_id=run.customer_id,
                    now=clock(), message=f"Re-issue run #{run.id}: {run.reissued_count} certificate(s) re-issued as "
                    f"new revisions, {run.emailed_count} holder e-mail(s), {run.skipped_count} skipped.")
    return run


def recent_runs(customer_id: int, limit: int = 3) -> list[ReissueRun]:
    return list(db.session.scalars(sa.select(ReissueRun).where(ReissueRun.customer_id == customer_id)
                                   .order_by(ReissueRun.id.desc()).limit(limit)))


def requeue_stuck_runs(now: datetime) -> int:
    """Enqueue again the re-issue runs a dead worker or a lost Redis message left ``queued`` / ``running``
    (the job is idempotent per certificate); a run out of attempts fails with a message."""
    stale = sa.or_(
        sa.and_(ReissueRun.status == ReissueStatus.QUEUED, ReissueRun.updated_at <= now - QUEUED_GRACE),
        sa.and_(ReissueRun.status == ReissueStatus.RUNNING, ReissueRun.updated_at <= now - RUNNING_GRACE),
    )
    count = 0
    for run in db.session.scalars(sa.select(ReissueRun).where(stale)):
        if run.attempts >= MAX_ATTEMPTS:
            _fail(run, now, _gave_up(run))
        else:
            run.updated_at = now
            defer(db.session, REISSUE_JOB, run.id, queue="pdf")
        count += 1
    return count
