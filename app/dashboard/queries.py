"""Read-only listings and counts for the staff certificate queue.

Every listing loads its rows with their customer and assignee in the same statement, so a page
costs a constant number of SQL statements whatever the number of requests.

At a real desk's size (100,000 requests, ~15,000 open) a page must not sort or count the whole
filtered set. So pages are *seek* pages: "Next" carries the last row's sort key and id (``after``)
and the next page is the ordered index range after it (``before`` for "Previous"), never an OFFSET;
the total is a count capped at ``COUNT_CAP`` ("1,000+"); the tab counts are one aggregate over the
open-status partial index (see ``CertificateRequest.__table_args__``). A bare ``page=N`` (old links)
still works through OFFSET.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, load_only

from app.enums import RequestStatus, RequestType
from app.extensions import db
from app.models import CertificateRequest, Customer, DataVersion, User
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
COUNT_CAP = 1_000
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


def status_in(statuses) -> sa.ColumnElement[bool]:
    """``status IN ('new', 'in_progress')`` with the values written into the SQL, not bound: a planner
    (SQLite's always, PostgreSQL's for a generic plan) can only match a partial index's condition to
    literal values."""
    wanted = {RequestStatus(s) for s in statuses}
    values = [s.value for s in RequestStatus if s in wanted]  # the index's order: new, in_progress
    return CertificateRequest.status.in_(sa.bindparam("queue_statuses", values, expanding=True,
                                                      literal_execute=True, type_=sa.String()))


def _filtered(stmt: sa.Select, f: QueueFilters) -> sa.Select:
    if f.customer or f.sort == "customer":  # else the rows' customers come with the joined load only
        stmt = stmt.join(Customer, Customer.id == CertificateRequest.customer_id)
    types = [t for t in TABS[f.tab][1] if not f.types or t in f.types]
    if set(types) != set(RequestType):  # all types: no condition, so the open-status index is a plain range
        stmt = stmt.where(CertificateRequest.type.in_(types))
    if f.statuses:
        stmt = stmt.where(status_in(f.statuses))
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
    return stmt


# Only what the queue table shows (the request's long text fields stay in the database).
ROW_COLUMNS = (CertificateRequest.id, CertificateRequest.created_at, CertificateRequest.updated_at,
               CertificateRequest.type, CertificateRequest.status, CertificateRequest.holder_name,
               CertificateRequest.instructions, CertificateRequest.manual_reason,
               CertificateRequest.issuing,
               CertificateRequest.customer_id, CertificateRequest.assigned_to_id)


def queue_statement(f: QueueFilters, *, reverse: bool = False) -> sa.Select:
    """The filtered rows in the chosen order (``reverse``: the opposite order, for "Previous")."""
    stmt = _filtered(sa.select(CertificateRequest), f).options(
        load_only(*ROW_COLUMNS),
        joinedload(CertificateRequest.customer).load_only(Customer.name),
        joinedload(CertificateRequest.assigned_to).load_only(User.name),
    )
    descending = (f.direction == "desc") != reverse
    column = SORTS[f.sort]
    if descending:
        return stmt.order_by(column.desc(), CertificateRequest.id.desc())
    return stmt.order_by(column.asc(), CertificateRequest.id.asc())


def encode_cursor(f: QueueFilters, row: CertificateRequest) -> str:
    """The row's position in the current sort, for an ``after`` / ``before`` link."""
    value = row.customer.name if f.sort == "customer" else getattr(row, SORTS[f.sort].key)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([str(value), row.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(f: QueueFilters, cursor: str | None):
    """(sort value, id) from a cursor, or None when it is missing or not one of ours (-> the first page)."""
    if not cursor or len(cursor) > 1000:
        return None
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, str) or not isinstance(row_id, int) or not 0 < row_id < 2**31:
            return None
        if f.sort in ("created", "updated"):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                return None
        elif f.sort == "type":
            value = RequestType(value)
        elif f.sort == "status":
            value = RequestStatus(value)
        return value, row_id
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


@dataclass
class SeekPage:
    """One page of the queue; ``total`` is exact up to ``COUNT_CAP`` (then ``capped``)."""

    items: list
    page: int
    per_page: int
    total: int
    capped: bool
    has_prev: bool
    has_next: bool
    prev_cursor: str | None = None
    next_cursor: str | None = None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def total_label(self) -> str:
        return f"{self.total:,}+" if self.capped else f"{self.total:,}"

    @property
    def prev_num(self) -> int:
        return max(self.page - 1, 1)

    @property
    def next_num(self) -> int:
        return self.page + 1


def capped_total(f: QueueFilters, cap: int | None = None) -> tuple[int, bool]:
    """How many rows match, counting at most ``cap + 1`` of them: (count, more than cap)."""
    cap = COUNT_CAP if cap is None else cap
    inner = _filtered(sa.select(CertificateRequest.id), f).limit(cap + 1).subquery()
    n = db.session.scalar(sa.select(sa.func.count()).select_from(inner))
    return min(n, cap), n > cap


def queue_page(f: QueueFilters, page: int = 1, per_page: int | None = None, *, after: str | None = None,
               before: str | None = None) -> SeekPage:
    """A page after (or before) a cursor; without one, page ``page`` (OFFSET, for old links)."""
    per_page = per_page or PER_PAGE
    page = min(max(page or 1, 1), MAX_PAGE)
    position, backwards = decode_cursor(f, after), False
    if position is None and (position := decode_cursor(f, before)) is not None:
        backwards = True
    stmt = queue_statement(f, reverse=backwards)
    if position is not None:
        key = SORTS[f.sort]
        mine = sa.tuple_(key, CertificateRequest.id)
        theirs = sa.tuple_(sa.bindparam(None, position[0], type_=key.type), sa.bindparam(None, position[1]))
        stmt = stmt.where(mine < theirs if (f.direction == "desc") != backwards else mine > theirs)
    elif page > 1:
        stmt = stmt.offset((page - 1) * per_page)
    rows = list(db.session.scalars(stmt.limit(per_page + 1)).unique())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
        if not more:
            page = 1
    else:
        has_prev, has_next = page > 1 or position is not None, more
    total, capped = capped_total(f)
    if not capped:
        page = min(page, max(1, math.ceil(total / per_page)))
    result = SeekPage(rows, page, per_page, total, capped, has_prev, has_next)
    if rows:
        result.prev_cursor = encode_cursor(f, rows[0]) if has_prev else None
        result.next_cursor = encode_cursor(f, rows[-1]) if has_next else None
    return result


def pending_counts() -> dict[str, int]:
    """Pending (new + in progress) requests per tab, in one statement."""
    rows = db.session.execute(
        sa.select(CertificateRequest.type, sa.func.count(CertificateRequest.id))
        .where(status_in(PENDING))
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


def queue_version() -> int:
    """The queue's data version (app/models/versions.py): read it before the rows a kept fragment shows."""
    # Plain SQL: read on every queue load, it skips the ORM's statement building (same table and row).
    return db.session.connection().exec_driver_sql(QUEUE_VERSION_SQL).scalar() or 0


QUEUE_VERSION_SQL = f"SELECT version FROM {DataVersion.__tablename__} WHERE name = 'queue'"
