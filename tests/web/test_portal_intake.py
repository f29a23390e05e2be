"""Customer portal: home, submit a certificate request (every payment path), downloads, Resend POI."""

import re

import pytest
import sqlalchemy as sa

from app.enums import Channel, CustomerStatus, PaymentMethod, RequestSource, RequestType, Role
from app.extensions import db
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage, Payment, SandboxCharge
from app.payments import DECLINE_CARD, ERROR_CARD
from app.storage import get_store

FORM = {
    "type": "coi_wos", "holder_name": "Lakeside School District", "holder_email": "facilities@lakeside.example.org",
    "holder_phone": "(512) 555-0199", "holder_address": "400 School Rd", "holder_city": "Round Rock",
    "holder_state": "TX", "holder_zip": "78664", "description": "Gym roof replacement",
    "project_name": "Gym roof", "project_location": "400 School Rd, Round Rock TX",
    "project_duration": "July 2026", "contract_details": "PO 7781", "instructions": "",
}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def customer_user(make, auth):
    def login(**kw):
        customer = make.customer(**kw)
        user = make.user(Role.CUSTOMER, customer=customer)
        auth.login(user)
        return customer, user

    return login


def test_home_lists_requests_with_status_and_the_two_choices(client, customer_user, make):
    customer, user = customer_user()
    other = make.customer(name="Someone Else Inc")
    db.session.add(CertificateRequest(customer_id=customer.id, type=RequestType.COI, source=RequestSource.PORTAL,
                                      holder_name="Mine Holder"))
    db.session.add(CertificateRequest(customer_id=other.id, type=RequestType.COI, source=RequestSource.PORTAL,
                                      holder_name="Not Mine Holder"))
    db.session.commit()
    page = client.get("/portal/").get_data(as_text=True)
    assert "Mine Holder" in page and "Not Mine Holder" not in page
    assert "badge-new" in page and "Submit certificate request" in page
    form = client.get("/portal/requests/new").get_data(as_text=True)
    # The two choices, in this order, and no proof of insurance among them.
    assert re.findall(r'<span class="type-name">([^<]*)</span>', form) == [
        "Certificate of insurance", "Certificate of insurance with WOS"]


def test_card_approved_creates_request_with_green_toast(client, htmx, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.CARD)
    response = htmx.post("/portal/requests/new", data=FORM, target="request-form")
    assert response.status_code == 200
    trigger = response.headers["HX-Trigger"]
    assert '"level": "success"' in trigger and "received" in trigger
    body = response.get_data(as_text=True)
    assert "<html" not in body and "alert-success" in body and "$25.75" in body
    req = db.session.scalar(sa.select(CertificateRequest))
    assert req.source is RequestSource.PORTAL and req.submitted_by_id == user.id and req.fee_cents == 2500
    assert db.session.scalar(sa.select(Payment)).request_id == req.id
    assert count(SandboxCharge) == 1


def test_card_approved_without_js_redirects_and_flashes(client, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.AMEX)
    response = client.post("/portal/requests/new", data=FORM)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "toast-success" in page and "received" in page and "Gym roof" in page


def test_declined_card_shows_merchant_payment_failed_and_notifies(client, htmx, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    response = htmx.post("/portal/requests/new", data=FORM, target="request-form")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Merchant payment failed" in body
    assert 'value="Lakeside School District"' in body  # what the user typed is kept
    assert count(CertificateRequest) == 0
    channels = sorted(m.channel.value for m in db.session.scalars(sa.select(OutboxMessage)))
    assert channels == ["email", "email", "sms"]  # contact + the customer user, and one SMS
    addresses = {m.to_address for m in db.session.scalars(sa.select(OutboxMessage))
                 if m.channel is Channel.EMAIL}
    assert addresses == {customer.contact_email, user.email}
    assert count(Activity, Activity.action == "payment_declined", Activity.customer_id == customer.id) == 1


def test_error_card_is_retried_without_a_double_charge(client, htmx, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.CARD, card=ERROR_CARD)
    form = client.get("/portal/requests/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', form).group(1)
    data = {**FORM, "idempotency_key": key}
    first = htmx.post("/portal/requests/new", data=data, target="request-form")
    again = htmx.post("/portal/requests/new", data=data, target="request-form")  # double click
    assert first.status_code == again.status_code == 200
    assert count(CertificateRequest) == 1 and count(SandboxCharge) == 1 and count(Payment) == 1
    assert db.session.scalar(sa.select(SandboxCharge.calls)) == 2


@pytest.mark.parametrize("method", [PaymentMethod.ACH, PaymentMethod.WIRE])
def test_ach_and_wire_go_straight_through(htmx, customer_user, method):
    customer, user = customer_user(payment_method=method)
    response = htmx.post("/portal/requests/new", data=FORM, target="request-form")
    assert response.status_code == 200 and "received" in response.headers["HX-Trigger"]
    assert count(CertificateRequest) == 1 and count(Payment) == 0 and count(SandboxCharge) == 0


@pytest.mark.parametrize("status", [CustomerStatus.INACTIVE, CustomerStatus.SUSPENDED])
def test_inactive_customer_is_refused_in_the_portal(client, htmx, customer_user, status):
    customer, user = customer_user(status=status, payment_method=PaymentMethod.CARD)
    home = client.get("/portal/").get_data(as_text=True)
    assert status.value in home and "cannot be requested" in home
    response = htmx.post("/portal/requests/new", data=FORM, target="request-form")
    assert response.status_code == 422
    assert f"is {status.value}" in response.get_data(as_text=True)
    assert count(CertificateRequest) == 0 and count(SandboxCharge) == 0
    assert count(Activity, Activity.action == "request_refused") == 1


@pytest.mark.parametrize("field,value,message", [
    ("holder_state", "ZZ", "two-letter US state code"),
    ("holder_zip", "7866", "5-digit ZIP"),
    ("holder_email", "nope@", "valid e-mail"),
    ("holder_phone", "555", "10-digit"),
    ("project_name", "", "required for a certificate with WOS"),
    ("type", "poi", "Choose"),
    ("type", "", "Choose"),
])
def test_bad_fields_re_render_with_errors_and_store_nothing(htmx, customer_user, field, value, message):
    customer_user(payment_method=PaymentMethod.CARD)
    response = htmx.post("/portal/requests/new", data={**FORM, field: value}, target="request-form")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(CertificateRequest) == 0 and count(SandboxCharge) == 0


def test_garbage_post_is_a_4xx_not_a_500(client, customer_user):
    customer_user()
    response = client.post("/portal/requests/new", data={"type": "\x00" * 3, "holder_name": "x" * 10000})
    assert response.status_code == 422
    assert client.post("/portal/poi", data={}).status_code == 422
    assert count(CertificateRequest) == 0


def _certificate(customer, name="Holder A", email="holder@example.com"):
    key = get_store().save(b"%PDF-1.4 certificate for " + name.encode())
    cert = IssuedCertificate(certificate_number=f"C-{customer.id}-{name[-1]}", kind=RequestType.COI,
                             customer_id=customer.id, holder_name=name, holder_email=email, holder_key=name.lower(),
                             document_key=key, filename=f"certificate-{name[-1]}.pdf")
    db.session.add(cert)
    db.session.commit()
    return cert


def test_download_own_certificate_as_attachment(client, customer_user, make):
    customer, user = customer_user()
    cert = _certificate(customer)
    other_cert = _certificate(make.customer(), name="Holder B")
    page = client.get("/portal/").get_data(as_text=True)
    assert cert.certificate_number in page and other_cert.certificate_number not in page
    response = client.get(f"/portal/certificates/{cert.id}/download")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data.startswith(b"%PDF") and b"Holder A" in response.data
    assert client.get(f"/portal/certificates/{other_cert.id}/download").status_code == 404


def test_another_customers_request_is_404(client, customer_user, make):
    customer, user = customer_user()
    other = make.customer()
    req = CertificateRequest(customer_id=other.id, type=RequestType.COI, source=RequestSource.PORTAL,
                             holder_name="Secret Holder")
    mine = CertificateRequest(customer_id=customer.id, type=RequestType.COI, source=RequestSource.PORTAL,
                              holder_name="My Holder")
    db.session.add_all([req, mine])
    db.session.commit()
    response = client.get(f"/portal/requests/{req.id}")
    assert response.status_code == 404 and "Secret Holder" not in response.get_data(as_text=True)
    assert "My Holder" in client.get(f"/portal/requests/{mine.id}").get_data(as_text=True)
    # staff pages acting for another customer answer 404 as well
    assert client.get(f"/customers/{other.id}/certificates/request").status_code == 404
    assert client.post(f"/customers/{other.id}/certificates/request", data=FORM).status_code == 404
    assert client.post(f"/customers/{other.id}/certificates/poi", data={"email": "a@b.co"}).status_code == 404
    assert count(CertificateRequest) == 2


def test_resend_poi_queues_the_job_and_refuses_bad_email(htmx, customer_user):
    customer, user = customer_user()
    bad = htmx.post("/portal/poi", data={"email": "not an email"}, target="portal-poi")
    assert bad.status_code == 422 and "valid e-mail" in bad.get_data(as_text=True)
    ok = htmx.post("/portal/poi", data={"email": "Lender@Bank.example.com", "name": "Loan desk"}, target="portal-poi")
    assert ok.status_code == 200 and "poi-sent" in ok.headers["HX-Trigger"]
    assert "on its way to Lender@Bank.example.com" in ok.get_data(as_text=True)
    entry = db.session.scalar(sa.select(Activity).where(Activity.action == "poi_requested"))
    assert "lender@bank.example.com" in entry.message.lower() and entry.customer_id == customer.id


def test_resend_poi_refused_for_inactive_customer(htmx, customer_user):
    customer_user(status=CustomerStatus.INACTIVE)
    response = htmx.post("/portal/poi", data={"email": "a@example.com"}, target="portal-poi")
    assert response.status_code == 422 and "is inactive" in response.get_data(as_text=True)


def test_staff_cannot_use_the_portal(client, auth, make):
    auth.login(make.user(Role.ADMIN))
    assert client.get("/portal/requests/new").status_code == 403


def test_simple_coi_is_issued_automatically_and_downloadable(client, htmx, customer_user, run_jobs, smtp):
    customer, user = customer_user(automation_enabled=True)
    response = htmx.post("/portal/requests/new", data={**FORM, "type": "coi"}, target="request-form")
    assert response.status_code == 200
    run_jobs()  # auto-process: issue + queue e-mails
    run_jobs()  # deliver the e-mails over SMTP
    req = db.session.scalar(sa.select(CertificateRequest))
    assert req.status.value == "completed" and len(req.certificates) == 1
    cert = req.certificates[0]
    page = client.get("/portal/").get_data(as_text=True)
    assert cert.certificate_number in page and "badge-completed" in page
    download = client.get(f"/portal/certificates/{cert.id}/download")
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert smtp.to("facilities@lakeside.example.org")  # the holder got the certificate
    received = [m for m in smtp.to(customer.contact_email) if "received" in m["Subject"]]
    assert received and f"#{req.id}" in received[0]["Subject"]


def test_fee_is_shown_next_to_the_wos_choice_by_payment_method(client, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.CARD)
    page = client.get("/portal/requests/new").get_data(as_text=True)
    choice = page.split('value="coi_wos"')[1].split("</label>")[0]
    assert "$25.75" in choice and "$25.00 WOS fee" in choice and "$0.75 card convenience fee" in choice
    assert 'class="request-fields' in page and 'id="wos-fields"' in page


def test_ach_customer_sees_billed_to_account_next_to_the_wos_choice(client, customer_user):
    customer, user = customer_user(payment_method=PaymentMethod.ACH)
    page = client.get("/portal/requests/new").get_data(as_text=True)
    choice = " ".join(page.split('value="coi_wos"')[1].split("</label>")[0].split())
    assert "$25.00" in choice and "billed to your account (ACH)" in choice and "card" not in choice


def test_plain_coi_drops_project_fields_typed_before_switching(client, customer_user):
    customer_user(payment_method=PaymentMethod.CARD)
    response = client.post("/portal/requests/new", data={**FORM, "type": "coi"})
    assert response.status_code == 303
    req = db.session.scalar(sa.select(CertificateRequest))
    assert req.type is RequestType.COI and req.project_name == "" and req.contract_details == ""
    assert count(SandboxCharge) == 0


def test_home_shows_why_a_request_was_rejected_and_the_detail_shows_the_card_charge(client, htmx, customer_user, make):
    customer, user = customer_user(payment_method=PaymentMethod.CARD)
    make.queue_request(customer, status="rejected", holder_name="Refused Holder",
                       rejection_reason="The holder address is outside the policy territory.")
    db.session.commit()
    home = client.get("/portal/").get_data(as_text=True)
    assert "Rejected: The holder address is outside the policy territory." in home
    htmx.post("/portal/requests/new", data=FORM, target="request-form")
    req = db.session.scalar(sa.select(CertificateRequest).where(CertificateRequest.holder_name == FORM["holder_name"]))
    detail = " ".join(client.get(f"/portal/requests/{req.id}").get_data(as_text=True).split())
    assert "$25.75 charged to the card ending 4242" in detail and "Gym roof" in detail
    assert client.get("/portal/requests/99999999999").status_code == 404


def _fee_cell(html: str, request_id: int) -> str:
    row = html.split(f">#{request_id}</a>")[1].split("</tr>")[0]
    return " ".join(row.split('data-label="Fee"')[1].split("</td>")[0].split())


def test_fee_column_shows_what_the_card_was_charged(client, customer_user, make, auth):
    customer, user = customer_user(payment_method=PaymentMethod.CARD)
    assert client.post("/portal/requests/new", data=FORM).status_code == 303
    req = db.session.scalar(sa.select(CertificateRequest))
    cell = _fee_cell(client.get("/portal/").get_data(as_text=True), req.id)
    assert "$25.75" in cell and "$25.00 fee + $0.75 card fee" in cell
    auth.logout()
    auth.login(make.user(Role.ADMIN))
    page = client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)
    assert "$25.75" in page and "$25.00 fee + $0.75 card fee" in page
    assert "pays by card ending 4242" in page and "CARD" not in page
    from app.insurance import processing
    from app.models.base import utcnow

    processing.cancel(req, actor=user, now=utcnow())
    db.session.commit()
    auth.logout()
    auth.login(user)
    assert "$25.75 refunded" in _fee_cell(client.get("/portal/").get_data(as_text=True), req.id)
    detail = " ".join(client.get(f"/portal/requests/{req.id}").get_data(as_text=True).split())
    assert "$25.75 refunded to the card on" in detail


@pytest.mark.parametrize(("method", "words"), [(PaymentMethod.AMEX, "pays by Amex"), (PaymentMethod.ACH, "pays by ACH"),
                                               (PaymentMethod.WIRE, "pays by wire")])
def test_payment_method_in_normal_words(client, auth, make, method, words):
    customer = make.customer(payment_method=method)
    auth.login(make.user(Role.ADMIN))
    page = client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)
    assert words in page and "WIRE" not in page and "AMEX" not in page


def test_ach_fee_column_says_billed_to_account(client, customer_user):
    customer_user(payment_method=PaymentMethod.WIRE)
    assert client.post("/portal/requests/new", data=FORM).status_code == 303
    req = db.session.scalar(sa.select(CertificateRequest))
    cell = _fee_cell(client.get("/portal/").get_data(as_text=True), req.id)
    assert "$25.00" in cell and "billed to account" in cell and "card" not in cell
    assert "billed to your account (wire)" in client.get("/portal/requests/new").get_data(as_text=True)
