"""The staff queue's list, tabs and filters are kept per data version (app/fragments.py) and served from
memory until the database moves the version: what staff see is byte for byte the page rendered in full,
and every change of a request, a customer's name or a user's name shows on the very next load."""

import re

import pytest
import sqlalchemy as sa
from flask import render_template
from flask_login import login_user

from app.dashboard import queries
from app.enums import RequestType, Role
from app.extensions import db
from app.insurance import processing
from app.models import CertificateRequest, Customer, User


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR)
    auth.login(user)
    return user


def without_tokens(html: str) -> str:
    return re.sub(r'(name="csrf_token" value="|"X-CSRFToken": ")[^"]+', r"\1", html)


def holders(html: str) -> list[str]:
    return re.findall(r'data-label="Holder"><a href="[^"]+">([^<]+)</a>', html)


def full_render(app, user, url: str, template: str) -> str:
    """The page as the view rendered it before fragments were kept: every include rendered in place."""
    with app.test_request_context(url):
        login_user(user)
        from flask import request

        filters = queries.QueueFilters.from_args(request.args)
        page = queries.queue_page(filters, page=request.args.get("page", 1, type=int),
                                  after=request.args.get("after"), before=request.args.get("before"))
        return render_template(template, filters=filters, requests=page, counts=queries.pending_counts(),
                               tabs=queries.TABS, statuses=list(processing.RequestStatus), types=list(RequestType))


@pytest.mark.parametrize("url", ["/dashboard/queue", "/dashboard/queue?tab=wos&sort=holder&dir=desc",
                                 "/dashboard/queue?status=any&customer=acme&date_from=bad"])
def test_kept_fragments_are_the_page_rendered_in_full(app, client, htmx, processor, make, url):
    customer = make.customer(name="Acme <Roofing> & Sons", with_policies=False)
    for i in range(4):
        make.queue_request(customer=customer, holder_name=f"Holder {i}", type="coi_wos" if i % 2 else "coi")
    db.session.commit()
    first, second = client.get(url).text, client.get(url).text  # rendered, then kept
    assert "<html" in first and without_tokens(first) == without_tokens(second)
    assert without_tokens(second) == without_tokens(full_render(app, processor, url, "dashboard/queue.html"))
    results = htmx.get(url, target="queue-results").text
    assert results.lstrip().startswith('<div id="queue-results">')
    assert results == full_render(app, processor, url, "dashboard/_queue_results.html")
    part = htmx.get(url).text
    assert part == htmx.get(url).text == full_render(app, processor, url, "dashboard/_queue_part.html")
    counts_url = url.replace("/dashboard/queue", "/dashboard/queue/counts")
    tabs = htmx.get(counts_url).text
    assert tabs.lstrip().startswith('<nav class="tabs"') and tabs == full_render(app, processor, counts_url,
                                                                        "dashboard/_queue_tabs.html")


def test_every_change_shows_on_the_next_load(client, htmx, processor, make):
    customer = make.customer(name="First Name Roofing", with_policies=False)
    req = make.queue_request(customer=customer, holder_name="Holder One")
    other = make.queue_request(customer=customer, holder_name="Holder Two")
    db.session.commit()
    page = client.get("/dashboard/queue").text
    assert holders(page) == ["Holder One", "Holder Two"] and "First Name Roofing" in page

    req.holder_name = "Holder Renamed"  # an ORM change
    db.session.commit()
    assert holders(client.get("/dashboard/queue").text) == ["Holder Renamed", "Holder Two"]

    # a bulk statement (no ORM object touched): the database's trigger moves the version all the same
    db.session.execute(sa.update(CertificateRequest).where(CertificateRequest.id == other.id)
                       .values(status="completed"))
    db.session.commit()
    page = client.get("/dashboard/queue").text
    assert holders(page) == ["Holder Renamed"]
    assert re.search(r'data-tab="all">All <span class="count"[^>]*>1</span>', page)
    assert re.search(r'data-tab="all">All <span class="count"[^>]*>1</span>',
                     htmx.get("/dashboard/queue/counts").text)

    db.session.execute(sa.update(Customer).where(Customer.id == customer.id).values(name="Second Name Paving"))
    db.session.commit()
    page = client.get("/dashboard/queue").text
    assert "Second Name Paving" in page and "First Name Roofing" not in page

    req.assigned_to_id = processor.id
    db.session.commit()
    assert f"<td data-label=\"Working on it\">{processor.name}</td>" in client.get("/dashboard/queue").text
    db.session.execute(sa.update(User).where(User.id == processor.id).values(name="Renamed Processor"))
    db.session.commit()
    assert '<td data-label="Working on it">Renamed Processor</td>' in client.get("/dashboard/queue").text

    make.queue_request(customer=customer, holder_name="Holder Three")
    db.session.commit()
    assert holders(client.get("/dashboard/queue").text) == ["Holder Renamed", "Holder Three"]
    db.session.execute(sa.delete(CertificateRequest).where(CertificateRequest.holder_name == "Holder Three"))
    db.session.commit()
    assert holders(client.get("/dashboard/queue").text) == ["Holder Renamed"]


def test_a_kept_page_costs_one_statement_for_the_rows(client, processor, make):
    """Loaded again with nothing changed, the page reads the data version only: no list, count or tab query."""
    make.queue_request(holder_name="Holder Kept")
    db.session.commit()
    client.get("/dashboard/queue")
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = client.get("/dashboard/queue").text
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert holders(page) == ["Holder Kept"]
    assert not [s for s in statements if "certificate_requests" in s]
    assert [s for s in statements if "data_versions" in s]


def test_the_header_navigation_is_each_roles_own(app, client, auth, make):
    """The header's links are rendered once per role: each role still gets exactly its own links."""
    expected = {Role.PROCESSOR: ("Queue", "Customers"), Role.ADMIN: ("Queue", "Webhooks", "Users")}
    for role, links in expected.items():
        auth.login(make.user(role))
        page = client.get("/dashboard/queue").text
        nav = page.split('<nav class="nav" aria-label="Main">')[1].split("</nav>")[0]
        with app.test_request_context("/"):
            login_user(db.session.scalar(sa.select(User).where(User.role == role)))
            assert nav.strip() == render_template("_nav.html").strip()
        assert all(f">{text}</a>" in nav for text in links)
        assert ("Settings" in nav) is (role is Role.ADMIN)
        client.post("/logout")
