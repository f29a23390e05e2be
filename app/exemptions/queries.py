"""Read-only listings and counts for the exemption pages (statements, not side effects).

The tabs are seek pages (app/pagination.py) over partial indexes on the tab's statuses, ordered as the
tab is (newest first): a page reads 26 index entries and its customers in one statement, the
certificates' jurisdictions in a second, and each tab count stops at ``pagination.COUNT_CAP``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from app import pagination
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


def _term(q: str | None) -> str:
    return (q or "").replace("\x00", "").strip()


def _search(stmt, model, q: str):
    q = _term(q)
    if not q:
        return stmt
    clauses = [Customer.name.ilike(f"%{q}%")]
    if q.lstrip("#").isdigit() and db_id(q) is not None:
        clauses.append(Customer.id == db_id(q))
    return stmt.where(sa.or_(*clauses))


def status_in(model, statuses) -> sa.ColumnElement[bool]:
    """``status IN (...)`` with the values written into the SQL, not bound, so that the planner can match
    the tab's partial index (whose condition lists the same literal values)."""
    values = sorted(s.value for s in statuses)
    return model.status.in_(sa.bindparam(f"{model.__tablename__}_statuses", values, expanding=True,
                                         literal_execute=True, type_=sa.String()))


def _filtered(tab: str, q: str = "") -> sa.Select:
    _, model, statuses = TABS[tab]
    stmt = sa.select(model).where(status_in(model, statuses))
    if _term(q):
        stmt = _search(stmt.join(Customer, Customer.id == model.customer_id), model, q)
    return stmt


def sort_key(tab: str) -> tuple:
    """The tab's order (newest first), ending with the id for ties."""
    model = TABS[tab][1]
    if model is ExemptionRequest:
        return (ExemptionRequest.sent_at, ExemptionRequest.id)
    return (ExemptionCertificate.submitted_at, ExemptionCertificate.id)


def tab_statement(tab: str, q: str = ""):
    """The tab's rows, newest first (every row; a page is ``tab_page``)."""
    return _filtered(tab, q).order_by(*(k.desc() for k in sort_key(tab)))


def tab_page(tab: str, q: str = "", *, after: str | None = None, before: str | None = None, page: int = 1,
             per_page: int | None = None) -> pagination.SeekPage:
    """One seek page of a tab with each row's customer (and a certificate's jurisdictions) loaded."""
    model = TABS[tab][1]
    stmt = _filtered(tab, q)
    if not _term(q):  # else the search joined the customer already
        stmt = stmt.join(Customer, Customer.id == model.customer_id)
    stmt = stmt.options(contains_eager(model.customer).load_only(Customer.name))
    if model is ExemptionCertificate:
        stmt = stmt.options(selectinload(ExemptionCertificate.jurisdictions))
    keys = sort_key(tab)
    return pagination.seek_page(stmt, keys, lambda row: (getattr(row, keys[0].key), row.id), descending=True,
                                after=after, before=before, page=page, per_page=per_page or PER_PAGE,
                                count_stmt=_filtered(tab, q))


def tab_counts(q: str = "") -> dict[str, str]:
    """Each tab's row count, capped: "42" or "1,000+"."""
    return {tab: pagination.count_label(_filtered(tab, q)) for tab in TABS}


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
