"""Staff pages: tabs with live counts, search, pagination, request / resend / cancel, review
(preview images, download, approve, conflict), send to many, the customer's Exemptions tab."""

import io
import json
import re
from datetime import date

import pytest
import sqlalchemy as sa

from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionRequestStatus as RS
from app.enums import Role
from app.extensions import db
from app.models import ExemptionCertificate, ExemptionRequest, ExemptionSendRun, OutboxMessage
from tests.paths import EXEMPTION_FORMS


@pytest.fixture
def reviewer(make, auth):
    user = make.user(Role.REVIEWER, name="Rita Reviewer")
    auth.login(user)
    return user


def triggers(response) -> dict:
    return json.loads(response.headers.get("HX-Trigger", "{}"))


def test_index_full_page_and_partial_with_counts(app, client, htmx, make, reviewer):
    acme = make.customer(name="Acme Tools")
    make.exemption_request(acme)
    make.exemption_request(make.customer(name="Zeta Parts"))
    make.exemption_certificate(acme, status=CS.PENDING_REVIEW)
    make.exemption_certificate(acme, status=CS.ACTIVE)
    make.exemption_certificate(acme, status=CS.REJECTED)

    page = client.get("/exemptions/")
    text = page.get_data(as_text=True)
    assert "<html" in text and "HX-Request" in page.headers["Vary"]
    assert 'data-tab="pending">Pending requests <span class="count">2</span>' in text
    assert 'data-tab="action">Action required <span class="count">1</span>' in text
    assert 'data-tab="active">Active <span class="count">1</span>' in text
    assert 'data-tab="closed">Rejected &amp; expired <span class="count">1</span>' in text
    assert "Acme Tools" in text and "Zeta Parts" in text

    partial = htmx.get("/exemptions/?tab=pending&q=zeta", target="exemption-list")
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="exemption-list"' in body
    assert "Zeta Parts" in body and "Acme Tools" not in body
    by_id = client.get(f"/exemptions/?q={acme.id}").get_data(as_text=True)
    assert "Acme Tools" in by_id and "Zeta Parts" not in by_id

    counts = htmx.get("/exemptions/counts?tab=action").get_data(as_text=True)
    assert 'hx-trigger="exemptions-changed from:body"' in counts
    assert 'class="active" aria-current="page" data-tab="action"' in counts


def test_pagination(app, client, make, reviewer):
    customer = make.customer(name="Many Requests Co")
    for _ in range(27):
        make.exemption_request(customer)
    first = client.get("/exemptions/").get_data(as_text=True)
    assert "Page 1 of 2 (27)" in first and first.count('id="exemption-row-') == 25
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "after=" in next_link
    second = client.get(next_link).get_data(as_text=True)
    assert second.count('id="exemption-row-') == 2 and "Page 2 of 2 (27)" in second
    # an old bookmark's bare page number shows the first page
    assert client.get("/exemptions/?page=2").get_data(as_text=True).count('id="exemption-row-') == 25


def test_customer_search_as_you_type(app, htmx, make, reviewer):
    make.customer(name="Findable Widgets")
    other = make.customer(name="Something Else")
    by_name = htmx.get("/exemptions/customers/search?q=findable").get_data(as_text=True)
    assert "Findable Widgets" in by_name and "Something Else" not in by_name
    by_id = htmx.get(f"/exemptions/customers/search?q={other.id}").get_data(as_text=True)
    assert "Something Else" in by_id and 'name="customer_id"' in by_id


def test_new_request_without_js_search_then_send(app, client, make, reviewer):
    customer = make.customer(name="Plain Form Inc", contact_email="pf@customer.example.com")
    found = client.get("/exemptions/requests/new?q=plain form").get_data(as_text=True)
    assert f'value="{customer.id}"' in found
    response = client.post("/exemptions/requests/new", data={"customer_id": customer.id,
                                                             "email": "pf@customer.example.com"})
    assert response.status_code == 303
    req = db.session.scalar(sa.select(ExemptionRequest))
    assert response.headers["Location"].endswith(f"/exemptions/requests/{req.id}")
    assert client.get(response.headers["Location"]).status_code == 200


def test_picking_a_customer_fills_the_email_with_its_contact_unless_the_user_typed_one(app, htmx, make, reviewer):
    acme = make.customer(name="Acme Pick", contact_email="ap@acme.example.com")
    zeta = make.customer(name="Zeta Pick", contact_email="ap@zeta.example.com")
    bare = make.customer(name="No Mail Pick", contact_email="")

    def pick(customer, email="", autofilled=""):
        response = htmx.get("/exemptions/requests/email-field",
                            query_string={"customer_id": customer.id, "email": email, "email_autofilled": autofilled})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    # The search results wire each choice to this swap; a single match is picked (and filled) on load.
    results = htmx.get("/exemptions/customers/search?q=acme pick").get_data(as_text=True)
    assert 'hx-get="/exemptions/requests/email-field"' in results and "change, load" in results
    two = htmx.get("/exemptions/customers/search?q=pick").get_data(as_text=True)
    assert "change, load" not in two

    first = pick(acme)
    assert 'name="email" type="email" value="ap@acme.example.com"' in first
    assert 'name="email_autofilled" value="ap@acme.example.com"' in first
    assert "change it to send the link elsewhere" in first
    # Another customer replaces an address that was filled in, not one the user typed.
    assert 'value="ap@zeta.example.com"' in pick(zeta, "ap@acme.example.com", "ap@acme.example.com")
    typed = pick(zeta, "finance@elsewhere.example.com", "ap@acme.example.com")
    assert 'value="finance@elsewhere.example.com"' in typed and "ap@zeta.example.com" not in typed
    assert 'name="email_autofilled" value=""' in typed
    no_mail = pick(bare)
    assert "has no contact e-mail on file" in no_mail and 'name="email_autofilled" value=""' in no_mail
    # Garbage never breaks it.
    for query in ({"customer_id": "x"}, {"customer_id": "99999999999999999999999"}, {}):
        response = htmx.get("/exemptions/requests/email-field", query_string=query)
        assert response.status_code == 200 and 'name="email"' in response.get_data(as_text=True)


def test_new_request_page_for_a_customer_prefills_the_contact_email(app, client, make, reviewer):
    customer = make.customer(name="Prefill Co", contact_email="ap@prefill.example.com")
    page = client.get(f"/exemptions/requests/new?customer_id={customer.id}").get_data(as_text=True)
    assert 'value="ap@prefill.example.com"' in page and "change it to send the link elsewhere" in page


@pytest.mark.parametrize("data, message", [
    ({}, "Choose a customer."),
    ({"customer_id": "999999", "email": "x@example.com"}, "Choose a customer from the list."),
    ({"customer_id": "abc", "email": "x@example.com"}, "Choose a customer."),
])
def test_new_request_errors_store_nothing(app, htmx, make, reviewer, data, message):
    response = htmx.post("/exemptions/requests/new", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_new_request_bad_email(app, htmx, make, reviewer):
    customer = make.customer()
    response = htmx.post("/exemptions/requests/new", data={"customer_id": customer.id, "email": "not-an-email"})
    assert response.status_code == 422
    assert "Not a valid e-mail address" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 0


def test_resend_from_a_list_row_returns_the_row_and_refreshes_counts(app, htmx, make, reviewer):
    req, _ = make.exemption_request()
    old_hash = req.token_hash
    response = htmx.post(f"/exemptions/requests/{req.id}/resend", target=f"exemption-row-{req.id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.strip().startswith(f'<tr id="exemption-row-{req.id}"')
    assert {"exemptions-changed", "request-resent", "toast"} <= set(triggers(response))
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).token_hash != old_hash


def test_cancel_has_a_confirmation_step(app, client, htmx, make, reviewer):
    req, token = make.exemption_request()
    confirm = client.get(f"/exemptions/requests/{req.id}/cancel")
    assert "Yes, cancel the request" in confirm.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).status is RS.SENT  # the GET changed nothing
    response = htmx.post(f"/exemptions/requests/{req.id}/cancel")
    assert response.status_code == 200
    assert "exemptions-changed" in triggers(response)
    assert "cancelled" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ExemptionRequest, req.id).status is RS.CANCELLED
    assert client.get(f"/portal/r/{token}").status_code == 404
    again = htmx.post(f"/exemptions/requests/{req.id}/cancel")
    assert again.status_code == 409
    assert "A cancelled request cannot be cancelled." in again.get_data(as_text=True)
    resend = htmx.post(f"/exemptions/requests/{req.id}/resend")
    assert resend.status_code == 409


def test_review_page_renders_pages_as_images_and_downloads_as_attachment(app, client, make, reviewer):
    pdf = (EXEMPTION_FORMS / "mtc_uniform_sales_use_resale_cert.pdf").read_bytes()
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW, document=pdf)
    cert.document_pages = 7
    db.session.commit()
    page = client.get(f"/exemptions/certificates/{cert.id}?page=2&zoom=1.5").get_data(as_text=True)
    assert "Page 2 of 7" in page
    assert f"/exemptions/certificates/{cert.id}/pages/2.png?zoom=1.5" in page
    assert "<embed" not in page and "<iframe" not in page and "<object" not in page
    image = client.get(f"/exemptions/certificates/{cert.id}/pages/2.png?zoom=1.5")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data.startswith(b"\x89PNG")
    from PIL import Image

    small = Image.open(io.BytesIO(client.get(f"/exemptions/certificates/{cert.id}/pages/2.png?zoom=0.75").data))
    large = Image.open(io.BytesIO(image.data))
    assert large.width > small.width
    assert client.get(f"/exemptions/certificates/{cert.id}/pages/8.png").status_code == 404

    download = client.get(f"/exemptions/certificates/{cert.id}/document")
    assert download.data == pdf
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_two_reviewers_at_once_the_second_gets_a_conflict(app, client, htmx, make, reviewer):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    version = cert.version
    first = htmx.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": version})
    assert first.status_code == 200 and "certificate-approved" in triggers(first)
    second = htmx.post(f"/exemptions/certificates/{cert.id}/reject",
                       data={"version": version, "notes": "Looks wrong", "send_new_link": "y"})
    assert second.status_code == 409
    text = second.get_data(as_text=True)
    assert "Rita Reviewer" in text and "now active" in text
    db.session.expire_all()
    cert = db.session.get(ExemptionCertificate, cert.id)
    assert cert.status is CS.ACTIVE
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id))) == 0  # no new link went out


def test_conditional_update_refuses_a_stale_version_even_if_status_matches(app, make, reviewer):
    from app.exemptions.services import ReviewConflict, approve_certificate
    from app.models.base import utcnow

    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    stale = cert.version
    db.session.execute(sa.update(ExemptionCertificate).where(ExemptionCertificate.id == cert.id)
                       .values(version=stale + 1))  # another process touched it
    db.session.commit()
    with pytest.raises(ReviewConflict):
        approve_certificate(cert, reviewer=reviewer, now=utcnow(), expected_version=stale)


def test_edit_with_bad_data_is_422_and_keeps_values(app, client, make, reviewer):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    data = make.exemption_form(effective_date="2026-02-30", tax_id_number="TYPED-1",
                               **{"jurisdictions-1-state": "QQ"})
    response = client.post(f"/exemptions/certificates/{cert.id}/edit", data={**data, "version": cert.version})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Use a date in the form YYYY-MM-DD." in text and "QQ is not a US state code." in text
    assert 'value="TYPED-1"' in text
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.PENDING_REVIEW


def test_send_to_many_runs_as_a_job_with_progress(app, client, htmx, make, reviewer, run_jobs):
    covered = make.customer(name="Covered Co")
    make.exemption_certificate(covered, states=(("TX", "", None),))
    missing = [make.customer(name=f"Missing {i}") for i in range(3)]
    no_mail = make.customer(name="No Mail Co", contact_email="")
    form = client.get("/exemptions/send-many?state=TX").get_data(as_text=True)
    for c in [*missing, no_mail]:
        assert f'name="customer_ids" value="{c.id}" checked' in form
    assert f'name="customer_ids" value="{covered.id}" checked' not in form

    response = client.post("/exemptions/send-many",
                           data={"customer_ids": [str(c.id) for c in [*missing, no_mail]] + ["junk"]})
    assert response.status_code == 303
    run = db.session.scalar(sa.select(ExemptionSendRun))
    widget = htmx.get(f"/exemptions/send-many/{run.id}")
    assert widget.status_code == 200 and 'hx-trigger="load delay:1s"' in widget.get_data(as_text=True)
    run_jobs()
    done = htmx.get(f"/exemptions/send-many/{run.id}")
    assert done.status_code == 286
    text = done.get_data(as_text=True)
    assert "hx-trigger" not in text and "4 of 4 done (3 sent, 1 skipped)" in text and "no contact e-mail" in text
    reqs = db.session.scalars(sa.select(ExemptionRequest)).all()
    assert sorted(r.customer_id for r in reqs) == sorted(c.id for c in missing)
    assert all(r.source == "bulk" for r in reqs)


def test_send_to_many_with_nothing_selected(app, client, make, reviewer):
    response = client.post("/exemptions/send-many", data={})
    assert response.status_code == 422
    assert "Select at least one customer." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ExemptionSendRun.id))) == 0


def test_customer_exemptions_tab(app, client, make, reviewer):
    customer = make.customer(name="Tabbed Customer")
    make.exemption_request(customer, email="tab@customer.example.com")
    make.exemption_certificate(customer, states=(("TX", "", date(2026, 1, 15)), ("OK", "", None)))
    page = client.get(f"/exemptions/customers/{customer.id}").get_data(as_text=True)
    assert 'aria-current="page">Exemptions</a>' in page
    assert "tab@customer.example.com" in page and "OK, TX" in page
    assert "Request sent to tab@customer.example.com" in page  # the timeline
    overview = client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert f"/exemptions/customers/{customer.id}" in overview


def test_processor_cannot_review_or_send(app, client, auth, make):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    auth.login(make.user(Role.PROCESSOR))
    assert client.post(f"/exemptions/certificates/{cert.id}/approve").status_code == 403
    assert client.post("/exemptions/requests/new", data={}).status_code == 403
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.PENDING_REVIEW


def test_empty_email_falls_back_to_the_customers_contact(app, client, make, reviewer):
    customer = make.customer(contact_email="contact@fallback.example.com")
    response = client.post("/exemptions/requests/new", data={"customer_id": customer.id, "email": ""})
    assert response.status_code == 303
    assert db.session.scalar(sa.select(ExemptionRequest.email)) == "contact@fallback.example.com"


def test_resend_revives_an_expired_request(app, client, make, reviewer):
    from datetime import timedelta

    from app.exemptions.services import expire_request
    from app.models.base import utcnow

    req, _ = make.exemption_request(now=utcnow() - timedelta(days=31))
    expire_request(req, now=utcnow())
    db.session.commit()
    assert client.post(f"/exemptions/requests/{req.id}/resend", data={}).status_code == 303
    db.session.expire_all()
    req = db.session.get(ExemptionRequest, req.id)
    assert req.status is RS.SENT and req.expired_at is None and req.expires_at > utcnow() + timedelta(days=29)


def test_pending_rows_have_an_options_menu_with_resend_change_email_and_cancel(app, client, make, reviewer):
    req, _ = make.exemption_request(make.customer(name="Menu Co"), email="ap@menu.example.com")
    text = client.get("/exemptions/").get_data(as_text=True)
    row = text[text.index(f'id="exemption-row-{req.id}"'):]
    row = row[:row.index("</tr>")]
    assert '<details class="row-menu">' in row and "Options" in row
    assert "Resend a new link to ap@menu.example.com" in row
    assert f'href="/exemptions/requests/{req.id}#resend">Resend to another e-mail' in row
    assert f'href="/exemptions/requests/{req.id}/cancel"' in row and 'hx-confirm="Cancel this request?' in row
    assert 'id="resend"' in client.get(f"/exemptions/requests/{req.id}").get_data(as_text=True)


def test_send_to_all_missing_is_computed_on_the_server_not_from_the_listed_rows(app, client, make, reviewer,
                                                                               monkeypatch):
    from app.exemptions import queries

    covered = make.customer(name="Aaa Covered")
    make.exemption_certificate(covered, states=(("TX", "", None),))
    missing = [make.customer(name=f"Zzz Missing {i}") for i in range(3)]
    monkeypatch.setattr(queries, "CUSTOMER_LIST_LIMIT", 2)  # the page lists only the first two by name
    monkeypatch.setattr(queries.all_customers, "__defaults__", (2,))
    page = client.get("/exemptions/send-many?state=TX").get_data(as_text=True)
    assert "<strong>3</strong> customers without an active certificate for TX" in page
    assert "Send to all 3" in page and missing[2].name not in page
    assert "The first 2 customers (by name) are listed." in page
    response = client.post("/exemptions/send-many", data={"state": "TX", "all_missing": "1"})
    assert response.status_code == 303
    run = db.session.scalar(sa.select(ExemptionSendRun))
    assert sorted(run.customer_ids) == sorted(c.id for c in missing)


def test_review_page_jumps_to_any_page_of_a_long_document(app, client, make, reviewer):
    mtc = (EXEMPTION_FORMS / "mtc_uniform_sales_use_resale_cert.pdf").read_bytes()
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW, document=mtc)
    cert.document_pages = 7
    db.session.commit()
    text = client.get(f"/exemptions/certificates/{cert.id}?page=5").get_data(as_text=True)
    assert "Page 5 of 7" in text and '<span aria-current="page">5</span>' in text
    assert f'href="/exemptions/certificates/{cert.id}?page=7&amp;zoom=1.0"' in text
    assert "Why it is rejected (e-mailed to the customer)" in text
    edit = client.get(f"/exemptions/certificates/{cert.id}/edit").get_data(as_text=True)
    assert edit.count('alt="Page ') == 7  # the document beside the edit form
    assert client.get(f"/exemptions/certificates/{cert.id}/pages/7.png").status_code == 200


def test_edit_form_more_state_rows_keeps_values_and_saves_nothing(app, client, make, reviewer):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    data = make.exemption_form(tax_id_number="TYPED-2")
    response = client.post(f"/exemptions/certificates/{cert.id}/edit",
                           data={**data, "version": cert.version, "add_rows": "1"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'name="jurisdictions-9-state"' in text and 'value="TYPED-2"' in text
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status is CS.PENDING_REVIEW


def test_an_active_certificate_cannot_be_edited_and_the_get_explains_why(app, client, htmx, make, reviewer):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    assert htmx.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": cert.version}).status_code == 200
    review = client.get(f"/exemptions/certificates/{cert.id}").get_data(as_text=True)
    assert "Edit submission" not in review and "Save changes and approve" not in review

    response = client.get(f"/exemptions/certificates/{cert.id}/edit")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/exemptions/certificates/{cert.id}")
    landed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "This certificate is already active (reviewed by you on" in landed
    assert "Save changes and approve" not in landed

    before = cert.tax_id_number
    data = make.exemption_form(tax_id_number="CHANGED-LATER")
    saved = client.post(f"/exemptions/certificates/{cert.id}/edit", data={**data, "version": cert.version})
    assert saved.status_code == 409
    text = saved.get_data(as_text=True)
    assert "This certificate is already active (reviewed by you" in text
    assert "Rita Reviewer" not in text.split('role="alert"')[1].split("</div>")[0]  # does not blame the user
    assert "Save changes and approve" not in text and "Open the certificate" in text
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).tax_id_number == before


def test_a_second_decision_by_the_same_reviewer_does_not_name_them_as_someone_else(app, htmx, make, reviewer):
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    version = cert.version
    htmx.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": version})
    again = htmx.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": version})
    assert again.status_code == 409
    alert = again.get_data(as_text=True).split('role="alert">')[1].split("</div>")[0]
    assert alert.startswith("You already reviewed this submission") and "now active" in alert
    assert "Rita Reviewer" not in alert


def test_edit_of_a_certificate_someone_else_approved_names_them(app, client, make, auth):
    other = make.user(Role.REVIEWER, name="Olive Other")
    cert = make.exemption_certificate(status=CS.PENDING_REVIEW)
    from app.exemptions.services import approve_certificate
    from app.models.base import utcnow

    approve_certificate(cert, reviewer=other, now=utcnow())
    db.session.commit()
    auth.login(make.user(Role.REVIEWER, name="Rae Second"))
    response = client.post(f"/exemptions/certificates/{cert.id}/edit",
                           data={**make.exemption_form(), "version": cert.version})
    assert response.status_code == 409
    assert "already active (reviewed by Olive Other on" in response.get_data(as_text=True)
