"""Exemption jobs: take ids, reload, check state first (idempotent), call a service."""

from __future__ import annotations

from app import lifecycle
from app.enums import AuditPackStatus, SendRunStatus
from app.extensions import db
from app.jobs import job
from app.models import AuditPack, ExemptionRequest, ExemptionSendRun
from app.models.base import utcnow


@job
def expire_link(request_id: int, now=None):
    """Scheduled at send time for the link's expiry. A resend moves ``expires_at`` later, so an
    old schedule firing early finds the link not yet due and does nothing."""
    from app.exemptions.services import expire_request

    req = db.session.get(ExemptionRequest, request_id)
    if req is None:
        return "gone"
    return "expired" if expire_request(req, now=now or utcnow()) else "nothing to do"


@job
def send_many(run_id: int, batch_size: int = 50):
    """Send one request per customer of a run, committing progress every ``batch_size`` so the
    progress widget moves and a retried job continues where the last one stopped."""
    from app.exemptions.services import run_send_step

    run = db.session.get(ExemptionSendRun, run_id)
    if run is None or run.status is SendRunStatus.DONE:
        return "nothing to do"
    run.started_at = run.started_at or utcnow()
    lifecycle.transition(run, SendRunStatus.RUNNING, actor=None, now=utcnow(), note=f"{run.total} customer(s).")
    actor = run.created_by
    db.session.commit()
    for index, customer_id in enumerate(run.customer_ids, start=1):
        run_send_step(run, customer_id, actor=actor, now=utcnow())
        if index % batch_size == 0:
            db.session.commit()
    lifecycle.transition(run, SendRunStatus.DONE, actor=None, now=utcnow(),
                         note=f"{run.sent_count} sent, {run.skipped_count} skipped.")
    return f"sent {run.sent_count}, skipped {run.skipped_count}"


@job
def build_audit_pack(pack_id: int):
    """Build one audit pack. Idempotent: a finished pack is left alone; a retried one starts over.
    The try is counted in its own commit first, so a crash or rollback cannot hide it."""
    from app.exemptions import audit

    pack = db.session.get(AuditPack, pack_id)
    if pack is None or pack.is_finished:
        return "nothing to do"
    pack.attempts += 1
    lifecycle.transition(pack, AuditPackStatus.RUNNING, actor=None, now=utcnow(), note=f"Attempt {pack.attempts}.")
    db.session.commit()
    audit.build_pack(pack, now=utcnow(), progress=lambda p: db.session.commit())
    return f"{pack.done_count} certificates"
