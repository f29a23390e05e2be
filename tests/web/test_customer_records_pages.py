"""Staff pages for customers, status, policies with endorsements, programs and insurers: what a person sees."""

import re

import pytest
import sqlalchemy as sa

from app.customers import records
from app.enums import CustomerStatus, PolicyStatus, Role
from app.extensions import db
from app.models import Customer, Insurer, Policy, Program

NEW_CUSTOMER = {"external_id": "CUST-77", "name": "Bluebonnet Roofing LLC", "contact_name": "Jo Ramos",
                "contact_email": "jo@bluebonnet.example.com", "contact_phone": "512-555-0177",
                "address": "77 Oak Ln", "city": "Austin", "state": "TX", "zip": "78704", "payment_method": "ach",
                "program_id": "", "language": "es"}


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


@pytest.fixture
def admin(make, auth):
    user = make.user(Role.ADMIN)
    auth.login(user)
    return user


@pytest.fixture
def insurer(make):
    found = make.insurer("Granite State Casualty Co", "10234")
    db.session.commit()
    return found


def test_admin_adds_and_edits_programs_and_insurers(client, htmx, admin):
    page = client.get("/admin/programs")
    assert page.status_code == 200 and "No programs yet" in text(page)
    response = client.post("/admin/programs", data={"name": "Contractors Select", "automation_enabled": "1"})
    assert response.status_code == 303
    page = text(client.get("/admin/programs"))
    assert "Program Contractors Select added." in page
    program = db.session.scalar(sa.select(Program))
    assert program.automation_enabled and not program.is_peo

    refused = htmx.post("/admin/programs", data={"name": "contractors select"})
    assert refused.status_code == 422 and "<html" not in refused.get_data(as_text=True)
    assert "A program named contractors select already exists." in text(refused)
    saved = htmx.post(f"/admin/programs/{program.id}", data={"name": "Contractors Select", "peo": "1"})
    assert saved.status_code == 200 and "program-saved" in saved.headers["HX-Trigger"]
    db.session.refresh(program)
    assert program.is_peo and not program.automation_enabled  # the unticked box means "no"

    refused = client.post("/admin/insurers", data={"name": "Granite State Casualty Co", "naic": "1023"})
    assert refused.status_code == 422 and "The NAIC number is five digits, e.g. 10234." in text(refused)
    assert count(Insurer) == 0
    assert client.post("/admin/insurers", data={"name": "Granite State Casualty Co", "naic": "10234"}
                       ).status_code == 303
    assert "Granite State Casualty Co" in text(client.get("/admin/insurers"))


def test_reviewer_creates_edits_and_deactivates_a_customer(client, make, auth):
    auth.login(make.user(Role.REVIEWER))
    listing = text(client.get("/customers/"))
    assert "New customer" in listing
    refused = client.post("/customers/new", data={**NEW_CUSTOMER, "state": "Texas", "name": ""})
    assert refused.status_code == 422
    page = text(refused)
    assert "Nothing was saved." in page and "Name is required." in page
    assert "Use a two-letter US state code (or DC)." in page and 'value="jo@bluebonnet.example.com"' in \
        refused.get_data(as_text=True)  # what was typed stays in the form
    assert count(Customer) == 0

    created = client.post("/customers/new", data=NEW_CUSTOMER)
    assert created.status_code == 303
    customer = db.session.scalar(sa.select(Customer))
    detail = text(client.get(created.headers["Location"]))
    assert "Customer Bluebonnet Roofing LLC created." in detail and "CUST-77" in detail and "Spanish" in detail

    duplicate = client.post("/customers/new", data={**NEW_CUSTOMER, "name": "Other"})
    assert duplicate.status_code == 422
    assert f"Customer number CUST-77 is already used by customer #{customer.id}." in text(duplicate)

    edit = client.get(f"/customers/{customer.id}/edit")
    assert edit.status_code == 200 and 'value="CUST-77"' in edit.get_data(as_text=True)
    assert client.post(f"/customers/{customer.id}/edit", data={**NEW_CUSTOMER, "city": "Round Rock"}
                       ).status_code == 303
    assert "City: Austin → Round Rock" in text(client.get(f"/customers/{customer.id}"))

    refused = client.post(f"/customers/{customer.id}/status", data={"status": "suspended", "status_reason": ""})
    assert refused.status_code == 422 and "Say why the customer is suspended" in text(refused)
    assert client.post(f"/customers/{customer.id}/status",
                       data={"status": "suspended", "status_reason": "Certificate of good standing lapsed"}
                       ).status_code == 303
    detail = text(client.get(f"/customers/{customer.id}"))
    assert "Not active: Certificate of good standing lapsed" in detail
    assert "Status: active → suspended" in detail
    db.session.refresh(customer)
    assert customer.status is CustomerStatus.SUSPENDED


def test_processor_and_advisor_read_but_do_not_change(client, make, auth):
    customer = make.customer()
    for role in (Role.PROCESSOR, Role.ADVISOR):
        auth.login(make.user(role))
        page = text(client.get(f"/customers/{customer.id}/policies"))
        assert f"GL-{customer.id}" in page and "Add policy" not in page and "Cancel policy" not in page
        assert "New customer" not in text(client.get("/customers/"))
        assert client.post(f"/customers/{customer.id}/edit", data={"name": "x"}).status_code == 403
        auth.logout()


def test_policy_form_shows_the_chosen_lines_limits(client, htmx, make, admin, insurer):
    customer = make.customer(with_policies=False)
    page = client.get(f"/customers/{customer.id}/policies/new")
    assert page.status_code == 200 and "Choose a line" in text(page) and "Bodily injury" not in text(page)
    partial = htmx.get(f"/customers/{customer.id}/policies/new?line=automobile&policy_number=CA-9")
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="policy-form"' in body and 'value="CA-9"' in body
    for label in ("Combined single limit", "Bodily injury (per person)", "Bodily injury (per accident)",
                  "Property damage", "Hired autos", "Scheduled autos"):
        assert label in body, label


def test_add_edit_cancel_renew_and_endorse_a_policy(client, htmx, make, admin, insurer):
    customer = make.customer(with_policies=False)
    db.session.commit()
    base = f"/customers/{customer.id}/policies"
    form = {"line": "general_liability", "insurer_id": str(insurer.id), "policy_number": "GL-2026-1",
            "effective_date": "2026-01-01", "expiry_date": "2027-01-01", "limit_each_occurrence": "$1,000,000",
            "limit_general_aggregate": "2,000,000", "coverage_form": "occurrence",
            "coverage_aggregate_basis": "location", "endorsement_rows": "3",
            "endorsement_0_kind": "additional_insured", "endorsement_0_form_number": "CG 20 10",
            "endorsement_0_holder_name": "",
            "endorsement_1_kind": "waiver_of_subrogation", "endorsement_1_form_number": "CG 24 04",
            "endorsement_1_holder_name": "City of Austin"}
    refused = client.post(f"{base}/new", data={**form, "expiry_date": "2025-06-01",
                                               "limit_each_occurrence": "1000000.50",
                                               "endorsement_2_form_number": "CG 20 01"})
    assert refused.status_code == 422
    page = text(refused)
    assert "The expiry date must be after the effective date." in page
    assert "Each occurrence must be whole dollars (no cents)." in page
    assert "Kind must be one of" in page  # a row with a form number but no kind is not dropped
    assert count(Policy) == 0

    assert client.post(f"{base}/new", data=form).status_code == 303
    page = text(client.get(base))
    assert "Policy GL-2026-1 added." in page
    for expected in ("Granite State Casualty Co (NAIC 10234)", "Each occurrence: $1,000,000",
                     "General aggregate: $2,000,000", "General aggregate applies per: Location",
                     "Additional insured (CG 20 10), blanket", "Waiver of subrogation (CG 24 04), for City of Austin",
                     "in force"):
        assert expected in page, expected
    policy = db.session.scalar(sa.select(Policy))

    # Edit keeps the endorsements shown in the form and names the change in the timeline.
    edit = client.get(f"{base}/{policy.id}/edit").get_data(as_text=True)
    assert 'value="CG 24 04"' in edit and 'value="City of Austin"' in edit
    assert client.post(f"{base}/{policy.id}/edit", data={**form, "limit_each_occurrence": "2000000"}
                       ).status_code == 303
    assert "each_occurrence 1,000,000" in text(client.get(f"/customers/{customer.id}"))

    # Endorsements one at a time.
    added = htmx.post(f"{base}/{policy.id}/endorsements", data={"kind": "primary_noncontributory",
                                                                 "form_number": "CG 20 01", "holder_name": ""})
    assert added.status_code == 200 and "Primary &amp; non-contributory (CG 20 01), blanket" in \
        added.get_data(as_text=True)
    again = htmx.post(f"{base}/{policy.id}/endorsements", data={"kind": "primary_noncontributory",
                                                                 "form_number": "CG 20 01", "holder_name": ""})
    assert again.status_code == 422 and "The same endorsement is listed twice." in text(again)
    db.session.refresh(policy)
    assert len(policy.endorsements) == 3
    removed = client.post(f"{base}/{policy.id}/endorsements/{policy.endorsements[0].id}/remove")
    assert removed.status_code == 303
    db.session.refresh(policy)
    assert [e.form_number for e in policy.endorsements] == ["CG 24 04", "CG 20 01"]

    # Renewal: a new term, the old one stays readable.
    renew = client.get(f"{base}/{policy.id}/renew")
    assert 'value="2027-01-01"' in renew.get_data(as_text=True)
    assert client.post(f"{base}/{policy.id}/renew", data={**form, "policy_number": "GL-2027-1",
                                                           "effective_date": "2027-01-01",
                                                           "expiry_date": "2028-01-01"}).status_code == 303
    page = text(client.get(base))
    assert "renewed as GL-2027-1" in page and "Renews GL-2026-1" in page

    # Cancel with a date outside the term is refused; inside, it shows.
    refused = htmx.post(f"{base}/{policy.id}/cancel", data={"cancelled_on": "2030-01-01"})
    assert refused.status_code == 422 and "The cancellation date must be within the policy term." in text(refused)
    assert htmx.post(f"{base}/{policy.id}/cancel", data={"cancelled_on": "2026-08-01"}).status_code == 200
    db.session.refresh(policy)
    assert policy.status is PolicyStatus.CANCELLED
    assert "cancelled Aug 01, 2026" in text(client.get(base))


def test_other_customers_policy_is_404(client, make, admin):
    mine, other = make.customer(), make.customer()
    policy = other.policies[0]
    assert client.get(f"/customers/{mine.id}/policies/{policy.id}/edit").status_code == 404
    assert client.post(f"/customers/{mine.id}/policies/{policy.id}/cancel",
                       data={"cancelled_on": "2026-05-01"}).status_code == 404


def test_other_line_takes_named_limits(client, make, admin, insurer):
    customer = make.customer(with_policies=False)
    db.session.commit()
    form = {"line": "other", "insurer_id": str(insurer.id), "policy_number": "PL-1", "effective_date": "2026-01-01",
            "expiry_date": "2027-01-01", "description": "Professional liability",
            "other_limit_name_0": "each_claim", "other_limit_0": "500,000",
            "other_limit_name_1": "Bad Name!", "other_limit_1": "1"}
    refused = client.post(f"/customers/{customer.id}/policies/new", data=form)
    assert refused.status_code == 422
    assert "A limit name is lower-case letters, digits and _ (at most 40)." in text(refused)
    assert 'value="Bad Name!"' in refused.get_data(as_text=True)
    form.update(other_limit_name_1="", other_limit_1="")
    assert client.post(f"/customers/{customer.id}/policies/new", data=form).status_code == 303
    page = text(client.get(f"/customers/{customer.id}/policies"))
    assert "Other · PL-1" in page and "Each claim: $500,000" in page and "Professional liability" in page


def test_a_policy_saved_by_two_people_at_once_keeps_the_second_ones_values(client, make, admin, insurer,
                                                                           monkeypatch):
    from app.customers import policies as policy_service

    customer = make.customer(with_policies=False)
    db.session.commit()
    base = f"/customers/{customer.id}/policies"
    form = {"line": "general_liability", "insurer_id": str(insurer.id), "policy_number": "GL-2026-9",
            "effective_date": "2026-01-01", "expiry_date": "2027-01-01", "limit_each_occurrence": "1000000",
            "limit_general_aggregate": "2000000", "coverage_form": "occurrence", "endorsement_rows": "0"}
    assert client.post(f"{base}/new", data=form).status_code == 303
    policy = db.session.scalar(sa.select(Policy))
    real_update = policy_service.update_policy

    def saved_meanwhile(policy, values, **kw):  # a colleague's save lands between our load and our save
        db.session.execute(sa.text("UPDATE policies SET version = version + 1, description = 'theirs' "
                                   "WHERE id = :id"), {"id": policy.id})
        return real_update(policy, values, **kw)

    monkeypatch.setattr(policy_service, "update_policy", saved_meanwhile)
    lost = client.post(f"{base}/{policy.id}/edit", data={**form, "description": "Mine, typed carefully"})
    assert lost.status_code == 409
    assert "Someone else saved this policy at the same moment" in text(lost)
    assert "Mine, typed carefully" in lost.get_data(as_text=True)  # what was typed is still in the form
    db.session.expire_all()
    assert db.session.get(Policy, policy.id).description != "Mine, typed carefully"


def test_any_lost_race_is_a_409_never_a_500(client, make, admin, monkeypatch):
    from sqlalchemy.orm.exc import StaleDataError

    customer = make.customer(name="Race Roofing")
    db.session.commit()

    def raced(*args, **kw):
        raise StaleDataError("UPDATE statement on table 'customers' expected to update 1 row(s); 0 were matched.")

    monkeypatch.setattr(records, "update_customer", raced)
    answer = client.post(f"/customers/{customer.id}/edit", data={**NEW_CUSTOMER, "name": "Renamed Roofing"})
    assert answer.status_code == 409 and "Someone else changed this first" in text(answer)
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).name == "Race Roofing"
