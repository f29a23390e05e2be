"""Every staff list that grows to 100,000 rows pages by seek ("Next" carries the last row's sort key),
shows a capped total and costs the same few SQL statements on a late page as on the first."""

import html as html_lib
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import pagination
from app.enums import ExemptionCertificateStatus, Role
from app.extensions import db
from app.models import ExemptionCertificate, ExemptionRequest, OutboxMessage, SentCertificate

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROWS = 65


@pytest.fixture
def admin(make, auth):
    user = make.user(Role.ADMIN, name="Ada Admin")
    auth.login(user)
    return user


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html_lib.unescape(found.group(1)) if found else None


def walk(client, url: str, rows) -> tuple[list[str], list[str], str]:
    """Follow "Next" from ``url`` to the end: (every row seen, each page's "Page n of m (t)", last page)."""
    seen, labels = [], []
    while url:
        page = client.get(url)
        assert page.status_code == 200, url
        text = page.get_data(as_text=True)
        seen += rows(text)
        labels.append(re.search(r"Page \d+ of \d+\+? \([\d,]+\+?\)", text).group(0))
        url = link(text, "next")
        assert url is None or ("after=" in url and "page=" in url), url
    return seen, labels, text


def walk_back(client, last_page: str, rows) -> list[str]:
    seen, url = [], link(last_page, "prev")
    while url:
        assert "before=" in url
        text = client.get(url).get_data(as_text=True)
        seen = rows(text) + seen
        url = link(text, "prev")
    return seen


def statements_of(client, url: str) -> list[str]:
    db.session.expire_all()
    seen = []

    def count(conn, cursor, statement, parameters, *args):
        if " OFFSET ?" in statement:  # SQLite writes "LIMIT ? OFFSET ?" for every LIMIT: only 0 is no OFFSET
            assert parameters[-1] == 0, (statement, parameters)
            statement = statement.replace(" OFFSET ?", "")
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return seen


def assert_constant_cost(client, first_url: str, table: str):
    """Page 1 and page 3 run the same number of statements, the page is read once, without OFFSET."""
    first = statements_of(client, first_url)
    third_url = link(client.get(link(client.get(first_url).get_data(as_text=True), "next")).get_data(as_text=True),
                     "next")
    third = statements_of(client, third_url)
    assert len(third) == len(first) <= 12, third
    assert not any(" OFFSET " in s.upper() for s in first + third), third
    page_sql = [s for s in third if f"FROM {table}" in s and "LIMIT" in s and "count(" not in s]
    assert len(page_sql) == 1 and (") < (" in page_sql[0] or ") > (" in page_sql[0]), page_sql


# -- exemption requests ("Pending requests") ----------------------------------------------------------

def add_exemption_requests(make, n: int):
    """``n`` pending requests whose sent times come in pairs (the id decides within a pair)."""
    customer = make.customer(name="Seek Buyer Co", with_policies=False)
    first, _ = make.exemption_request(customer, email="buyer-first@seek.example.com")
    template = dict(db.session.execute(sa.select(ExemptionRequest.__table__).where(
        ExemptionRequest.id == first.id)).mappings().one())
    db.session.execute(sa.delete(ExemptionRequest).where(ExemptionRequest.id == first.id))
    rows = []
    for i in range(n):
        sent = START + timedelta(hours=i // 2)
        rows.append({**{k: v for k, v in template.items() if k != "id"}, "email": f"buyer{i:03d}@seek.example.com",
                     "token_hash": secrets.token_hex(32), "link_nonce": secrets.token_hex(16), "sent_at": sent,
                     "created_at": sent, "expires_at": sent + timedelta(days=3650)})
    db.session.execute(sa.insert(ExemptionRequest.__table__), rows)
    db.session.commit()


def emails(page: str) -> list[str]:
    return re.findall(r'class="cell-email">([^<]+)<', page)


def test_pending_exemption_requests_page_by_seek_newest_first(client, admin, make):
    add_exemption_requests(make, ROWS)
    seen, labels, last = walk(client, "/exemptions/", emails)
    newest_first = [f"buyer{i:03d}@seek.example.com" for i in reversed(range(ROWS))]
    assert seen == newest_first
    assert labels == ["Page 1 of 3 (65)", "Page 2 of 3 (65)", "Page 3 of 3 (65)"]
    assert walk_back(client, last, emails) == newest_first[:50]
    assert '<span class="count">65</span>' in client.get("/exemptions/").get_data(as_text=True)
    assert_constant_cost(client, "/exemptions/", "exemption_requests")


def test_a_search_pages_by_seek_too_and_a_forged_cursor_shows_the_first_page(client, admin, make):
    add_exemption_requests(make, 30)
    other = make.customer(name="Unrelated Parts", with_policies=False)
    make.exemption_request(other, email="someone@unrelated.example.com")
    seen, labels, _ = walk(client, "/exemptions/?q=seek+buyer", emails)
    assert seen == [f"buyer{i:03d}@seek.example.com" for i in reversed(range(30))]
    assert labels == ["Page 1 of 2 (30)", "Page 2 of 2 (30)"]
    for cursor in ("garbage", "W10", "WyJub3QgYSBkYXRlIiwxXQ", "W251bGwsMV0", "WzEsMiwzXQ", "%00" * 8):
        page = client.get(f"/exemptions/?after={cursor}&before={cursor}&page=4")
        assert page.status_code == 200
        assert emails(page.get_data(as_text=True))[:2] == ["someone@unrelated.example.com",
                                                           "buyer029@seek.example.com"]


def test_certificate_tabs_page_by_seek_with_jurisdictions_in_one_more_statement(client, admin, make):
    customer = make.customer(name="Cert Seek Co", with_policies=False)
    for i in range(ROWS):
        make.exemption_certificate(customer, status=ExemptionCertificateStatus.PENDING_REVIEW,
                                   states=(("TX", "", None), ("OK", "", None)), now=START + timedelta(hours=i // 2))
    ids = [c for c in db.session.scalars(sa.select(ExemptionCertificate.id).order_by(
        ExemptionCertificate.submitted_at.desc(), ExemptionCertificate.id.desc()))]

    def cert_ids(page: str) -> list[int]:
        return [int(x) for x in re.findall(r'id="exemption-certificate-(\d+)"', page)]

    seen, labels, last = walk(client, "/exemptions/?tab=action", cert_ids)
    assert seen == ids and len(seen) == ROWS
    assert labels == ["Page 1 of 3 (65)", "Page 2 of 3 (65)", "Page 3 of 3 (65)"]
    assert "OK, TX" in last
    assert walk_back(client, last, cert_ids) == ids[:50]
    assert_constant_cost(client, "/exemptions/?tab=action", "exemption_certificates")


# -- customers -----------------------------------------------------------------------------------------

def test_customers_page_by_name_then_id(client, admin, make):
    program = make.program(name="Seek Program")
    for i in range(ROWS):
        make.customer(name=f"Seek Customer {i // 2:03d}", with_policies=False, program=program)
    db.session.commit()
    expected = [f"Seek Customer {i // 2:03d}" for i in range(ROWS)]

    def names(page: str) -> list[str]:
        return re.findall(r'<a href="/customers/\d+">([^<]+)</a>', page)

    seen, labels, last = walk(client, "/customers/", names)
    assert seen == expected
    assert labels == ["Page 1 of 3 (65)", "Page 2 of 3 (65)", "Page 3 of 3 (65)"]
    assert "Seek Program" in last
    assert walk_back(client, last, names) == expected[:50]
    # the ties (two customers per name) come in id order across a page boundary
    ids = [int(x) for x in re.findall(r'<a href="/customers/(\d+)">', client.get(link(
        client.get("/customers/").get_data(as_text=True), "next")).get_data(as_text=True))]
    assert ids == sorted(ids)
    assert_constant_cost(client, "/customers/", "customers")


# -- outbox ------------------------------------------------------------------------------------------------

def test_outbox_pages_newest_first_and_by_channel(client, admin, make):
    db.session.execute(sa.insert(OutboxMessage.__table__), [
        {"channel": "email" if i % 3 else "sms", "to_address": f"to{i}@seek.example.com", "subject": f"Seek {i:03d}",
         "body_text": "Hello", "body_html": "", "attachments": [], "status": "sent", "attempts": 1,
         "last_error": "", "created_at": START, "updated_at": START} for i in range(3 * ROWS)])
    db.session.commit()

    def subjects(page: str) -> list[str]:
        return re.findall(r'<a href="/admin/outbox/\d+">(Seek \d+)</a>', page)

    seen, labels, last = walk(client, "/admin/outbox", subjects)
    assert seen == [f"Seek {i:03d}" for i in reversed(range(3 * ROWS))]
    assert labels == [f"Page {n} of 4 (195)" for n in range(1, 5)]
    assert walk_back(client, last, subjects) == seen[:150]
    sms, _, _ = walk(client, "/admin/outbox?channel=sms", subjects)
    assert sms == [f"Seek {i:03d}" for i in reversed(range(0, 3 * ROWS, 3))]
    assert_constant_cost(client, "/admin/outbox?channel=email", "outbox_messages")


# -- sent certificates -------------------------------------------------------------------------------------

def test_sent_certificates_page_newest_first_for_all_and_for_one_customer(client, admin, make):
    customer = make.customer(name="Sent Seek Co", with_policies=False)
    other = make.customer(name="Other Sent Co", with_policies=False)
    db.session.execute(sa.insert(SentCertificate.__table__), [
        {"customer_id": customer.id if i % 5 else other.id, "holder_name": f"Holder {i:03d}", "holder_email": "",
         "kind": "coi", "document_key": f"k{i}", "filename": f"coi-{i}.pdf", "emailed": False,
         "created_at": START + timedelta(hours=i // 2), "updated_at": START} for i in range(2 * ROWS)])
    db.session.commit()

    def holders(page: str) -> list[str]:
        return re.findall(r"<td>(Holder \d+)", page)

    seen, labels, last = walk(client, "/customers/sent-certificates", holders)
    assert seen == [f"Holder {i:03d}" for i in reversed(range(2 * ROWS))]
    assert labels == ["Page 1 of 3 (130)", "Page 2 of 3 (130)", "Page 3 of 3 (130)"]
    assert "Other Sent Co" in last and "Sent certificates <small class=\"muted\">(130)</small>" in last
    assert walk_back(client, last, holders) == seen[:100]
    mine, _, _ = walk(client, f"/customers/{customer.id}/sent-certificates", holders)
    assert mine == [f"Holder {i:03d}" for i in reversed(range(2 * ROWS)) if i % 5]
    assert_constant_cost(client, "/customers/sent-certificates", "sent_certificates")


def test_totals_are_capped(client, admin, make, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 40)
    add_exemption_requests(make, ROWS)
    page = client.get("/exemptions/").get_data(as_text=True)
    assert "Page 1 of 2+ (40+)" in page and '<span class="count">40+</span>' in page and link(page, "next")
    assert pagination.capped_count(sa.select(ExemptionRequest), cap=100) == (ROWS, False)
    assert pagination.capped_count(sa.select(ExemptionRequest), cap=10) == (10, True)


# -- a customer's additional interests (holders) -------------------------------------------------------------

def test_additional_interests_page_by_name_without_case_then_id(client, admin, make):
    from app.models import CustomerHolder, Holder

    customer = make.customer(name="Many Holders Co", with_policies=False)
    for i in range(ROWS):  # pairs share a name but for its case: the database's lower() and then the id decide
        holder = Holder(name=f"Holder {i // 2:03d} {'inc' if i % 2 else 'INC'}", city="Austin", state="TX",
                        normalized_key=f"seek-holder-{i}")
        db.session.add(holder)
        db.session.flush()
        db.session.add(CustomerHolder(customer_id=customer.id, holder_id=holder.id))
    db.session.commit()
    expected = [f"Holder {i // 2:03d} {'inc' if i % 2 else 'INC'}" for i in range(ROWS)]

    def names(page: str) -> list[str]:
        return re.findall(r'<tr id="interest-\d+">\s*<td>([^<]+)</td>', page)

    url = f"/customers/{customer.id}/interests"
    seen, labels, last = walk(client, url, names)
    assert seen == expected
    assert labels == ["Page 1 of 2 (65)", "Page 2 of 2 (65)"]
    assert "(65 holders)" in last and "(all 65 holders; below, this page's 15)" in last
    assert walk_back(client, last, names) == expected[:50]
    first = statements_of(client, url)
    second = statements_of(client, link(client.get(url).get_data(as_text=True), "next"))
    assert len(first) == len(second) <= 12, second
