"""Card on file: replaced through the gateway's tokenization (only token, brand, last four and expiry are
kept, never the number); the declined-payment e-mail links to the card page, and after a new card the
same WOS request, as typed, is retried and charged once."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from app.enums import Channel, PaymentMethod, Role
from app.extensions import db
from app.models import Activity, CertificateRequest, Customer, OutboxMessage, Payment, RequestDraft, SandboxCharge
from app.payments import AMEX_CARD, APPROVE_CARD, DECLINE_CARD, CardRefused, SandboxGateway, card_outcome

FORM = {
    "type": "coi_wos", "holder_name": "Lakeside School District", "holder_email": "facilities@lakeside.example.org",
    "holder_phone": "(512) 555-0199", "holder_address": "400 School Rd", "holder_city": "Round Rock",
    "holder_state": "TX", "holder_zip": "78664", "description": "Gym roof replacement\nphase 2",
    "project_name": "Gym roof", "project_location": "400 School Rd, Round Rock TX",
    "project_duration": "July 2026", "contract_details": "PO 7781", "instructions": "",
}
NEW_CARD = {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2031", "cvc": "123"}


class FormValues(HTMLParser):
    """The values a browser would submit from the page's form #request-form (inputs, checked radios,
    textareas)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") == "radio" and "checked" not in a:
                return
            self.values[a["name"]] = a.get("value") or ""
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.values[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            if self._textarea:  # WTForms writes a newline after <textarea>, which browsers drop
                self.values[self._textarea] = self.values[self._textarea].removeprefix("\r\n").removeprefix("\n")
            self._textarea = None


def form_values(html: str) -> dict:
    parser = FormValues()
    parser.feed(html)
    return parser.values


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_sandbox_tokenize_accepts_test_cards_and_refuses_per_field():
    from datetime import date

    gateway = SandboxGateway()
    card = gateway.tokenize("4242-4242 4242 4242", "7", "31", "123", today=date(2026, 12, 1))
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 7, 2031)
    assert APPROVE_CARD not in card.token and card_outcome(card.token) == "approve"
    assert card_outcome(gateway.tokenize(DECLINE_CARD, 1, 2030, "999", today=date(2026, 12, 1)).token) == "decline"
    amex = gateway.tokenize(AMEX_CARD, 1, 2030, "1234", today=date(2026, 12, 1))
    assert amex.brand == "amex" and amex.brand_label == "American Express"
    with pytest.raises(CardRefused) as refused:
        gateway.tokenize("4242 4242 4242 4241", "13", "1999", "12", today=date(2026, 12, 1))
    assert set(refused.value.errors) == {"number", "exp_month", "exp_year", "cvc"}
    assert "not valid" in refused.value.errors["number"]
    with pytest.raises(CardRefused) as expired:
        gateway.tokenize(APPROVE_CARD, "11", "2026", "123", today=date(2026, 12, 1))
    assert expired.value.errors == {"exp_year": "This card expired in 11/2026."}
    with pytest.raises(CardRefused) as unknown:  # a real-looking number: the sandbox takes only its test cards
        gateway.tokenize("4111 1111 1111 1111", "12", "2030", "123", today=date(2026, 12, 1))
    assert "test cards" in unknown.value.errors["number"]


def test_customer_replaces_its_card_and_the_number_is_stored_nowhere(app, client, auth, make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    user = make.user(Role.CUSTOMER, customer=customer)
    db.session.commit()
    auth.login(user)
    home = client.get("/portal/").get_data(as_text=True)
    assert "/portal/card" in home  # reachable from the nav
    page = client.get("/portal/card")
    assert page.status_code == 200 and "ending 0002" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    done = client.post("/portal/card", data={**NEW_CARD, "number": "5555 5555 5555 4444"})
    assert done.status_code == 303
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Card saved: Mastercard ending 4444" in shown and "Mastercard ending 4444, expires 12/2031" in shown
    db.session.expire_all()
    c = db.session.get(Customer, customer.id)
    assert (c.card_brand, c.card_last4, c.card_exp_month, c.card_exp_year) == ("mastercard", "4444", 12, 2031)
    assert card_outcome(c.card_token) == "approve"
    activity = db.session.scalar(sa.select(Activity).where(Activity.action == "card_replaced"))
    assert "Mastercard ending 4444" in activity.message and "was Card ending 0002" in activity.message
    # the number (and the security code with it) is in no table
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            text = " ".join(str(v) for v in row)
            assert "5555555555554444" not in text and "5555 5555 5555 4444" not in text, table.name


def test_a_refused_card_says_why_per_field_and_stores_nothing(app, client, auth, make):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    user = make.user(Role.CUSTOMER, customer=customer)
    db.session.commit()
    token = customer.card_token
    auth.login(user)
    bad = client.post("/portal/card", data={"number": "4242 4242 4242 4241", "exp_month": "00", "exp_year": "2031",
                                            "cvc": "12"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "The card was not saved" in body
    assert "This card number is not valid" in body and "expiry month" in body and "3-digit security code" in body
    assert 'value="4242 4242 4242 4241"' in body  # what was typed is kept
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).card_token == token
    assert count(Activity, Activity.action == "card_replaced") == 0
    assert client.post("/portal/card", data=NEW_CARD, headers={"X-CSRFToken": ""}, csrf=False).status_code == 400


def test_declined_email_link_new_card_retry_charges_once(app, client, auth, make, run_jobs, smtp):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    user = make.user(Role.CUSTOMER, customer=customer, email="buyer@lakeside-customer.example.com")
    db.session.commit()
    auth.login(user)
    declined = client.post("/portal/requests/new", data=FORM)
    body = declined.get_data(as_text=True)
    assert declined.status_code == 422 and "Merchant payment failed" in body
    payment = db.session.scalar(sa.select(Payment))
    assert f"/portal/card?retry={payment.id}" in body  # the banner links to the card page
    assert count(CertificateRequest) == 0

    run_jobs()
    mail = smtp.to(user.email)[0]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/portal/card\?retry=\d+", text).group(0)
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "/portal/card?retry=" in html
    sms = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.channel == Channel.SMS))
    assert f"/portal/card?retry={payment.id}" in sms.body_text  # the SMS links there too
    card_page = client.get("/" + link.split("/", 3)[3])
    assert card_page.status_code == 200
    assert "Lakeside School District" in card_page.get_data(as_text=True)  # the note names the kept request

    saved = client.post("/portal/card", data={**NEW_CARD, "retry": str(payment.id)})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/portal/requests/new?retry={payment.id}")
    retry_page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Retry payment" in retry_page and "Card saved: Visa ending 4242" in retry_page
    values = form_values(retry_page)
    # the test client sends its own CSRF header (the page's token may come from an app context shared by requests)
    values.pop("csrf_token", None)
    for name, typed in FORM.items():
        assert values.get(name, "") == typed, name  # everything typed is back
    first = client.post("/portal/requests/new", data=values)
    again = client.post("/portal/requests/new", data=values)  # a second click on Retry payment
    assert first.status_code == again.status_code == 303
    assert count(CertificateRequest) == 1
    req = db.session.scalar(sa.select(CertificateRequest))
    assert (req.holder_name, req.project_name, req.description) == ("Lakeside School District", "Gym roof",
                                                                   "Gym roof replacement\nphase 2")
    assert count(SandboxCharge, SandboxCharge.outcome == "approved") == 1
    assert db.session.scalar(sa.select(RequestDraft.request_id)) == req.id
    # done: the link in the old e-mail no longer offers the retry
    assert "Retry payment" not in client.get(f"/portal/requests/new?retry={payment.id}").get_data(as_text=True)


def test_staff_replace_a_card_and_roles_are_respected(app, client, auth, make):
    customer = make.customer(payment_method=PaymentMethod.AMEX, card=DECLINE_CARD)
    other = make.customer()
    reviewer, advisor, processor = make.user(Role.REVIEWER), make.user(Role.ADVISOR), make.user(Role.PROCESSOR)
    stranger = make.user(Role.CUSTOMER, customer=other)
    db.session.commit()
    auth.login(advisor)
    page = client.get(f"/customers/{customer.id}/card").get_data(as_text=True)
    assert "ending 0002" in page and 'name="number"' not in page  # advisors read only
    auth.logout()
    auth.login(processor)
    assert client.post(f"/customers/{customer.id}/card", data=NEW_CARD).status_code == 403
    auth.logout()
    auth.login(stranger)
    assert client.get(f"/customers/{customer.id}/card").status_code == 404
    auth.logout()
    auth.login(reviewer)
    tab = client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert f"/customers/{customer.id}/card" in tab  # the customer page has the tab
    done = client.post(f"/customers/{customer.id}/card", data={**NEW_CARD, "number": AMEX_CARD, "cvc": "1234"})
    assert done.status_code == 303
    assert "American Express ending 0005" in client.get(done.headers["Location"]).get_data(as_text=True)
    activity = db.session.scalar(sa.select(Activity).where(Activity.action == "card_replaced"))
    assert activity.actor_id == reviewer.id and activity.customer_id == customer.id


def test_staff_internal_request_declined_new_card_then_retry(app, client, auth, make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    reviewer = make.user(Role.REVIEWER)
    db.session.commit()
    auth.login(reviewer)
    declined = client.post(f"/customers/{customer.id}/certificates/request", data=FORM)
    body = declined.get_data(as_text=True)
    payment = db.session.scalar(sa.select(Payment))
    assert declined.status_code == 422 and f"/customers/{customer.id}/card?retry={payment.id}" in body
    card_page = client.get(f"/customers/{customer.id}/card?retry={payment.id}").get_data(as_text=True)
    assert "Lakeside School District" in card_page
    saved = client.post(f"/customers/{customer.id}/card", data={**NEW_CARD, "retry": str(payment.id)})
    assert saved.status_code == 303 and f"retry={payment.id}" in saved.headers["Location"]
    form_page = client.get(saved.headers["Location"]).get_data(as_text=True)
    values = form_values(form_page)
    values.pop("csrf_token", None)
    assert values["holder_name"] == "Lakeside School District" and "Retry payment" in form_page
    assert client.post(f"/customers/{customer.id}/certificates/request", data=values).status_code == 303
    assert client.post(f"/customers/{customer.id}/certificates/request", data=values).status_code == 303
    assert count(CertificateRequest) == 1 and count(SandboxCharge, SandboxCharge.outcome == "approved") == 1
