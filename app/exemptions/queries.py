"""Read-only listings and counts for the exemption pages (statements, not side effects)."""

from __future__ import annotations

import sqlalchemy as sa

from app.enums import PENDING_EXEMPTION_REQUEST_STATUSES
from app.enums import ExemptionCertificateStatus as CS
from app.extensions import db
from app.models import Customer, ExemptionCertificate, ExemptionRequest, ExemptionSendRun

TABS = {
    "pending": ("Pending requests", ExemptionRequest, PENDING_EXEMPTION_REQUEST_STATUSES),
    "action": ("Action required", ExemptionCertificate, (CS.PENDING_REVIEW,)),
    "active": ("Active", ExemptionCertificate, (CS.ACTIVE,)),
    "closed": ("Rejected & expired", ExemptionCertificate, (CS.REJECTED, CS.EXPIRED)),
}
PER_PAGE = 25
MAX_ID = 2**31 - 1  # ids and counters are 32-bit: a larger number is no row (and would overflow SQLite)


def db_id(value) -> int | None:
    """``value`` as a row id, or None when it is not a positive integer in range."""
    try:
        number = int(str(value).strip().lstrip("#")) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID and not isinstance(number, bool) else None


def _search(stmt, model, q: str):
    q = (q or "").replace("\x00", "").strip()
    if not q:
        return stmt
    clauses = [Customer.name.ilike(f"%{q}%")]
    if q.lstrip("#").isdigit() and db_id(q) is not None:
        clauses.append(Customer.id == db_id(q))
    return stmt.where(sa.or_(*clauses))


def tab_statement(tab: str, q: str = ""):
    _, model, statuses = TABS[tab]
    stmt = sa.select(model).join(Customer, Customer.id == model.customer_id).where(model.status.in_(statuses))
    stmt = _search(stmt, model, q)
    if model is ExemptionRequest:
        return stmt.order_by(ExemptionRequest.sent_at.desc(), ExemptionRequest.id.desc())
    return stmt.order_by(ExemptionCertificate.submitted_at.desc(), ExemptionCertificate.id.desc())


def tab_counts(q: str = "") -> dict[str, int]:
    counts = {}
    for tab, (_, model, statuses) in TABS.items():
        stmt = (sa.select(sa.func.count(model.id)).join(Customer, Customer.id == model.customer_id)
                .where(model.status.in_(statuses)))
        counts[tab] = db.session.scalar(_search(stmt, model, q)) or 0
    return counts


def search_customers(q: str, limit: int = 10) -> list[Customer]:
    q = (q or "").replace("\x00", "").strip()
    if not q:
        return []
    stmt = _search(sa.select(Customer), Customer, q).order_by(Customer.name).limit(limit)
    return list(db.session.scalars(stmt))


def customer_requests(customer_id: int) -> list[ExemptionRequest]:
    return list(db.session.scalars(sa.select(ExemptionRequest).where(ExemptionRequest.customer_id == customer_id)
                                   .order_by(ExemptionRequest.sent_at.desc(), ExemptionRequest.id.desc())))


def customer_certificates(customer_id: int) -> list[ExemptionCertificate]:
    return list(db.session.scalars(
        sa.select(ExemptionCertificate).where(ExemptionCertificate.customer_id == customer_id)
        .order_by(ExemptionCertificate.submitted_at.desc(), ExemptionCertificate.id.desc())))


def recent_runs(limit: int = 5) -> list[ExemptionSendRun]:
    return list(db.session.scalars(sa.select(ExemptionSendRun).order_by(ExemptionSendRun.id.desc()).limit(limit)))


CUSTOMER_LIST_LIMIT = 500


def all_customers(limit: int = CUSTOMER_LIST_LIMIT) -> list[Customer]:
    return list(db.session.scalars(sa.select(Customer).order_by(Customer.name).limit(limit)))
