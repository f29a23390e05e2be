"""Staff side of intake: the customer "Certificates" tab (internal requests, resend), fees and the WOS fee report."""

import csv
import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.csvio import csv_safe
from app.enums import CustomerStatus, PaymentMethod, PaymentStatus, RequestSource, RequestType, Role
from app.extensions import db
from app.insurance import fees
from app.models import Activity, CertificateRequest, IssuedCertificate, OutboxMessage, Payment, SandboxCharge
from app.payments import DECLINE_CARD
from app.storage import get_store
from tests.web.test_portal_intake import FORM


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def staff(make, auth):
    def login(role=Role.REVIEWER):
        user = make.user(role)
        auth.login(user)
        return user

    return login


def test_certificates_tab_page_and_partial(client, htmx, staff, make):
    staff(Role.ADVISOR)
    customer = make.customer(name="Tabbed Roofing")
    page = client.get(f"/customers/{customer.id}/certificates")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    assert "Submit cert request" in text and "Resend certificates" not in text  # advisors may submit, not resend
    part = htmx.get(f"/customers/{customer.id}/certificates", target="customer-certificates")
    assert "<html" not in part.get_data(as_text=True) and "HX-Request" in part.headers["Vary"]


def test_internal_request_by_card_is_charged_and_labelled_internal(client, htmx, staff, make):
    user = staff(Role.REVIEWER)
    customer = make.customer(payment_method=PaymentMethod.CARD)
    form = client.get(f"/customers/{customer.id}/certificates/request").get_data(as_text=True)
    assert "Internal request on behalf of" in form and "Certificate of insurance with WOS" in form
    response = htmx.post(f"/customers/{customer.id}/certificates/request", data=FORM, target="request-form")
    assert response.status_code == 200 and "Internal request" in response.headers["HX-Trigger"]
    req = db.session.scalar(sa.select(CertificateRequest))
    assert req.source is RequestSource.INTERNAL and req.submitted_by_id == user.id
    assert count(SandboxCharge) == 1
    entry = db.session.scalar(sa.select(Activity).where(Activity.action == "submitted"))
    assert "staff (internal request)" in entry.message and user.name in entry.message
    # the tab lists the new request
    assert "Lakeside School District" in client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)


def test_internal_request_declined_card(htmx, staff, make):
    staff(Role.ADMIN)
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    response = htmx.post(f"/customers/{customer.id}/certificates/request", data=FORM, target="request-form")
    assert response.status_code == 422 and "Merchant payment failed" in response.get_data(as_text=True)
    assert count(CertificateRequest) == 0
    assert count(OutboxMessage) == 2  # customer e-mail + SMS (staff are not e-mailed)


@pytest.mark.parametrize("status", [CustomerStatus.INACTIVE, CustomerStatus.SUSPENDED])
def test_internal_request_refused_for_inactive_customer(client, htmx, staff, make, status):
    staff(Role.ADMIN)
    customer = make.customer(status=status)
    assert "cannot be requested" in client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)
    response = htmx.post(f"/customers/{customer.id}/certificates/request", data=FORM, target="request-form")
    assert response.status_code == 422 and f"is {status.value}" in response.get_data(as_text=True)
    assert count(CertificateRequest) == 0


def test_processor_may_not_submit_and_missing_customer_is_404(client, staff, make):
    staff(Role.PROCESSOR)
    customer = make.customer()
    assert client.post(f"/customers/{customer.id}/certificates/request", data=FORM).status_code == 403
    assert count(CertificateRequest) == 0
    assert client.get("/customers/999999/certificates").status_code == 404


def _cert(customer, name, email):
    key = get_store().save(b"%PDF-1.4 " + name.encode())
    cert = IssuedCertificate(certificate_number=f"N-{name}", kind=RequestType.COI, customer_id=customer.id,
                             holder_name=name, holder_email=email, holder_key=name, document_key=key,
                             filename=f"{name}.pdf")
    db.session.add(cert)
    db.session.commit()
    return cert


def test_resend_certificates_to_holders_and_extra_addresses(htmx, staff, make, run_jobs):
    staff(Role.REVIEWER)
    customer = make.customer()
    a = _cert(customer, "HolderA", "a@holder.example.com")
    b = _cert(customer, "HolderB", "")
    response = htmx.post(f"/customers/{customer.id}/certificates/resend", target="customer-certificates",
                         data={"certificate_ids": [a.id, b.id], "send_to_holders": "y",
                               "extra_emails": "ops@gc.example.com"})
    assert response.status_code == 200 and "certificates-resent" in response.headers["HX-Trigger"]
    run_jobs()
    sent = {(m.to_address, m.subject) for m in db.session.scalars(sa.select(OutboxMessage))}
    assert sent == {("a@holder.example.com", f"Certificate of insurance N-HolderA: {customer.name}"),
                    ("ops@gc.example.com", f"Certificate of insurance N-HolderA: {customer.name}"),
                    ("ops@gc.example.com", f"Certificate of insurance N-HolderB: {customer.name}")}
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "a@holder.example.com"))
    assert message.attachments[0]["key"] == a.document_key
    assert count(Activity, Activity.action == "certificate_resent") == 2
    # a second resend sends again (new token), a retried job would not
    htmx.post(f"/customers/{customer.id}/certificates/resend", target="customer-certificates",
              data={"certificate_ids": [a.id], "send_to_holders": "y"})
    run_jobs()
    assert count(OutboxMessage, OutboxMessage.to_address == "a@holder.example.com") == 2


def test_resend_refuses_other_customers_certificates_and_empty_picks(htmx, staff, make):
    staff(Role.ADMIN)
    customer, other = make.customer(), make.customer()
    foreign = _cert(other, "Foreign", "f@example.com")
    r1 = htmx.post(f"/customers/{customer.id}/certificates/resend", target="customer-certificates",
                   data={"certificate_ids": [foreign.id], "send_to_holders": "y"})
    r2 = htmx.post(f"/customers/{customer.id}/certificates/resend", target="customer-certificates", data={})
    r3 = htmx.post(f"/customers/{customer.id}/certificates/resend", target="customer-certificates",
                   data={"certificate_ids": ["abc"]})
    assert r1.status_code == r2.status_code == r3.status_code == 422
    assert "Pick at least one certificate" in r2.get_data(as_text=True)
    assert count(Activity) == 0


def test_staff_resend_poi(htmx, staff, make):
    staff(Role.REVIEWER)
    customer = make.customer()
    response = htmx.post(f"/customers/{customer.id}/certificates/poi", data={"email": "bank@example.com"},
                         target="customer-poi")
    assert response.status_code == 200 and "bank@example.com" in response.get_data(as_text=True)
    assert count(Activity, Activity.action == "poi_requested") == 1


# -- fees and the WOS fee report ------------------------------------------------------------------------------

def test_admin_sets_fees_and_bad_values_are_refused(client, htmx, staff):
    staff(Role.ADMIN)
    assert 'value="25.00"' in client.get("/admin/fees").get_data(as_text=True)
    bad = htmx.post("/admin/fees", data={"wos_fee": "=1+1", "card_fee_percent": "3"}, target="fees-form")
    assert bad.status_code == 422 and "Enter the WOS fee" in bad.get_data(as_text=True)
    ok = htmx.post("/admin/fees", data={"wos_fee": "30", "card_fee_percent": "2.5"}, target="fees-form")
    assert ok.status_code == 200 and "fees-changed" in ok.headers["HX-Trigger"]
    assert fees.get_fees() == fees.Fees(3000, 250)
    assert count(Activity, Activity.action == "fees_changed") == 1


def test_only_admins_configure_fees(client, staff):
    staff(Role.REVIEWER)
    assert client.get("/admin/fees").status_code == 403
    assert client.post("/admin/fees", data={"wos_fee": "1", "card_fee_percent": "1"}).status_code == 403
    assert fees.get_fees() == fees.Fees()


def _wos(customer, when, fee=2500, payment=None):
    req = CertificateRequest(customer_id=customer.id, type=RequestType.COI_WOS, source=RequestSource.PORTAL,
                             holder_name="H", fee_cents=fee, created_at=when, updated_at=when)
    db.session.add(req)
    db.session.flush()
    if payment is not None:
        conv, status = payment
        db.session.add(Payment(customer_id=customer.id, request_id=req.id, idempotency_key=f"k{req.id}",
                               status=status, fee_cents=fee, convenience_fee_cents=conv, amount_cents=fee + conv))
    return req


def test_wos_fee_report_sums_per_month_and_customer_and_csv(client, staff, make):
    staff(Role.ADMIN)
    card = make.customer(name="=HYPERLINK(\"http://evil\")", payment_method=PaymentMethod.CARD)
    ach = make.customer(name="Brook ACH Co", payment_method=PaymentMethod.ACH)
    _wos(card, datetime(2026, 3, 2, tzinfo=UTC), payment=(75, PaymentStatus.APPROVED))
    _wos(card, datetime(2026, 3, 30, 23, 59, tzinfo=UTC), payment=(75, PaymentStatus.APPROVED))
    _wos(card, datetime(2026, 4, 1, tzinfo=UTC), fee=4000, payment=(120, PaymentStatus.APPROVED))
    _wos(ach, datetime(2026, 3, 15, tzinfo=UTC))
    _wos(ach, datetime(2025, 12, 31, tzinfo=UTC))
    db.session.add(CertificateRequest(customer_id=ach.id, type=RequestType.COI, source=RequestSource.PORTAL,
                                      holder_name="plain coi, no fee"))
    db.session.commit()

    report = fees.wos_fee_report(year=2026)
    months = {m.month: (m.requests, m.wos_fees_cents, m.convenience_cents, m.card_charged_cents,
                        m.billed_to_account_cents) for m in report["months"]}
    assert months == {"2026-03": (3, 7500, 150, 5150, 2500), "2026-04": (1, 4000, 120, 4120, 0)}
    per_customer = {c.customer_name: (c.requests, c.wos_fees_cents) for c in report["customers"]}
    assert per_customer == {card.name: (3, 9000), "Brook ACH Co": (1, 2500)}
    assert report["total"].wos_fees_cents == 11500
    assert fees.wos_fee_report()["total"].requests == 5

    page = client.get("/admin/fees/report?year=2026").get_data(as_text=True)
    assert "2026-03" in page and "$75.00" in page and "$115.00" in page

    response = client.get("/admin/fees/report.csv?year=2026")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["month", "customer_id", "customer", "requests"]
    evil = [r for r in rows if r[1] == str(card.id)]
    assert [r[0] for r in evil] == ["2026-03", "2026-04"]
    assert all(r[2].startswith("'=") for r in evil)  # formula neutralised
    assert evil[0][3:] == ["2", "50.00", "1.50", "51.50", "0.00", "0.00", "51.50"]
    assert rows[-1] == ["total", "", "", "4", "115.00", "2.70", "92.70", "25.00", "0.00", "117.70"]


@pytest.mark.parametrize("value,expected", [("=1+2", "'=1+2"), ("+x", "'+x"), ("-3", "'-3"), ("@SUM", "'@SUM"),
                                            ("\tx", "'\tx"), ("Acme", "Acme"), ("", "")])
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def test_staff_download_an_issued_certificate_and_other_customers_is_404(client, staff, make):
    staff(Role.ADVISOR)
    customer, other = make.customer(), make.customer()
    cert = _cert(customer, "Harbor Holder", "h@example.com")
    page = client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)
    url = f"/customers/{customer.id}/certificates/{cert.id}/download"
    assert url in page
    response = client.get(url)
    assert response.status_code == 200 and response.data.startswith(b"%PDF-1.4 Harbor Holder")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/customers/{other.id}/certificates/{cert.id}/download").status_code == 404
    assert client.get(f"/customers/{customer.id}/certificates/99999999999/download").status_code == 404


def test_recent_requests_link_to_the_queue_and_inactive_customer_has_no_poi_form(client, staff, make):
    staff(Role.REVIEWER)
    customer = make.customer()
    req = make.queue_request(customer)
    db.session.commit()
    page = client.get(f"/customers/{customer.id}/certificates").get_data(as_text=True)
    assert f'href="/dashboard/queue/{req.id}"' in page and f'action="/customers/{customer.id}/certificates/poi"' in page
    inactive = make.customer(status=CustomerStatus.SUSPENDED)
    page = client.get(f"/customers/{inactive.id}/certificates").get_data(as_text=True)
    assert "is suspended: certificates cannot be requested" in page
    assert f'action="/customers/{inactive.id}/certificates/poi"' not in page


def test_wos_fee_report_costs_the_same_statements_for_many_customers(client, staff, make):
    """Three statements (years, requests, payments) whatever the number of requests and customers."""
    staff(Role.ADMIN)

    def statements_for_page() -> tuple[int, dict]:
        seen = []

        def listen(conn, cursor, statement, *args):
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", listen)
        try:
            report = fees.wos_fee_report(year=2026)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)
        return len(seen), report

    customers = [make.customer(name=f"Fee Customer {i:02d}", payment_method=PaymentMethod.CARD if i % 2
                               else PaymentMethod.ACH) for i in range(30)]
    for i, customer in enumerate(customers[:3]):
        _wos(customer, datetime(2026, 1 + i, 5, tzinfo=UTC), payment=(75, PaymentStatus.APPROVED) if i % 2 else None)
    db.session.commit()
    few, _ = statements_for_page()
    for i in range(64):
        customer = customers[i % 30]
        _wos(customer, datetime(2026, 1 + i % 12, 10, tzinfo=UTC),
             payment=(75, PaymentStatus.APPROVED) if customers.index(customer) % 2 else None)
    db.session.commit()
    many, report = statements_for_page()
    assert few == many == 3
    assert report["total"].requests == 67 and len(report["customers"]) == 30 and len(report["months"]) == 12
    assert sum(c.requests for c in report["customers"]) == sum(m.requests for m in report["months"]) == 67
    page = client.get("/admin/fees/report?year=2026").get_data(as_text=True)
    assert "Fee Customer 29" in page and ">67<" in page
