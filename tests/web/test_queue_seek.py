"""The staff queue at a real desk's size: seek pages (no OFFSET), a capped total, the open-status indexes."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.dashboard import queries
from app.enums import Role
from app.extensions import db


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR)
    auth.login(user)
    return user


def holders(html: str) -> list[str]:
    return re.findall(r'data-label="Holder"><a href="[^"]+">([^<]+)</a>', html)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def add_requests(make, n: int, start=datetime(2026, 1, 1, tzinfo=UTC)):
    customer = make.customer(with_policies=False)
    for i in range(n):
        # Pairs share a received time, so the id tiebreak decides the order within a pair.
        make.queue_request(customer=customer, holder_name=f"Holder {i:03d}",
                           created_at=start + timedelta(minutes=i // 2))
    db.session.commit()


def test_next_and_previous_walk_every_request_once_in_order(client, processor, make, monkeypatch):
    monkeypatch.setattr(queries, "PER_PAGE", 7)
    add_requests(make, 30)
    seen, url, pages = [], "/dashboard/queue", []
    while url:
        html = client.get(url).text
        seen += holders(html)
        pages.append(re.search(r"Page \d+ of \d+ \(30\)", html).group(0))
        url = link(html, "next")
        assert url is None or ("after=" in url and "page=" in url)
    assert seen == [f"Holder {i:03d}" for i in range(30)]
    assert pages == [f"Page {n} of 5 (30)" for n in range(1, 6)]
    # and back again from the last page
    back, url = [], link(html, "prev")
    while url:
        html = client.get(url).text
        back = holders(html) + back
        url = link(html, "prev")
    assert back == seen[:28] and "Page 1 of 5 (30)" in html


def test_descending_seek_and_a_sort_by_customer(client, processor, make, monkeypatch):
    monkeypatch.setattr(queries, "PER_PAGE", 4)
    add_requests(make, 10)
    seen, url = [], "/dashboard/queue?sort=created&dir=desc"
    while url:
        html = client.get(url).text
        seen += holders(html)
        url = link(html, "next")
    assert seen == [f"Holder {i:03d}" for i in reversed(range(10))]
    by_customer = client.get("/dashboard/queue?sort=customer").text
    second = client.get(link(by_customer, "next")).text
    assert len(set(holders(by_customer)) | set(holders(second))) == 8


def test_a_forged_cursor_shows_the_first_page_not_an_error(client, processor, make):
    add_requests(make, 3)
    for cursor in ("garbage", "eyJ4IjoxfQ", "WyJub3QgYSBkYXRlIiwxXQ", "W251bGwsMV0", "%00" * 10):
        page = client.get(f"/dashboard/queue?after={cursor}&before={cursor}")
        assert page.status_code == 200 and holders(page.text) == ["Holder 000", "Holder 001", "Holder 002"]


def test_the_total_is_capped_and_says_so(client, processor, make, monkeypatch):
    monkeypatch.setattr(queries, "COUNT_CAP", 12)
    add_requests(make, 30)
    html = client.get("/dashboard/queue").text
    assert "Page 1 of 1+ (12+)" in html and "(30)" not in html and link(html, "next")
    assert queries.capped_total(queries.QueueFilters(), cap=100) == (30, False)
    assert queries.capped_total(queries.QueueFilters(), cap=29) == (29, True)


def test_a_late_page_costs_the_same_statements_as_the_first(client, processor, make):
    add_requests(make, 120)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    first = client.get("/dashboard/queue").text
    url = link(first, "next")
    for _ in range(3):
        url = link(client.get(url).text, "next")
    db.session.expire_all()
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        late = client.get(url).text
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert "Page 5 of 5 (120)" in late and holders(late)[0] == "Holder 100"
    # the page is the index range after the previous page's last row (a row comparison), not an OFFSET
    page_sql = [s for s in statements if "certificate_requests.holder_name" in s]
    assert len(page_sql) == 1
    assert "(certificate_requests.created_at, certificate_requests.id) >" in page_sql[0], page_sql[0]
    # only the columns the table shows: the long text fields are not read
    assert not any("contract_details" in s or "project_location" in s for s in statements)


def test_the_default_page_and_the_tab_counts_read_the_open_status_indexes(app, make):
    add_requests(make, 30)
    customer = make.customer(with_policies=False)
    for i in range(300):  # most requests are done, as at a real desk
        make.queue_request(customer=customer, status=("completed", "rejected", "cancelled")[i % 3])
    db.session.commit()
    db.session.execute(sa.text("ANALYZE"))
    f = queries.QueueFilters()
    page_stmt = queries.queue_statement(f).limit(26)
    counts_stmt = (sa.select(queries.CertificateRequest.type, sa.func.count())
                   .where(queries.status_in(queries.PENDING))
                   .group_by(queries.CertificateRequest.type))
    if db.engine.dialect.name == "sqlite":
        for stmt, index in ((page_stmt, "ix_certificate_requests_open_created"),
                            (counts_stmt, "ix_certificate_requests_open_type")):
            compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(r[-1]) for r in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert index in plan, plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    else:
        # (30 rows are sorted faster than read in order: tell the planner sorting is off the table)
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        db.session.execute(sa.text("SET LOCAL enable_sort = off"))
        db.session.execute(sa.text("SET LOCAL enable_incremental_sort = off"))
        compiled = page_stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(r[0] for r in db.session.execute(sa.text(f"EXPLAIN {compiled}")))
        assert "ix_certificate_requests_open_created" in plan and "Sort " not in plan, plan
        db.session.rollback()
