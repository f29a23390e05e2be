"""Customers, programs, insurers, policies and endorsements: the services (no HTTP client)."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app.customers import policies as pol
from app.customers import records
from app.customers.records import RecordInvalid
from app.enums import CoverageLine, CustomerStatus, EndorsementKind, Language, PolicyStatus
from app.extensions import db
from app.insurance import intake
from app.models import Activity, Customer, Endorsement, Insurer, Policy, Program

NOW = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)
CUSTOMER = {
    "external_id": "ACME-001", "name": "Acme Roofing LLC", "contact_name": "Pat Lee",
    "contact_email": "Pat@Acme.example.com", "contact_phone": "512 555 0100", "address": "1 Main St",
    "city": "Austin", "state": "tx", "zip": "78701", "payment_method": "card", "language": "es",
}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def messages(customer_id):
    return [a.message for a in db.session.scalars(
        sa.select(Activity).where(Activity.customer_id == customer_id).order_by(Activity.id))]


@pytest.fixture
def staff(make):
    return make.user()


@pytest.fixture
def insurer(staff):
    ins = records.create_insurer({"name": "Granite State Casualty Co", "naic": "10234"}, actor=staff, now=NOW)
    db.session.commit()
    return ins


@pytest.fixture
def customer(staff):
    program = records.create_program({"name": "Contractors", "automation_enabled": True}, actor=staff, now=NOW)
    c = records.create_customer({**CUSTOMER, "program_id": program.id}, actor=staff, now=NOW)
    db.session.commit()
    return c


def gl(insurer, **over):
    values = {"line": "general_liability", "insurer_id": insurer.id, "policy_number": "GL-100",
              "effective_date": "2026-01-01", "expiry_date": "2027-01-01",
              "limits": {"each_occurrence": "1,000,000", "general_aggregate": 2_000_000},
              "coverage": {"form": "occurrence", "aggregate_basis": "project"},
              "endorsements": [{"kind": "additional_insured", "form_number": "CG 20 10", "holder_name": None},
                               {"kind": "waiver_of_subrogation", "form_number": "CG 24 04",
                                "holder_name": "City of Austin"}]}
    values.update(over)
    return values


# -- customers ---------------------------------------------------------------------------------------

def test_create_customer_normalises_and_records_every_value(customer, staff):
    assert customer.external_id == "ACME-001"
    assert customer.contact_email == "Pat@acme.example.com"
    assert customer.contact_phone == "(512) 555-0100"
    assert customer.state == "TX" and customer.zip_code == "78701"
    assert customer.language is Language.ES and customer.status is CustomerStatus.ACTIVE
    assert customer.program.name == "Contractors"
    text = messages(customer.id)[0]
    assert "Customer Acme Roofing LLC created." in text
    assert "Customer number: (empty) → ACME-001" in text and "Language: (empty) → es" in text


def test_bad_customer_gets_a_message_per_field_and_stores_nothing(customer, staff):
    before = count(Customer)
    with pytest.raises(RecordInvalid) as info:
        records.create_customer({"external_id": "ACME-001", "name": " ", "contact_email": "not-an-email",
                                 "state": "ZZ", "zip": "7870", "status": "closed", "payment_method": "cash",
                                 "program_id": 9999, "language": "fr", "colour": "red"}, actor=staff, now=NOW)
    errors = info.value.errors
    assert errors["external_id"] == f"Customer number ACME-001 is already used by customer #{customer.id}."
    assert errors["name"] == "Name is required."
    assert errors["state"] == "Use a two-letter US state code (or DC)."
    assert "ZIP" in errors["zip"] and "e-mail" in errors["contact_email"]
    assert errors["status"] == "Status must be one of: active, inactive, suspended."
    assert errors["payment_method"] == "Payment method must be one of: card, amex, ach, wire."
    assert errors["program_id"].startswith("Unknown program")
    assert errors["language"] == "Language must be one of: en, es."
    assert errors["colour"] == "Unknown field."
    db.session.rollback()
    assert count(Customer) == before


def test_update_names_each_changed_field_old_to_new(customer, staff):
    changes = records.update_customer(customer, {"city": "Round Rock", "contact_name": "Sam Diaz",
                                                 "state": "TX"}, actor=staff, now=NOW)
    assert [c[0] for c in changes] == ["Contact name", "City"]
    assert messages(customer.id)[-1] == "Contact name: Pat Lee → Sam Diaz\nCity: Austin → Round Rock"
    assert records.update_customer(customer, {"city": "Round Rock"}, actor=staff, now=NOW) == []
    assert len(messages(customer.id)) == 2


def test_external_id_cannot_be_blanked(customer, staff):
    with pytest.raises(RecordInvalid) as info:
        records.update_customer(customer, {"external_id": ""}, actor=staff, now=NOW)
    assert info.value.errors == {"external_id": "Customer number is required."}


def test_status_change_needs_a_reason_that_the_refusal_repeats_and_reactivation_is_immediate(customer, staff):
    with pytest.raises(RecordInvalid) as info:
        records.change_status(customer, "inactive", "", actor=staff, now=NOW)
    assert "Say why the customer is inactive" in info.value.errors["status_reason"]
    records.change_status(customer, "inactive", "Premium unpaid since May", actor=staff, now=NOW)
    db.session.commit()
    assert messages(customer.id)[-1] == ("Status: active → inactive\n"
                                         "Status reason: (empty) → Premium unpaid since May")
    ok, why = intake.eligibility(customer)
    assert not ok and why.endswith("Reason: Premium unpaid since May.")
    records.change_status(customer, "active", "", actor=staff, now=NOW)
    assert customer.status_reason == ""
    assert intake.eligibility(customer) == (True, "")


# -- programs and insurers -------------------------------------------------------------------------------

def test_program_names_are_unique_and_flags_are_yes_no(customer, staff):
    with pytest.raises(RecordInvalid) as info:
        records.create_program({"name": "contractors", "peo": "maybe"}, actor=staff, now=NOW)
    assert info.value.errors == {"name": "A program named contractors already exists.",
                                 "peo": "PEO-style must be yes or no."}
    peo = records.create_program({"name": "Staffing", "peo": "on"}, actor=staff, now=NOW)
    assert peo.is_peo and not peo.automation_enabled
    records.update_program(peo, {"automation_enabled": True}, actor=staff, now=NOW)
    assert peo.automation_enabled
    assert count(Program) == 2


@pytest.mark.parametrize("naic,message", [
    ("1234", "The NAIC number is five digits, e.g. 10234."),
    ("12a45", "The NAIC number is five digits, e.g. 10234."),
    ("", "NAIC number is required."),
    ("10234", "NAIC 10234 is already on the list as Granite State Casualty Co."),
])
def test_insurer_naic_is_five_unique_digits(insurer, staff, naic, message):
    with pytest.raises(RecordInvalid) as info:
        records.create_insurer({"name": "Other Co", "naic": naic}, actor=staff, now=NOW)
    assert info.value.errors == {"naic": message}
    assert count(Insurer) == 1


# -- policies -----------------------------------------------------------------------------------------

def test_create_policy_with_limits_boxes_and_endorsements(customer, insurer, staff):
    policy = pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    db.session.commit()
    assert policy.limits == {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000}
    assert policy.coverage == {"form": "occurrence", "aggregate_basis": "project"}
    assert policy.insurer_name == "Granite State Casualty Co" and policy.naic_number == "10234"
    assert policy.status is PolicyStatus.ACTIVE
    assert [e.label for e in policy.endorsements] == [
        "Additional insured (CG 20 10), blanket", "Waiver of subrogation (CG 24 04), for City of Austin"]
    text = messages(customer.id)[-1]
    assert text.startswith("General liability policy GL-100 added (Granite State Casualty Co (NAIC 10234), "
                           "2026-01-01 to 2027-01-01).")
    assert "Endorsements: Additional insured (CG 20 10), blanket" in text


def test_endorsement_for_prefers_the_named_holder_then_blanket(customer, insurer, staff):
    policy = pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    ai = policy.endorsement_for(EndorsementKind.ADDITIONAL_INSURED, "Anyone At All")
    assert ai is not None and ai.is_blanket
    wos = policy.endorsement_for("waiver_of_subrogation", "  city of   AUSTIN ")
    assert wos is not None and wos.holder_name == "City of Austin"
    assert policy.endorsement_for("waiver_of_subrogation", "City of Dallas") is None
    assert policy.endorsement_for("primary_noncontributory", "City of Austin") is None


@pytest.mark.parametrize("over,field,message", [
    ({"expiry_date": "2025-12-31"}, "expiry_date", "The expiry date must be after the effective date."),
    ({"effective_date": "2026-02-30"}, "effective_date", "Effective date is not a real date (use YYYY-MM-DD)."),
    ({"effective_date": "01/01/2026"}, "effective_date", "Effective date must be a date in the form YYYY-MM-DD."),
    ({"limits": {"each_occurrence": -5}}, "limits.each_occurrence", "Each occurrence cannot be negative."),
    ({"limits": {"each_occurrence": "1000000.50"}}, "limits.each_occurrence",
     "Each occurrence must be whole dollars (no cents)."),
    ({"limits": {"each_occurence": 1}}, "limits.each_occurence",
     "Not a general_liability limit; use: each_occurrence, damage_to_rented_premises, medical_expense, "
     "personal_adv_injury, general_aggregate, products_completed_ops."),
    ({"insurer_id": 999}, "insurer_id", "Unknown insurer '999': add it to the insurer list first."),
    ({"insurer_id": None, "naic": "99999"}, "naic", "Unknown insurer '99999': add it to the insurer list first."),
    ({"line": "marine"}, "line", "Line must be one of: general_liability, automobile, umbrella, workers_comp, other."),
    ({"coverage": {"aggregate_basis": "galaxy"}}, "coverage.aggregate_basis",
     "aggregate_basis must be one of: policy, project, location."),
    ({"endorsements": [{"kind": "free_lunch", "form_number": "X"}]}, "endorsements.0.kind",
     "Kind must be one of: additional_insured, waiver_of_subrogation, primary_noncontributory, "
     "notice_of_cancellation."),
    ({"status": "cancelled"}, "cancelled_on", "A cancelled policy needs the date the cancellation took effect."),
    ({"cancelled_on": "2026-03-01"}, "cancelled_on",
     "Only a cancelled policy has a cancellation date (or set status to cancelled)."),
])
def test_bad_policy_values_are_refused_per_field_and_nothing_is_stored(customer, insurer, staff, over, field,
                                                                      message):
    with pytest.raises(RecordInvalid) as info:
        pol.create_policy(customer, gl(insurer, **over), actor=staff, now=NOW)
    assert info.value.errors[field] == message
    db.session.rollback()
    assert count(Policy) == 0 and count(Endorsement) == 0


def test_policy_number_unique_per_insurer_and_line_and_terms_do_not_overlap(customer, insurer, staff):
    pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    with pytest.raises(RecordInvalid) as info:
        pol.create_policy(customer, gl(insurer, effective_date="2027-01-01", expiry_date="2028-01-01"),
                          actor=staff, now=NOW)
    assert info.value.errors == {"policy_number": "Policy GL-100 for this insurer and line is already on file."}
    with pytest.raises(RecordInvalid) as info:
        pol.create_policy(customer, gl(insurer, policy_number="GL-200", effective_date="2026-06-01",
                                       expiry_date="2027-06-01"), actor=staff, now=NOW)
    assert "overlaps general liability policy GL-100 (2026-01-01 to 2027-01-01)" in info.value.errors[
        "effective_date"]
    # The same number on another line is fine, and so is a term that starts when the other ends.
    pol.create_policy(customer, gl(insurer, line="automobile", limits={}, coverage={"hired": True}), actor=staff,
                      now=NOW)
    pol.create_policy(customer, gl(insurer, policy_number="GL-200", effective_date="2027-01-01",
                                   expiry_date="2028-01-01"), actor=staff, now=NOW)
    assert count(Policy) == 3


def test_cancel_takes_effect_on_its_date_and_is_on_the_timeline(customer, insurer, staff):
    policy = pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    with pytest.raises(RecordInvalid) as info:
        pol.cancel_policy(policy, "2027-05-01", actor=staff, now=NOW)
    assert info.value.errors == {"cancelled_on": "The cancellation date must be within the policy term."}
    pol.cancel_policy(policy, "2026-07-01", actor=staff, now=NOW)
    assert policy.is_in_force(date(2026, 6, 30)) and not policy.is_in_force(date(2026, 7, 1))
    assert messages(customer.id)[-1] == ("General liability policy GL-100:\nStatus: active → cancelled\n"
                                         "Cancelled on: (empty) → 2026-07-01")
    # A new term may start once the cancelled one stopped.
    pol.create_policy(customer, gl(insurer, policy_number="GL-300", effective_date="2026-07-01"), actor=staff,
                      now=NOW)


def test_renewal_is_a_new_term_that_supersedes_the_old_one(customer, insurer, staff):
    old = pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    db.session.commit()
    new = pol.renew_policy(old, {"policy_number": "GL-101", "effective_date": "2027-01-01",
                                 "expiry_date": "2028-01-01"}, actor=staff, now=NOW)
    db.session.commit()
    assert new.supersedes_id == old.id and old.superseded_by.id == new.id
    assert new.limits == old.limits and new.coverage == old.coverage
    assert [e.label for e in new.endorsements] == [e.label for e in old.endorsements]
    assert old.policy_number == "GL-100" and old.status is PolicyStatus.ACTIVE  # still readable
    assert "Supersedes policy GL-100, which stays on file." in messages(customer.id)[-1]
    # On the day the renewal starts (the old expiry date) only the renewal is in force.
    assert old.is_in_force(date(2026, 12, 31)) and not new.is_in_force(date(2026, 12, 31))
    assert not old.is_in_force(date(2027, 1, 1)) and new.is_in_force(date(2027, 1, 1))
    from app.insurance.certificate_data import build_certificate_data
    from app.insurance.layout import HolderInfo

    holder = HolderInfo(name="City of Austin", address="1 Main", city="Austin", state="TX", zip_code="78701")
    data = build_certificate_data(customer, kind="coi", holder=holder, on=date(2027, 1, 1))
    assert [r["policy_number"] for r in data["coverages"] if r["present"]] == ["GL-101"]
    with pytest.raises(RecordInvalid) as info:
        pol.renew_policy(old, {"policy_number": "GL-102", "effective_date": "2028-01-01",
                               "expiry_date": "2029-01-01"}, actor=staff, now=NOW)
    assert info.value.errors == {"policy_number": "Policy GL-100 was already renewed by GL-101."}


def test_update_replaces_endorsements_and_names_the_change(customer, insurer, staff):
    policy = pol.create_policy(customer, gl(insurer), actor=staff, now=NOW)
    pol.update_policy(policy, {"limits": {"each_occurrence": 2_000_000},
                               "endorsements": [{"kind": "primary_noncontributory", "form_number": "CG 20 01",
                                                 "holder_name": ""}]}, actor=staff, now=NOW)
    assert [e.label for e in policy.endorsements] == ["Primary & non-contributory (CG 20 01), blanket"]
    text = messages(customer.id)[-1]
    assert "Limits: each_occurrence 1,000,000, general_aggregate 2,000,000 → each_occurrence 2,000,000" in text
    assert "→ Primary & non-contributory (CG 20 01), blanket" in text
    endorsement = pol.add_endorsement(policy, {"kind": "waiver_of_subrogation", "form_number": "CG 24 04",
                                               "holder_name": "Travis County"}, actor=staff, now=NOW)
    assert endorsement.holder_name == "Travis County" and len(policy.endorsements) == 2
    pol.remove_endorsement(policy.endorsements[0], actor=staff, now=NOW)
    assert [e.kind for e in policy.endorsements] == [EndorsementKind.WAIVER_OF_SUBROGATION]
    assert policy.line is CoverageLine.GENERAL_LIABILITY
