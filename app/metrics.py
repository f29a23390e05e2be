"""Funnel and timing numbers for the staff dashboard and ``GET /api/v1/metrics``.

Every figure is an SQL aggregate over indexed columns (no rows are loaded into Python): counts with
FILTER-style sums, and medians / 90th percentiles found by counting, then reading one ordered row at
that position (nearest-rank percentiles; portable between SQLite and PostgreSQL, and cheap with the
index on the timestamp).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from app.enums import AutomationDecision, PaymentStatus, RequestStatus
from app.extensions import db
from app.models import (
    CertificateJurisdiction,
    CertificateRequest,
    ExemptionCertificate,
    ExemptionRequest,
    Payment,
)


def _seconds_between(start, end):
    if db.engine.dialect.name == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _percentiles(duration, *where) -> dict:
    """Median and p90 (in hours) of ``duration`` over the rows matching ``where``."""
    n = db.session.scalar(sa.select(sa.func.count()).where(*where))
    out = {"count": n or 0, "median_hours": None, "p90_hours": None}
    if not n:
        return out
    for key, q in (("median_hours", 0.5), ("p90_hours", 0.9)):
        position = min(n - 1, max(0, math.ceil(q * n) - 1))  # nearest rank
        seconds = db.session.scalar(sa.select(duration).where(*where).order_by(duration).offset(position).limit(1))
        out[key] = round(float(seconds) / 3600, 2) if seconds is not None else None
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    return (datetime.combine(date_from, time.min, tzinfo=UTC),
            datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC))


def exemption_funnel(date_from: date, date_to: date) -> dict:
    """Requests sent in the range -> opened -> completed -> approved, overall, per send-to-many run and per
    state (of the submitted certificate), with the time from sent to completed."""
    start, end = _bounds(date_from, date_to)
    R = ExemptionRequest
    in_range = (R.sent_at >= start, R.sent_at < end)
    approved = sa.and_(ExemptionCertificate.id.is_not(None), ExemptionCertificate.activated_at.is_not(None))
    counts = (sa.func.count(R.id), sa.func.count(R.opened_at), sa.func.count(R.completed_at),
              sa.func.count(sa.case((approved, 1))))
    base = sa.select(*counts).select_from(R).outerjoin(ExemptionCertificate, ExemptionCertificate.request_id == R.id)
    sent, opened, completed, done = db.session.execute(base.where(*in_range)).one()

    def block(s, o, c, a):
        return {"sent": s, "opened": o, "completed": c, "approved": a, "open_rate": _rate(o, s),
                "completion_rate": _rate(c, s), "approval_rate": _rate(a, c)}

    per_run = [{"send_run_id": run, **block(s, o, c, a)} for run, s, o, c, a in db.session.execute(
        sa.select(R.send_run_id, *counts).select_from(R)
        .outerjoin(ExemptionCertificate, ExemptionCertificate.request_id == R.id)
        .where(*in_range, R.send_run_id.is_not(None)).group_by(R.send_run_id).order_by(R.send_run_id))]
    per_state = [{"state": state, "completed": c, "approved": a, "approval_rate": _rate(a, c)}
                 for state, c, a in db.session.execute(
                     sa.select(CertificateJurisdiction.state, sa.func.count(sa.distinct(R.id)),
                               sa.func.count(sa.distinct(sa.case((approved, R.id)))))
                     .select_from(R).join(ExemptionCertificate, ExemptionCertificate.request_id == R.id)
                     .join(CertificateJurisdiction, CertificateJurisdiction.certificate_id == ExemptionCertificate.id)
                     .where(*in_range).group_by(CertificateJurisdiction.state).order_by(CertificateJurisdiction.state))]
    timing = _percentiles(_seconds_between(R.sent_at, R.completed_at), *in_range, R.completed_at.is_not(None))
    return {**block(sent, opened, completed, done), "sent_to_completed": timing, "per_send_run": per_run,
            "per_state": per_state}


def coi_numbers(date_from: date, date_to: date) -> dict:
    """COI requests created in the range -> issued, time to issue, automatic vs staff, rejections by reason,
    WOS fees charged and refunded."""
    start, end = _bounds(date_from, date_to)
    Q = CertificateRequest
    in_range = (Q.created_at >= start, Q.created_at < end)
    completed = Q.status == RequestStatus.COMPLETED
    total, issued, auto = db.session.execute(sa.select(
        sa.func.count(Q.id), sa.func.count(sa.case((completed, 1))),
        sa.func.count(sa.case((sa.and_(completed, Q.decision == AutomationDecision.AUTO), 1)))).where(*in_range)).one()
    rejections = [{"reason": reason or "(none given)", "count": n} for reason, n in db.session.execute(
        sa.select(Q.rejection_reason, sa.func.count(Q.id)).where(*in_range, Q.status == RequestStatus.REJECTED)
        .group_by(Q.rejection_reason).order_by(sa.func.count(Q.id).desc()))]
    charged, refunded = db.session.execute(sa.select(
        sa.func.coalesce(sa.func.sum(Payment.fee_cents), 0), sa.func.coalesce(sa.func.sum(Payment.refunded_cents), 0))
        .where(Payment.status == PaymentStatus.APPROVED, Payment.created_at >= start, Payment.created_at < end)).one()
    return {
        "requested": total, "issued": issued, "issue_rate": _rate(issued, total),
        "issued_automatically": auto, "issued_by_staff": issued - auto, "automatic_share": _rate(auto, issued),
        "time_to_issue": _percentiles(_seconds_between(Q.created_at, Q.completed_at), *in_range, completed,
                                      Q.completed_at.is_not(None)),
        "rejections_by_reason": rejections,
        "wos_fees": {"charged_cents": int(charged), "refunded_cents": int(refunded),
                     "net_cents": int(charged) - int(refunded)},
    }


def metrics(date_from: date, date_to: date) -> dict:
    return {"from": date_from.isoformat(), "to": date_to.isoformat(),
            "exemptions": exemption_funnel(date_from, date_to),
            "certificates_of_insurance": coi_numbers(date_from, date_to)}
