"""Intake services: validation, eligibility, the WOS payment paths, fees (no HTTP client)."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.enums import Channel, CustomerStatus, PaymentMethod, PaymentStatus, RequestSource, RequestStatus, RequestType
from app.extensions import db
from app.insurance import fees, intake, intake_errors
from app.models import Activity, CertificateRequest, OutboxMessage, Payment, SandboxCharge
from app.payments import DECLINE_CARD, ERROR_CARD, GatewayError, SandboxGateway, sandbox_token

NOW = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)

FIELDS = {
    "holder_name": "City of Springfield", "holder_email": "permits@springfield.example.gov",
    "holder_phone": "512-555-0142", "holder_address": "100 Civic Plaza", "holder_city": "Springfield",
    "holder_state": "il", "holder_zip": "62701-1234", "description": "Roof repair at city hall",
}
WOS = {**FIELDS, "project_name": "City hall roof", "project_location": "100 Civic Plaza, Springfield IL",
       "project_duration": "June - August 2026", "contract_details": "Contract 2026-114"}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def actions(customer_id):
    return [a.action for a in db.session.scalars(
        sa.select(Activity).where(Activity.customer_id == customer_id).order_by(Activity.id))]


def test_validation_cleans_and_accepts_good_input():
    clean = intake.validate_fields(RequestType.COI, FIELDS)
    assert clean["holder_state"] == "IL"
    assert clean["holder_phone"] == "(512) 555-0142"
    assert clean["holder_zip"] == "62701-1234"


@pytest.mark.parametrize("field,value,fragment", [
    ("holder_state", "XX", "state code"),
    ("holder_state", "", "required"),
    ("holder_zip", "1234", "ZIP"),
    ("holder_zip", "12345-12", "ZIP"),
    ("holder_email", "not-an-email", "e-mail"),
    ("holder_phone", "12345", "phone"),
    ("holder_name", "   ", "required"),
    ("holder_city", 42, "must be text"),
    ("holder_address", "x" * 201, "too long"),
])
def test_validation_refuses_bad_fields(field, value, fragment):
    with pytest.raises(intake_errors.RequestInvalid) as info:
        intake.validate_fields(RequestType.COI, {**FIELDS, field: value})
    assert fragment.lower() in info.value.errors[field].lower()


def test_wos_requires_project_fields_coi_does_not():
    intake.validate_fields(RequestType.COI, FIELDS)
    with pytest.raises(intake_errors.RequestInvalid) as info:
        intake.validate_fields(RequestType.COI_WOS, FIELDS)
    assert set(info.value.errors) == {"project_name", "project_location", "project_duration", "contract_details"}
    assert "WOS" in info.value.errors["project_name"]


def test_unknown_type_is_a_field_error():
    with pytest.raises(intake_errors.RequestInvalid) as info:
        intake.parse_type("banana")
    assert "Certificate of insurance" in info.value.errors["type"]


@pytest.mark.parametrize("status,word", [(CustomerStatus.INACTIVE, "inactive"),
                                         (CustomerStatus.SUSPENDED, "suspended")])
def test_inactive_customers_are_refused_with_a_reason_and_timeline_entry(make, status, word):
    customer = make.customer(status=status, payment_method=PaymentMethod.CARD)
    with pytest.raises(intake_errors.NotEligible) as info:
        intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                          actor=None, now=NOW)
    assert word in str(info.value) and customer.name in str(info.value)
    assert count(CertificateRequest) == 0
    assert count(SandboxCharge) == 0  # never charged
    assert actions(customer.id) == ["request_refused"]


def test_card_approved_creates_request_records_fee_and_timeline(make):
    customer = make.customer(payment_method=PaymentMethod.CARD)
    req = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                            actor=None, now=NOW, idempotency_key="k1")
    db.session.commit()
    assert req.status is RequestStatus.NEW and req.type is RequestType.COI_WOS
    assert req.fee_cents == 2500
    payment = db.session.scalar(sa.select(Payment))
    assert payment.status is PaymentStatus.APPROVED and payment.request_id == req.id
    assert (payment.fee_cents, payment.convenience_fee_cents, payment.amount_cents) == (2500, 75, 2575)
    charge = db.session.scalar(sa.select(SandboxCharge))
    assert charge.amount_cents == 2575 and charge.outcome == "approved"
    assert actions(customer.id) == ["submitted", "payment_approved"]
    received = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.to_address for m in received] == [customer.contact_email]
    assert "WOS fee: $25.00" in received[0].body_text


def test_same_idempotency_key_returns_the_same_request_without_a_second_charge(make):
    customer = make.customer(payment_method=PaymentMethod.AMEX)
    first = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.API, fields=WOS,
                                              actor=None, now=NOW, idempotency_key="same")
    second = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.API, fields=WOS,
                                               actor=None, now=NOW, idempotency_key="same")
    assert first.id == second.id
    assert count(CertificateRequest) == 1 and count(SandboxCharge) == 1


def test_declined_card_creates_nothing_and_sends_email_and_sms(make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    with pytest.raises(intake_errors.PaymentDeclined) as info:
        intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                          actor=None, now=NOW)
    db.session.commit()
    assert str(info.value) == "Merchant payment failed"
    assert count(CertificateRequest) == 0
    assert db.session.scalar(sa.select(Payment)).status is PaymentStatus.DECLINED
    messages = {m.channel: m for m in db.session.scalars(sa.select(OutboxMessage))}
    assert set(messages) == {Channel.EMAIL, Channel.SMS}
    assert messages[Channel.EMAIL].to_address == customer.contact_email
    assert "update the payment method" in messages[Channel.EMAIL].body_text
    assert messages[Channel.SMS].to_address == customer.contact_phone
    assert "update your payment method" in messages[Channel.SMS].body_text
    assert actions(customer.id) == ["payment_declined"]


def test_gateway_error_is_retried_with_the_same_key_and_charges_once(make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=ERROR_CARD)
    req = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                            actor=None, now=NOW, idempotency_key="retry-me")
    db.session.commit()
    charges = db.session.scalars(sa.select(SandboxCharge)).all()
    assert len(charges) == 1 and charges[0].calls == 2
    payment = db.session.scalar(sa.select(Payment))
    assert payment.gateway_charge_id == charges[0].charge_id and payment.request_id == req.id
    assert actions(customer.id) == ["payment_retry", "submitted", "payment_approved"]


def test_sandbox_error_card_raises_once_then_returns_the_original_charge(app):
    gateway = SandboxGateway()
    token = sandbox_token(ERROR_CARD)
    with pytest.raises(GatewayError):
        gateway.charge(card_token=token, amount_cents=100, idempotency_key="x", description="t")
    again = gateway.charge(card_token=token, amount_cents=100, idempotency_key="x", description="t")
    assert again.status == "approved"
    assert count(SandboxCharge) == 1


def test_gateway_that_never_answers_creates_nothing(make, monkeypatch):
    class Down:
        def charge(self, **kw):
            raise GatewayError("timeout")

    monkeypatch.setattr(intake, "get_gateway", lambda: Down())
    customer = make.customer(payment_method=PaymentMethod.CARD)
    with pytest.raises(intake_errors.PaymentUnavailable) as info:
        intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                          actor=None, now=NOW)
    assert "Merchant payment failed" in str(info.value)
    assert count(CertificateRequest) == 0
    assert actions(customer.id).count("payment_retry") == intake.GATEWAY_ATTEMPTS
    assert actions(customer.id)[-1] == "payment_failed"


@pytest.mark.parametrize("method", [PaymentMethod.ACH, PaymentMethod.WIRE])
def test_ach_and_wire_are_not_charged_and_go_straight_through(make, method):
    customer = make.customer(payment_method=method)
    req = intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.INTERNAL, fields=WOS,
                                            actor=None, now=NOW)
    assert req.fee_cents == 2500
    assert count(Payment) == 0 and count(SandboxCharge) == 0
    assert actions(customer.id) == ["submitted", "fee_recorded"]


def test_plain_coi_by_card_is_not_charged(make):
    customer = make.customer(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    req = intake.submit_certificate_request(customer, type="coi", source=RequestSource.PORTAL, fields=FIELDS,
                                            actor=None, now=NOW)
    assert req.fee_cents == 0 and count(SandboxCharge) == 0


def test_submission_defers_the_auto_process_job(make):
    customer = make.customer()
    req = intake.submit_certificate_request(customer, type="coi", source=RequestSource.PORTAL, fields=FIELDS,
                                            actor=None, now=NOW)
    jobs = db.session.info.get("deferred_jobs", [])
    assert any(j.func == intake.AUTO_JOB and j.args == (req.id,) for j in jobs)


def test_fees_are_admin_configurable(make):
    admin = make.user()
    assert fees.get_fees() == fees.Fees(2500, 300)
    fees.save_fees(wos_fee="40", card_fee_percent="2.5", actor=admin, now=NOW)
    saved = fees.get_fees()
    assert (saved.wos_fee_cents, saved.card_fee_bps, saved.convenience_cents()) == (4000, 250, 100)
    customer = make.customer(payment_method=PaymentMethod.CARD)
    intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.PORTAL, fields=WOS,
                                      actor=None, now=NOW)
    assert db.session.scalar(sa.select(Payment.amount_cents)) == 4100


@pytest.mark.parametrize("wos,pct,field", [("abc", "3", "wos_fee"), ("-1", "3", "wos_fee"),
                                           ("25", "x", "card_fee_percent"),
                                           ("25", "50", "card_fee_percent"), ("1.234", "3", "wos_fee"),
                                           ("NaN", "3", "wos_fee"), ("25", "Infinity", "card_fee_percent")])
def test_bad_fee_values_are_refused(make, wos, pct, field):
    admin = make.user()
    with pytest.raises(intake_errors.RequestInvalid) as info:
        fees.save_fees(wos_fee=wos, card_fee_percent=pct, actor=admin, now=NOW)
    assert field in info.value.errors
    assert fees.get_fees() == fees.Fees()


def test_seeded_demo_customers_behave_as_their_card_outcome_says(app):
    from app.cli import seed_demo
    from app.models import Customer

    data = seed_demo()
    seen = {}
    for row in data["customers"]:
        customer = db.session.get(Customer, row["id"])
        try:
            intake.submit_certificate_request(customer, type="coi_wos", source=RequestSource.INTERNAL, fields=WOS,
                                              actor=None, now=NOW)
            result = "created"
        except intake_errors.PaymentDeclined:
            result = "declined"
        except intake_errors.NotEligible:
            result = "refused"
        seen[row["name"].split()[0]] = (row["card_outcome"], result)
    db.session.commit()
    assert seen["Acme"] == ("approve", "created") and seen["Bluebird"] == ("approve", "created")
    assert seen["Copperline"] == ("decline", "declined")
    assert seen["Foxtail"] == ("error", "created")
    assert seen["Delta"] == (None, "created") and seen["Evergreen"] == (None, "created")
    assert seen["Granite"][1] == seen["Harbor"][1] == "refused"
    # Acme, Bluebird, Copperline (declined), Foxtail (once despite the retry); not the demo requests' own charge
    assert count(SandboxCharge, ~SandboxCharge.idempotency_key.like("%:demo-%")) == 4


def test_concurrent_twin_submissions_create_one_request_and_one_charge(app, make):
    """Two web processes receive the same submission (same key) at once: one request, one charge."""
    import threading

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency is exercised on PostgreSQL")
    customer = make.customer(payment_method=PaymentMethod.CARD)
    db.session.commit()
    customer_id, model = customer.id, type(customer)  # read here: never touch this session from the threads
    barrier = threading.Barrier(2)
    results, errors = [], []

    def submit():
        with app.app_context():
            try:
                c = db.session.get(model, customer_id)
                barrier.wait(10)
                req = intake.submit_certificate_request(c, type="coi_wos", source=RequestSource.API, fields=WOS,
                                                        actor=None, now=NOW, idempotency_key="twin")
                db.session.commit()
                results.append(req.id)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert count(CertificateRequest) == 1 and count(SandboxCharge) == 1 and count(Payment) == 1
