"""An empty instance: no demo rows with DEMO_DATA=0, the first-admin hint, and the dashboard checklist."""

from datetime import UTC, datetime

import sqlalchemy as sa

from app.customers import policies, records
from app.enums import Role
from app.extensions import db
from app.models import Customer, Policy, Program, User

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_seed_if_empty_without_demo_data_says_how_to_create_the_first_admin(app, runner):
    result = runner.invoke(args=["seed-if-empty"], env={"DEMO_DATA": "0"})
    assert result.exit_code == 0, result.output
    assert "flask create-user --email you@example.com --role admin" in result.output
    assert "Demo logins" not in result.output
    assert count(User) == 0 and count(Customer) == 0 and count(Program) == 0
    result = runner.invoke(args=["create-user", "--email", "owner@agency.example.com", "--role", "admin"],
                           input="a long enough password\na long enough password\n")
    assert result.exit_code == 0, result.output
    # A second start still adds no demo rows.
    assert runner.invoke(args=["seed-if-empty"], env={"DEMO_DATA": "0"}).output == ""
    assert count(User) == 1 and count(Customer) == 0


def test_seed_if_empty_loads_demo_data_by_default(app, runner):
    result = runner.invoke(args=["seed-if-empty"])
    assert "Demo logins" in result.output and count(Customer) > 0
    first = db.session.scalar(sa.select(Customer).order_by(Customer.id))
    assert first.external_id == "DEMO-0001"
    assert any(e.form_number == "WC 00 03 13" for p in first.policies for e in p.endorsements)


def test_dashboard_checklist_links_each_missing_step_until_everything_exists(client, auth, make):
    admin = make.user(Role.ADMIN)
    auth.login(admin)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Getting started" in page
    for href in ("/admin/agency", "/admin/programs", "/admin/insurers", "/customers/new"):
        assert f'href="{href}"' in page, href

    program = records.create_program({"name": "Main", "automation_enabled": True}, actor=admin, now=NOW)
    insurer = records.create_insurer({"name": "Alpha Casualty", "naic": "12345"}, actor=admin, now=NOW)
    customer = records.create_customer({"external_id": "C-1", "name": "First Customer LLC",
                                        "program_id": program.id}, actor=admin, now=NOW)
    db.session.commit()
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Getting started" in page and '<s>A program</s>' in page and '<s>A customer</s>' in page
    assert f'href="/customers/{customer.id}/policies/new"' in page  # the next step, on the new customer

    policies.create_policy(customer, {"line": "general_liability", "insurer_id": insurer.id,
                                      "policy_number": "GL-1", "effective_date": "2026-01-01",
                                      "expiry_date": "2027-01-01"}, actor=admin, now=NOW)
    from app.insurance.agency import save_agency

    save_agency({"name": "Lone Star Risk Partners"})
    db.session.commit()
    assert count(Policy) == 1
    assert "Getting started" not in client.get("/dashboard/").get_data(as_text=True)


def test_roles_without_the_right_see_the_step_without_a_link(client, auth, make):
    auth.login(make.user(Role.PROCESSOR))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Getting started" in page
    assert 'href="/admin/programs"' not in page and 'href="/customers/new"' not in page
    assert "A program: decides whether a customer&#39;s requests are issued automatically (an admin or reviewer" \
           " adds it)." in page
