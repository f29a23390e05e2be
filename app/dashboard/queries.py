"""Read-only listings and counts for the staff certificate queue.

Every listing loads its rows with their customer and assignee in the same statement, so a page
costs a constant number of SQL statements whatever the number of requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.enums import RequestStatus, RequestType
from app.extensions import db
from app.models import CertificateRequest, Customer
from app.validation import parse_id

PENDING = (RequestStatus.NEW, RequestStatus.IN_PROGRESS)
TABS = {
    "all": ("All", tuple(RequestType)),
    "wos": ("WOS", (RequestType.COI_WOS,)),
    "coi": ("COI / POI", (RequestType.COI, RequestType.POI)),
}
SORTS = {
    "created": CertificateRequest.created_at,
    "updated": CertificateRequest.updated_at,
    "customer": Customer.name,
    "holder": CertificateRequest.holder_name,
    "type": CertificateRequest.type,
    "status": CertificateRequest.status,
}
PER_PAGE = 25
MAX_PAGE = 100_000
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


@dataclass
class QueueFilters:
    tab: str = "all"
    statuses: list[RequestStatus] = field(default_factory=lambda: list(PENDING))
    types: list[RequestType] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None
    customer: str = ""
    sort: str = "created"
    direction: str = "asc"
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> QueueFilters:
        f = cls()
        f.tab = args.get("tab", "all") if args.get("tab", "all") in TABS else "all"
        statuses = [s for s in args.getlist("status") if s]
        if "any" in statuses:
            f.statuses = []
        elif statuses:
            f.statuses = [RequestStatus(s) for s in statuses if s in RequestStatus._value2member_map_]
        f.types = [RequestType(t) for t in args.getlist("type") if t in RequestType._value2member_map_]
        for name in ("date_from", "date_to"):
            raw = (args.get(name) or "").strip()
            if raw:
                try:
                    value = date.fromisoformat(raw)
                    if not EARLIEST <= value <= LATEST:
                        raise ValueError(raw)
                    setattr(f, name, value)
                except ValueError:
                    f.errors.append(f"Ignored the date {raw[:20]!r}: use YYYY-MM-DD.")
        f.customer = (args.get("customer") or "").replace("\x00", "").strip()[:100]
        f.sort = args.get("sort", "created") if args.get("sort", "created") in SORTS else "created"
        f.direction = "desc" if args.get("dir") == "desc" else "asc"
        return f

    def query_args(self, **changes) -> dict:
        """The filters as URL arguments (for links: tabs, sorting, pages)."""
        out = {
            "tab": self.tab,
            "status": [s.value for s in self.statuses] or ["any"],
            "type": [t.value for t in self.types],
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "customer": self.customer,
            "sort": self.sort,
            "dir": self.direction,
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v not in ("", [], None)}


def queue_statement(f: QueueFilters) -> sa.Select:
    stmt = (
        sa.select(CertificateRequest)
        .join(Customer, Customer.id == CertificateRequest.customer_id)
        .options(joinedload(CertificateRequest.customer), joinedload(CertificateRequest.assigned_to))
    )
    types = [t for t in TABS[f.tab][1] if not f.types or t in f.types]
    stmt = stmt.where(CertificateRequest.type.in_(types))
    if f.statuses:
        stmt = stmt.where(CertificateRequest.status.in_(f.statuses))
    if f.date_from:
        stmt = stmt.where(CertificateRequest.created_at >= datetime.combine(f.date_from, time.min, UTC))
    if f.date_to:
        end = datetime.combine(f.date_to + timedelta(days=1), time.min, UTC)
        stmt = stmt.where(CertificateRequest.created_at < end)
    if f.customer:
        term = f.customer.lower()
        condition = sa.func.lower(Customer.name).contains(term, autoescape=True)
        if (number := parse_id(term)) is not None:
            condition = sa.or_(condition, Customer.id == number, CertificateRequest.id == number)
        stmt = stmt.where(condition)
    column = SORTS[f.sort]
    order = column.desc() if f.direction == "desc" else column.asc()
    tiebreak = CertificateRequest.id.desc() if f.direction == "desc" else CertificateRequest.id.asc()
    return stmt.order_by(order, tiebreak)


def queue_page(f: QueueFilters, page: int = 1, per_page: int = PER_PAGE):
    return db.paginate(queue_statement(f), page=min(max(page, 1), MAX_PAGE), per_page=per_page, error_out=False)


def pending_counts() -> dict[str, int]:
    """Pending (new + in progress) requests per tab, in one statement."""
    rows = db.session.execute(
        sa.select(CertificateRequest.type, sa.func.count(CertificateRequest.id))
        .where(CertificateRequest.status.in_(PENDING))
        .group_by(CertificateRequest.type)
    ).all()
    by_type = {t: n for t, n in rows}
    return {tab: sum(by_type.get(t, 0) for t in types) for tab, (_, types) in TABS.items()}


def request_detail(request_id: int) -> CertificateRequest | None:
    return db.session.scalar(
        sa.select(CertificateRequest)
        .where(CertificateRequest.id == request_id)
        .options(joinedload(CertificateRequest.customer).joinedload(Customer.program),
                 joinedload(CertificateRequest.assigned_to), joinedload(CertificateRequest.submitted_by))
    )
