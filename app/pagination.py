"""Seek ("keyset") pages and capped counts for the staff lists that grow to 100,000 rows and more.

A page is the next ``per_page`` rows of an index range: "Next" carries the last row's sort key
(``after``), "Previous" the first row's (``before``), and the database reads only those rows, however
deep the page, instead of sorting the whole filtered set and skipping an OFFSET. The total is a count
of at most ``COUNT_CAP + 1`` rows ("1,000+"), not a ``count(*)`` over everything.

The cursor is the sort key's values as URL-safe base64 JSON; one that does not decode to values of the
key's types (a forged or stale link) shows the first page. A bare ``page=N`` without a cursor (an old
bookmark) shows the first page as well.

The sort key must end with the primary key (ties), every column in it must be NOT NULL, and all of it
runs in one direction, so a row comparison ``(a, id) < (:a, :id)`` is the whole seek condition and an
index on the same columns serves it.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from app.extensions import db

COUNT_CAP = 1_000
MAX_CURSOR = 1_000


@dataclass
class SeekPage:
    """One page of a list; ``total`` is exact up to the cap (then ``capped``: "1,000+")."""

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


def _kind(column) -> str:
    kind = getattr(column.type, "impl", column.type)
    if isinstance(kind, sa.DateTime):
        return "datetime"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.Integer):
        return "int"
    return "str"


def encode_cursor(values: Sequence) -> str:
    """A row's sort key as a URL-safe token."""
    plain = [v.isoformat() if isinstance(v, date | datetime) else getattr(v, "value", v) for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, keys: Sequence) -> list | None:
    """The sort key's values from a token, or None when it is missing or not a key of these columns."""
    if not cursor or len(cursor) > MAX_CURSOR:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            return None
        out = []
        for column, value in zip(keys, values, strict=True):
            kind = _kind(column)
            if kind == "int":
                if not isinstance(value, int) or isinstance(value, bool) or not -2**31 <= value < 2**31:
                    return None
            elif not isinstance(value, str):
                return None
            elif kind == "datetime":
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    return None
            elif kind == "date":
                value = date.fromisoformat(value)
            out.append(value)
        return out
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def capped_count(stmt: sa.Select, cap: int | None = None) -> tuple[int, bool]:
    """How many rows ``stmt`` returns, reading at most ``cap + 1`` of them: (count, more than cap)."""
    cap = COUNT_CAP if cap is None else cap
    inner = (stmt.with_only_columns(sa.literal_column("1").label("one"), maintain_column_froms=True)
             .order_by(None).limit(cap + 1).subquery())
    n = db.session.scalar(sa.select(sa.func.count()).select_from(inner)) or 0
    return min(n, cap), n > cap


def count_label(stmt: sa.Select, cap: int | None = None) -> str:
    """A capped count for a tab or heading: "42" or "1,000+"."""
    n, capped = capped_count(stmt, cap)
    return f"{n:,}+" if capped else f"{n:,}"


def seek_page(stmt: sa.Select, keys: Sequence, row_key: Callable[[object], Sequence], *, descending: bool,
              after: str | None = None, before: str | None = None, page: int = 1, per_page: int = 25,
              count_stmt: sa.Select | None = None, cap: int | None = None, scalars: bool = True) -> SeekPage:
    """One page of ``stmt`` ordered by ``keys`` (ending with the primary key), after / before a cursor.

    ``row_key(row)`` gives a loaded row's values of ``keys``; ``count_stmt`` (default: ``stmt``) is what
    the capped total counts (a cheaper statement without the page's joins, for instance). ``page`` is
    only the number shown ("Page 3 of 40"): without a cursor the first page is shown.
    """
    position, backwards = decode_cursor(after, keys), False
    if position is None and (position := decode_cursor(before, keys)) is not None:
        backwards = True
    if position is None:
        page = 1
    page = max(1, min(page or 1, 10**6))
    down = descending != backwards
    ordered = stmt.order_by(*[k.desc() if down else k.asc() for k in keys])
    if position is not None:
        mine = sa.tuple_(*keys)
        theirs = sa.tuple_(*[sa.bindparam(None, v, type_=k.type) for k, v in zip(keys, position, strict=True)])
        ordered = ordered.where(mine < theirs if down else mine > theirs)
    result = db.session.scalars(ordered.limit(per_page + 1)) if scalars else db.session.execute(
        ordered.limit(per_page + 1))
    rows = list(result.unique()) if scalars else list(result)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
        if not more:
            page = 1
    else:
        has_prev, has_next = position is not None, more
    total, capped = capped_count(count_stmt if count_stmt is not None else stmt, cap)
    if not capped:
        page = min(page, max(1, math.ceil(total / per_page)))
    out = SeekPage(rows, page, per_page, total, capped, has_prev, has_next)
    if rows:
        out.prev_cursor = encode_cursor(row_key(rows[0])) if has_prev else None
        out.next_cursor = encode_cursor(row_key(rows[-1])) if has_next else None
    return out
