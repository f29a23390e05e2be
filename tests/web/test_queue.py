"""The staff queue pages: listing, filters, counts, the request page, each action, conflicts."""

import io
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.enums import IssueState, PaymentMethod, PaymentStatus, RequestStatus, Role
from app.extensions import db
from app.insurance import processing
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage, Payment
from tests.conftest import AuthActions


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR, name="Pia Processor")
    auth.login(user)
    return user


def rows_of(html: str) -> int:
    return html.count("data-request-id=")


def test_queue_page_and_partial(client, htmx, processor, make):
    make.queue_request(holder_name="Visible Holder Co")
    db.session.commit()
    page = client.get("/dashboard/queue")
    assert page.status_code == 200 and "<html" in page.text and "Visible Holder Co" in page.text
    assert "HX-Request" in page.headers["Vary"]
    part = htmx.get("/dashboard/queue?customer=x", target="queue-results")
    assert part.status_code == 200 and "<html" not in part.text and 'id="queue-results"' in part.text
    counts = htmx.get("/dashboard/queue/counts", target="queue-tabs")
    assert 'id="queue-tabs"' in counts.text and "<html" not in counts.text


def test_nav_and_home_show_queue_to_processors_only(client, auth, make):
    auth.login(make.user(Role.PROCESSOR))
    assert 'href="/dashboard/queue"' in client.get("/dashboard/").text
    auth.logout()
    auth.login(make.user(Role.ADVISOR))
    home = client.get("/dashboard/").text  # advisors follow the queue (read only)
    assert 'href="/dashboard/queue"' in home and "Follow COI" in home and "Process COI" not in home
    auth.logout()
    auth.login(make.user(Role.CUSTOMER, customer=make.customer()))
    assert 'href="/dashboard/queue"' not in client.get("/portal/").text


def test_default_lists_only_pending_and_tabs_count(client, processor, make):
    c = make.customer(name="Zephyr Tools")
    for status in ("new", "in_progress", "completed", "rejected", "cancelled"):
        make.queue_request(customer=c, status=status, holder_name=f"Holder {status}")
    make.queue_request(customer=c, type="coi_wos", holder_name="Holder wos")
    make.queue_request(customer=c, type="poi", holder_name="Holder poi")
    db.session.commit()
    html = client.get("/dashboard/queue").text
    assert rows_of(html) == 4
    assert "Holder completed" not in html and "Holder new" in html and "Holder in_progress" in html
    tabs = html[html.index('id="queue-tabs"'):html.index("</nav>", html.index('id="queue-tabs"'))]
    assert 'data-tab="all"' in tabs
    counts = {t: tabs.split(f'data-tab="{t}">')[1].split('class="count"')[1].split(">")[1].split("<")[0]
              for t in ("all", "wos", "coi")}
    assert counts == {"all": "4", "wos": "1", "coi": "3"}
    wos = client.get("/dashboard/queue?tab=wos").text
    assert rows_of(wos) == 1 and "Holder wos" in wos
    assert rows_of(client.get("/dashboard/queue?tab=coi").text) == 3
    assert rows_of(client.get("/dashboard/queue?status=any").text) == 7
    done = client.get("/dashboard/queue?status=completed&status=rejected").text
    assert rows_of(done) == 2 and "Holder rejected" in done
    poi = client.get("/dashboard/queue?tab=coi&type=poi").text
    assert rows_of(poi) == 1 and "Holder poi" in poi


def test_filters_by_customer_and_date_and_sorting(client, htmx, processor, make):
    acme, bolt = make.customer(name="Acme Roofing"), make.customer(name="Bolt Electric")
    make.queue_request(customer=acme, holder_name="Early Holder", created_at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    make.queue_request(customer=bolt, holder_name="Late Holder", created_at=datetime(2026, 5, 1, 12, tzinfo=UTC))
    db.session.commit()
    typed = htmx.get("/dashboard/queue?customer=acme", target="queue-results").text  # search as you type
    assert "Early Holder" in typed and "Late Holder" not in typed
    by_id = client.get(f"/dashboard/queue?customer={bolt.id}").text
    assert "Late Holder" in by_id and "Early Holder" not in by_id
    april = client.get("/dashboard/queue?date_from=2026-04-01&date_to=2026-05-01").text
    assert "Late Holder" in april and "Early Holder" not in april
    bad = client.get("/dashboard/queue?date_from=yesterday")
    assert bad.status_code == 200 and "use YYYY-MM-DD" in bad.text and rows_of(bad.text) == 2
    asc = client.get("/dashboard/queue?sort=customer&dir=asc").text
    desc = client.get("/dashboard/queue?sort=customer&dir=desc").text
    assert asc.index("Early Holder") < asc.index("Late Holder")
    assert desc.index("Late Holder") < desc.index("Early Holder")


def test_counts_and_filters_without_n_plus_one(client, processor, make):
    """A page of the queue costs a constant number of SQL statements, whatever the row count."""
    customers = [make.customer(with_policies=False) for _ in range(12)]
    staff = [make.user(Role.PROCESSOR) for _ in range(5)]

    def add(n):
        for i in range(n):
            req = make.queue_request(customer=customers[i % len(customers)], type=("coi", "coi_wos", "poi")[i % 3],
                                     status=("new", "in_progress")[i % 2])
            if req.status is RequestStatus.IN_PROGRESS:
                req.assigned_to_id = staff[i % len(staff)].id
        db.session.commit()

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def measure(url):
        db.session.expire_all()
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = client.get(url)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(statements), response.text

    add(30)
    urls = ["/dashboard/queue", "/dashboard/queue?tab=coi&sort=customer&dir=desc",
            "/dashboard/queue?customer=customer&status=any&date_from=2020-01-01", "/dashboard/queue?page=2"]
    small = [measure(u)[0] for u in urls]
    add(300)
    large = [measure(u) for u in urls]
    assert [n for n, _ in large] == small
    assert max(small) <= 6, small
    assert rows_of(large[0][1]) == 25 and "Page 1 of 14 (330)" in large[0][1]


def test_card_wos_requests_appear_only_after_approved_payment(client, processor, make):
    """A card WOS request is created only once its payment is approved: a declined charge never reaches the queue."""
    from app.enums import RequestSource
    from app.insurance.intake import submit_certificate_request
    from app.insurance.intake_errors import PaymentDeclined
    from app.models.base import utcnow
    from app.payments import APPROVE_CARD, DECLINE_CARD

    fields = {"holder_name": "Paid Holder", "holder_email": "h@paid.example.com", "holder_phone": "5125550100",
              "holder_address": "1 Elm St", "holder_city": "Austin", "holder_state": "TX", "holder_zip": "78701",
              "project_name": "Depot", "project_location": "Austin", "project_duration": "3 months",
              "contract_details": "C-1"}
    declined = make.customer(name="Declined Card Co", payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    with pytest.raises(PaymentDeclined):
        submit_certificate_request(declined, type="coi_wos", source=RequestSource.PORTAL,
                                   fields={**fields, "holder_name": "Unpaid Holder"}, actor=None, now=utcnow())
    db.session.commit()
    assert db.session.scalar(sa.select(Payment.status).filter_by(customer_id=declined.id)) is PaymentStatus.DECLINED
    html = client.get("/dashboard/queue?tab=wos&status=any").text
    assert "Declined Card Co" not in html and "Unpaid Holder" not in html and rows_of(html) == 0

    paying = make.customer(name="Card Payer Co", payment_method=PaymentMethod.CARD, card=APPROVE_CARD)
    req = submit_certificate_request(paying, type="coi_wos", source=RequestSource.PORTAL, fields=fields, actor=None,
                                     now=utcnow())
    db.session.commit()
    html = client.get("/dashboard/queue?tab=wos").text
    assert rows_of(html) == 1 and "Paid Holder" in html
    assert [p.status for p in req.payments] == [PaymentStatus.APPROVED]
    detail = client.get(f"/dashboard/queue/{req.id}").text
    assert "approved card payment of" in detail and "card ending 4242" in detail


def test_request_page_shows_submission_and_notes_first(client, htmx, processor, make):
    req = make.queue_request(type="coi_wos", instructions="Name the landlord too", project_name="Tower Renovation",
                             project_location="12 Elm St, Austin TX", contract_details="Contract 77-B")
    processing.transition(req, RequestStatus.IN_PROGRESS, actor=processor, now=datetime(2026, 1, 1, tzinfo=UTC))
    db.session.commit()
    page = client.get(f"/dashboard/queue/{req.id}")
    text = page.text
    for value in ("Northwind Builders Inc", "500 Congress Ave", "certs@northwind.example.com", "Tower Renovation",
                  "12 Elm St, Austin TX", "Contract 77-B", "Name the landlord too"):
        assert value in text
    empty = htmx.post(f"/dashboard/queue/{req.id}/notes", target="request-timeline", data={"text": "  "})
    assert empty.status_code == 422 and "cannot be empty" in empty.text
    added = htmx.post(f"/dashboard/queue/{req.id}/notes", target="request-timeline",
                      data={"text": "Called the customer about the landlord"})
    assert added.status_code == 200 and "note-added" in added.headers["HX-Trigger"]
    timeline = added.text
    assert timeline.index("Called the customer about the landlord") < timeline.index("status in progress")
    assert "<html" not in timeline


def test_mark_in_progress_htmx_and_plain(client, htmx, processor, make):
    req = make.queue_request()
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/start", target=f"request-{req.id}-panel",
                         data={"version": str(req.version)})
    assert response.status_code == 200
    trigger = json.loads(response.headers["HX-Trigger"])
    assert trigger["request-updated"] and trigger["toast"]["message"] == "Marked in progress."
    assert "Pia Processor is working on it" in response.text and 'data-status="in_progress"' in response.text
    other = make.queue_request()
    db.session.commit()
    plain = client.post(f"/dashboard/queue/{other.id}/start", data={"version": "1"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/dashboard/queue/{other.id}")


def test_relabel_via_page(htmx, processor, make):
    req = make.queue_request(type="coi")
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/relabel", data={"version": "1", "type": "coi_wos"})
    assert response.status_code == 200 and "Certificate of insurance with WOS" in response.text
    assert "Relabel as COI" in response.text
    bad = htmx.post(f"/dashboard/queue/{req.id}/relabel", data={"version": "2", "type": "poi"})
    assert bad.status_code == 422 and "Only a certificate of insurance can be relabelled" in bad.text


def test_reject_via_page_with_reason(htmx, client, processor, make):
    customer = make.customer(contact_email="office@zephyr.example.com")
    req = make.queue_request(customer=customer)
    db.session.commit()
    page = client.get(f"/dashboard/queue/{req.id}").text
    assert "Holder name incomplete" in page
    missing = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": "1", "note": "typed note"})
    assert missing.status_code == 422 and "Pick a rejection reason" in missing.text and "typed note" in missing.text
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    reason = next(r for r in processing.rejection_reasons() if r.text == "Holder name incomplete")
    ok = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": "1", "reason_id": str(reason.id)})
    assert ok.status_code == 200 and 'data-status="rejected"' in ok.text
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.to_address for m in mails] == ["office@zephyr.example.com"]
    assert "Holder name incomplete" in mails[0].body_text


def test_cancel_via_page(htmx, processor, make):
    req = make.queue_request()
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/cancel", data={"version": "1"})
    assert response.status_code == 200 and 'data-status="cancelled"' in response.text
    assert "Cancel request" not in response.text  # no more actions on a closed request


@pytest.mark.parametrize(("payload", "name", "message"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "renamed.pdf", "not a PDF document"),
    (b"garbage garbage garbage", "cert.pdf", "not a PDF document"),
    (b"%PDF-1.7\nnot really", "cert.pdf", "damaged"),
])
def test_upload_refuses_non_pdfs(htmx, processor, make, payload, name, message, app):
    req = make.queue_request()
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/upload", data={
        "version": "1", "send_to_holder": "1", "certificate": (io.BytesIO(payload), name)},
        content_type="multipart/form-data")
    assert response.status_code == 422 and message in response.text
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.NEW
    from pathlib import Path

    assert not any(p.is_file() for p in Path(app.config["UPLOAD_DIR"]).rglob("*"))


def test_upload_without_file(htmx, processor, make):
    req = make.queue_request()
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/upload", data={"version": "1"})
    assert response.status_code == 422 and "Choose the certificate PDF" in response.text


def test_two_staff_at_once_second_gets_conflict(app, client, htmx, processor, make):
    req = make.queue_request()
    db.session.commit()
    # both open the page and see version 1
    assert 'name="version" value="1"' in client.get(f"/dashboard/queue/{req.id}").text
    reviewer = make.user(Role.REVIEWER, name="Rae Reviewer")
    reason = processing.rejection_reasons()[0]
    db.session.commit()
    second = app.test_client()
    with app.app_context():  # another browser: its own app context (Flask-Login keeps the user in g)
        AuthActions(second).login(reviewer.email)
        assert 'name="version" value="1"' in second.get(f"/dashboard/queue/{req.id}").text
    first = htmx.post(f"/dashboard/queue/{req.id}/start", data={"version": "1"})
    assert first.status_code == 200
    with app.app_context():
        late = second.post(f"/dashboard/queue/{req.id}/reject", headers={"HX-Request": "true"},
                           data={"version": "1", "reason_id": str(reason.id)})
    assert late.status_code == 409
    assert "Someone else changed this request first" in late.text and "in progress by Pia Processor" in late.text
    assert 'data-status="in_progress"' in late.text
    assert json.loads(late.headers["HX-Trigger"])["toast"]["level"] == "error"
    db.session.expire_all()
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.IN_PROGRESS
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Activity.id)).filter_by(action="rejected")) == 0
    # the same button pressed twice by the same person does nothing the second time
    again = htmx.post(f"/dashboard/queue/{req.id}/start", data={"version": "1"})
    assert again.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count(Activity.id)).filter_by(action="marked_in_progress")) == 1


def test_advisor_reads_but_cannot_act(client, auth, make):
    auth.login(make.user(Role.ADVISOR))
    req = make.queue_request()
    db.session.commit()
    page = client.get(f"/dashboard/queue/{req.id}")
    assert page.status_code == 200 and "Mark in progress" not in page.text
    assert client.post(f"/dashboard/queue/{req.id}/start", data={"version": "1"}).status_code == 403


def test_unknown_request_is_404(client, processor):
    assert client.get("/dashboard/queue/999999").status_code == 404
    assert client.post("/dashboard/queue/999999/start", data={}).status_code == 404
    huge = "9" * 25  # bigger than any id column: not found, never a database error
    for url in (f"/dashboard/queue/{huge}", f"/dashboard/queue/{huge}/issue",
                f"/dashboard/queue/1/certificates/{huge}"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/dashboard/queue/{huge}/reject", data={"version": "1"}).status_code == 404


ACTIONS = ["start", "automate", "submit", "upload", "relabel", "reject", "cancel", "retry-issue"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("data", [{}, {"version": ""}, {"version": "abc"}, {"version": "-1"}])
def test_actions_without_the_version_are_refused(htmx, processor, make, action, data):
    """Every action form carries the version the user saw; without it nothing is done (422, a message)."""
    req = make.queue_request()
    db.session.commit()
    response = htmx.post(f"/dashboard/queue/{req.id}/{action}", data=data)
    assert response.status_code == 422
    assert "did not say which version of the request you saw: reload the page" in response.text
    fresh = db.session.get(CertificateRequest, req.id)
    assert fresh.status is RequestStatus.NEW and fresh.version == 1 and fresh.issue_requested_at is None
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0


def test_garbage_input_answers_4xx_and_stores_nothing(htmx, processor, make):
    req = make.queue_request()
    db.session.commit()
    bad_reason = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": "1", "reason_id": "9" * 25})
    assert bad_reason.status_code == 422 and "Pick a rejection reason" in bad_reason.text
    assert htmx.post(f"/dashboard/queue/{req.id}/relabel", data={"version": "1", "type": "\x00" * 3}).status_code == 422
    big_limit = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": "1", "cov.general_liability.limit.each_occurrence": "1e9"})
    assert big_limit.status_code == 422 and "must be a whole dollar amount" in big_limit.text
    assert db.session.get(CertificateRequest, req.id).status is RequestStatus.NEW
    # NUL characters (PostgreSQL refuses them in text) are dropped from what staff type
    note = htmx.post(f"/dashboard/queue/{req.id}/notes", data={"text": "call\x00 back"})
    assert note.status_code == 200
    assert db.session.scalar(sa.select(Activity.message).filter_by(action="note")) == "call back"
    cancel = htmx.post(f"/dashboard/queue/{req.id}/cancel", data={"version": "1", "note": "dup\x00licate"})
    assert cancel.status_code == 200
    assert db.session.scalar(sa.select(Activity.message).filter_by(action="cancelled")) == "duplicate"


def test_queue_survives_garbage_filters(client, processor, make):
    make.queue_request(holder_name="Still Listed LLC")
    db.session.commit()
    page = client.get("/dashboard/queue", query_string={
        "customer": "\x00", "page": "9" * 25, "date_from": "0001-01-01", "date_to": "9999-12-31",
        "status": "zz", "type": "zz", "sort": "zz", "tab": "zz", "dir": "zz"})
    assert page.status_code == 200
    assert "Ignored the date &#39;0001-01-01&#39;" in page.text and "Ignored the date &#39;9999-12-31&#39;" in page.text
    listed = client.get("/dashboard/queue", query_string={"customer": "9" * 25, "page": "9" * 25})
    assert listed.status_code == 200 and "No requests match" in listed.text


def test_queue_flags_instructions_and_issuing(client, processor, make):
    make.queue_request(holder_name="Flagged Holder", instructions="Add the lender as loss payee")
    issuing = make.queue_request(holder_name="Issuing Holder", status="in_progress")
    issuing.issuing, issuing.issue_requested_at = IssueState.PENDING, datetime(2026, 6, 1, tzinfo=UTC)
    db.session.commit()
    page = client.get("/dashboard/queue").text
    assert page.count('class="flag"') == 1 and 'title="Add the lender as loss payee"' in page
    assert "generating…" in page


# -- admin: rejection reasons -----------------------------------------------------------------------

def test_admin_manages_reasons(client, htmx, auth, make):
    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/reasons")
    assert page.status_code == 200 and "Needs a WOS endorsement" in page.text
    empty = htmx.post("/admin/reasons", data={"text": ""})
    assert empty.status_code == 422 and "Type the reason" in empty.text
    added = htmx.post("/admin/reasons", data={"text": "Certificate already on file"})
    assert added.status_code == 200 and "Certificate already on file" in added.text
    assert "reasons-changed" in added.headers["HX-Trigger"]
    reason = next(r for r in processing.rejection_reasons() if r.text == "Certificate already on file")
    moved = htmx.post(f"/admin/reasons/{reason.id}/move", data={"direction": "up"})
    assert moved.text.index("Certificate already on file") < moved.text.index("Holder name incomplete")
    bad = htmx.post(f"/admin/reasons/{reason.id}/move", data={"direction": "sideways"})
    assert bad.status_code == 422
    for garbage in ({}, {"active": "yes"}):
        refused = htmx.post(f"/admin/reasons/{reason.id}/active", data=garbage)
        assert refused.status_code == 422 and "Choose to deactivate or reactivate" in refused.text
    nul = htmx.post("/admin/reasons", data={"text": "\x00"})
    assert nul.status_code == 422 and "Type the reason" in nul.text
    assert client.post(f"/admin/reasons/{'9' * 25}/move", data={"direction": "up"}).status_code == 404
    off = htmx.post(f"/admin/reasons/{reason.id}/active", data={"active": "0"})
    assert off.status_code == 200 and "deactivated" in off.text
    req = make.queue_request()
    auth.logout()
    auth.login(make.user(Role.PROCESSOR))
    db.session.commit()
    assert "Certificate already on file" not in client.get(f"/dashboard/queue/{req.id}").text


# -- admin: agency (producer) details ---------------------------------------------------------------

def test_admin_edits_agency_details(client, htmx, auth, make):
    from app.insurance.agency import get_agency

    auth.login(make.user(Role.ADMIN))
    page = client.get("/admin/agency")
    assert page.status_code == 200 and 'name="authorized_representative"' in page.text
    bad = htmx.post("/admin/agency", data={"name": "", "email": "not-an-email", "state": "ZZ", "zip_code": "1",
                                           "contact_name": "Kept Value"})
    assert bad.status_code == 422
    assert "Agency name is required." in bad.text and 'value="Kept Value"' in bad.text
    assert "two-letter US state" in bad.text
    assert get_agency()["contact_name"] != "Kept Value"
    ok = htmx.post("/admin/agency", data={"name": "Lone Star Risk Partners", "contact_name": "Dana Desk",
                                          "phone": "512 555 0100", "email": "Certs@LoneStar.example.com",
                                          "address": "200 Main St", "city": "Austin", "state": "tx",
                                          "zip_code": "78701", "authorized_representative": "Dana Desk"})
    assert ok.status_code == 200 and "agency-saved" in ok.headers["HX-Trigger"]
    agency = get_agency()
    assert agency["name"] == "Lone Star Risk Partners" and agency["state"] == "TX"
    assert agency["phone"] == "(512) 555-0100"
    plain = client.post("/admin/agency", data={**agency, "name": "Renamed Agency"})
    assert plain.status_code == 303 and get_agency()["name"] == "Renamed Agency"


def test_agency_and_reasons_are_admin_only(client, auth, make):
    auth.login(make.user(Role.PROCESSOR))
    assert client.get("/admin/agency").status_code == 403
    assert client.post("/admin/reasons", data={"text": "x"}).status_code == 403
