"""Flask CLI commands: seed-demo, create-user, create-api-token, worker, sweep."""

from __future__ import annotations

import json
from datetime import date

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.enums import CoverageLine, CustomerStatus, EndorsementKind, PaymentMethod, Role
from app.extensions import db
from app.models import ApiToken, Customer, Insurer, Program, User
from app.models.users import hash_token
from app.payments import APPROVE_CARD, DECLINE_CARD, ERROR_CARD, card_outcome, sandbox_token

DEMO_PASSWORD = "certdesk-demo"

DEMO_STAFF = [
    ("admin@certdesk.demo", "Avery Admin", Role.ADMIN),
    ("reviewer@certdesk.demo", "Riley Reviewer", Role.REVIEWER),
    ("processor@certdesk.demo", "Parker Processor", Role.PROCESSOR),
    ("advisor@certdesk.demo", "Addison Advisor", Role.ADVISOR),
]

# name, status, payment method, card number (card/amex only), program, customer-user e-mail
DEMO_CUSTOMERS = [
    ("Acme Roofing LLC", CustomerStatus.ACTIVE, PaymentMethod.CARD, APPROVE_CARD, "Contractors Select",
     "customer@acme.demo"),
    ("Bluebird Landscaping Inc", CustomerStatus.ACTIVE, PaymentMethod.AMEX, APPROVE_CARD, "Contractors Select",
     "customer@bluebird.demo"),
    ("Copperline Electric Co", CustomerStatus.ACTIVE, PaymentMethod.CARD, DECLINE_CARD, "Contractors Select",
     "customer@copperline.demo"),
    ("Delta Staffing Partners", CustomerStatus.ACTIVE, PaymentMethod.ACH, None, "Staffing PEO",
     "customer@delta.demo"),
    ("Evergreen Plumbing", CustomerStatus.ACTIVE, PaymentMethod.WIRE, None, "Manual Review",
     "customer@evergreen.demo"),
    ("Foxtail Freight Lines", CustomerStatus.ACTIVE, PaymentMethod.CARD, ERROR_CARD, "Contractors Select",
     None),
    ("Granite Demolition", CustomerStatus.INACTIVE, PaymentMethod.ACH, None, "Manual Review",
     "customer@granite.demo"),
    ("Harbor Painting", CustomerStatus.SUSPENDED, PaymentMethod.CARD, APPROVE_CARD, "Contractors Select",
     None),
]

DEMO_PROGRAMS = [
    ("Contractors Select", True, False),
    ("Staffing PEO", True, True),
    ("Manual Review", False, False),
]

INSURERS = [
    ("Granite State Casualty Co", "10234"),
    ("Prairie Mutual Insurance", "20987"),
    ("Harborline Specialty Ins Co", "31456"),
    ("Keystone Workers Comp Fund", "40012"),
]


def _insurers(now) -> list[Insurer]:
    from app.customers import records

    out = []
    for name, naic in INSURERS:
        insurer = db.session.scalar(sa.select(Insurer).filter_by(naic=naic))
        out.append(insurer or records.create_insurer({"name": name, "naic": naic}, actor=None, now=now))
    return out


def _policies_for(customer: Customer, today: date, insurers: list[Insurer]) -> list[dict]:
    """GL (blanket additional insured + primary & non-contributory), auto, umbrella and WC (blanket waiver
    of subrogation) for one demo customer, current calendar-year term (values for the policy service)."""
    start, end = date(today.year, 1, 1).isoformat(), date(today.year + 1, 1, 1).isoformat()
    prefix = "".join(w[0] for w in customer.name.split()[:3]).upper()
    term = {"effective_date": start, "expiry_date": end}
    return [
        {"line": CoverageLine.GENERAL_LIABILITY.value, "insurer_id": insurers[0].id,
         "policy_number": f"GL-{prefix}-{customer.id:05d}", **term,
         "limits": {"each_occurrence": 1_000_000, "damage_to_rented_premises": 100_000, "medical_expense": 5_000,
                    "personal_adv_injury": 1_000_000, "general_aggregate": 2_000_000,
                    "products_completed_ops": 2_000_000},
         "coverage": {"form": "occurrence", "aggregate_basis": "policy"},
         "endorsements": [{"kind": EndorsementKind.ADDITIONAL_INSURED.value, "form_number": "CG 20 10"},
                          {"kind": EndorsementKind.PRIMARY_NONCONTRIBUTORY.value, "form_number": "CG 20 01"}]},
        {"line": CoverageLine.AUTOMOBILE.value, "insurer_id": insurers[1].id,
         "policy_number": f"CA-{prefix}-{customer.id:05d}", **term,
         "limits": {"combined_single_limit": 1_000_000}, "coverage": {"any_auto": True}},
        {"line": CoverageLine.UMBRELLA.value, "insurer_id": insurers[2].id,
         "policy_number": f"UMB-{prefix}-{customer.id:05d}", **term,
         "limits": {"each_occurrence": 5_000_000, "aggregate": 5_000_000, "retention": 10_000},
         "coverage": {"kind": "umbrella", "form": "occurrence"}},
        {"line": CoverageLine.WORKERS_COMP.value, "insurer_id": insurers[3].id,
         "policy_number": f"WC-{prefix}-{customer.id:05d}", **term,
         "limits": {"el_each_accident": 1_000_000, "el_disease_each_employee": 1_000_000,
                    "el_disease_policy_limit": 1_000_000},
         "coverage": {"per_statute": True, "proprietor_excluded": False},
         "endorsements": [{"kind": EndorsementKind.WAIVER_OF_SUBROGATION.value, "form_number": "WC 00 03 13"}]},
    ]


def seed_demo(today: date | None = None) -> dict:
    """Create the demo data if missing (idempotent) and return what exists, for printing. Programs,
    insurers, customers and policies go through the same services as the pages and the API."""
    from app.customers import policies, records
    from app.models.base import utcnow

    today = today or date.today()
    now = utcnow()
    programs = {}
    for name, automation, peo in DEMO_PROGRAMS:
        program = db.session.scalar(sa.select(Program).filter_by(name=name))
        programs[name] = program or records.create_program(
            {"name": name, "automation_enabled": automation, "peo": peo}, actor=None, now=now)
    insurers = _insurers(now)

    users_out = []
    for email, name, role in DEMO_STAFF:
        _ensure_user(email, name, role)
        users_out.append({"email": email, "name": name, "role": str(role), "password": DEMO_PASSWORD})

    customers_out = []
    for index, (name, status, method, card, program_name, user_email) in enumerate(DEMO_CUSTOMERS):
        customer = db.session.scalar(sa.select(Customer).filter_by(name=name))
        if customer is None:
            slug = name.split()[0].lower()
            customer = records.create_customer({
                "external_id": f"DEMO-{index + 1:04d}", "name": name, "status": status.value,
                "status_reason": "" if status is CustomerStatus.ACTIVE else "Demo: premium payment overdue.",
                "payment_method": method.value, "program_id": programs[program_name].id,
                "contact_name": f"{name.split()[0]} Office", "contact_email": f"office@{slug}.demo",
                "contact_phone": f"+1555010{index:04d}", "address": f"{100 + index * 11} Main Street",
                "city": "Austin", "state": "TX", "zip": f"7870{index % 10}",
            }, actor=None, now=now)
            if card:  # the sandbox gateway's token for a documented test number
                customer.card_token = sandbox_token(card)
                customer.card_last4 = card[-4:]
                customer.card_brand = "Amex" if method is PaymentMethod.AMEX else "Visa"
                customer.card_exp_month, customer.card_exp_year = 12, today.year + 3
            for values in _policies_for(customer, today, insurers):
                policies.create_policy(customer, values, actor=None, now=now)
        if user_email:
            _ensure_user(user_email, f"{name.split()[0]} office", Role.CUSTOMER, customer_id=customer.id)
            users_out.append({"email": user_email, "name": f"{name.split()[0]} office", "role": "customer",
                              "password": DEMO_PASSWORD, "customer_id": customer.id})
        customers_out.append({
            "id": customer.id, "name": customer.name, "status": str(customer.status),
            "payment_method": str(customer.payment_method),
            "card_outcome": card_outcome(customer.card_token),
            "automation_enabled": customer.automation_enabled,
        })
    _seed_agency()
    for hook in SEED_HOOKS:
        hook(today)
    db.session.commit()
    return {"users": users_out, "customers": customers_out}


DEMO_AGENCY = {
    "name": "Lone Star Risk Partners", "contact_name": "Morgan Certificates", "phone": "(512) 555-0142",
    "email": "certificates@lonestar-risk.demo", "address": "400 Congress Ave, Suite 1200", "city": "Austin",
    "state": "TX", "zip_code": "78701", "authorized_representative": "Morgan Lee, CIC",
}


def _seed_agency() -> None:
    """Demo producer details for the certificates, unless an admin has set them already."""
    from app.insurance.agency import AGENCY_KEY, save_agency
    from app.models import Setting

    if db.session.get(Setting, AGENCY_KEY) is None:
        save_agency(DEMO_AGENCY)


# The demo-data steps after the customers, in order; filled in create_app (app/__init__.py).
SEED_HOOKS: list = []


def _ensure_user(email: str, name: str, role: Role, customer_id: int | None = None) -> User:
    user = db.session.scalar(sa.select(User).filter_by(email=email))
    if user is None:
        user = User(email=email, name=name, role=role, customer_id=customer_id)
        user.set_password(DEMO_PASSWORD)
        db.session.add(user)
        db.session.flush()
    return user


def create_api_token(user: User, name: str = "") -> str:
    token = ApiToken.new_token()
    db.session.add(ApiToken(user=user, token_hash=hash_token(token), name=name))
    return token


def print_logins(data: dict) -> None:
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD})")
    for user in data["users"]:
        click.echo(f"  {user['role']:<10} {user['email']}")


def register_cli(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--json", "as_json", is_flag=True, help="Print users and customers as one JSON object.")
    @with_appcontext
    def seed_demo_command(as_json: bool):
        """Create demo staff, customers, customer users and policies (safe to run again)."""
        data = seed_demo()
        if as_json:
            click.echo(json.dumps(data, indent=2))
        else:
            print_logins(data)

    @app.cli.command("seed-if-empty")
    @click.option("--demo/--no-demo", default=True, envvar="DEMO_DATA", show_default=True,
                  help="Load the demo data (env DEMO_DATA=0 turns it off).")
    @with_appcontext
    def seed_if_empty_command(demo: bool):
        """Seed demo data only when the database has no users; print the demo logins. Without demo data
        (DEMO_DATA=0), print how to create the first admin instead."""
        empty = db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        if not demo:
            if empty:
                click.echo("Empty database, no demo data (DEMO_DATA=0). Create the first admin:")
                click.echo("  FLASK_APP=wsgi .venv/bin/flask create-user --email you@example.com --role admin")
                click.echo("then sign in: the dashboard lists what to set up next (agency details, a program, "
                           "an insurer, a customer, a policy).")
            return
        if empty:
            click.echo("Empty database: loading demo data.")
        print_logins(seed_demo())

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--name", default="")
    @click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
    @click.option("--customer-id", type=int, default=None, help="Required for the customer role.")
    @click.password_option()
    @with_appcontext
    def create_user_command(email, name, role, customer_id, password):
        """Create a staff or customer user."""
        from app.auth.services import UserError, create_user
        from app.models.base import utcnow

        try:
            user = create_user(email=email, name=name, role=Role(role), password=password,
                               customer_id=customer_id, actor=None, now=utcnow())
        except UserError as exc:
            raise click.UsageError(str(exc)) from exc
        db.session.commit()
        click.echo(f"Created {user.role} {user.email} (id {user.id}).")

    @app.cli.command("create-api-token")
    @click.option("--email", required=True, help="The user the token acts as.")
    @click.option("--name", default="", help="A label for the token.")
    @with_appcontext
    def create_api_token_command(email, name):
        """Print a new bearer token for the JSON API (only its hash is stored)."""
        user = db.session.scalar(sa.select(User).filter_by(email=email))
        if user is None:
            raise click.UsageError(f"No user with e-mail {email}.")
        token = create_api_token(user, name)
        db.session.commit()
        click.echo(f"Token for {email} ({user.role}); it is shown once:")
        click.echo(token)

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
    @click.option("--queues", default="email,pdf,default")
    @with_appcontext
    def worker_command(burst: bool, queues: str):
        """Run an RQ worker with the scheduler, inside the app context."""
        from app.jobs import run_worker

        run_worker([q.strip() for q in queues.split(",") if q.strip()], burst=burst)

    @app.cli.command("sweep")
    @with_appcontext
    def sweep_command():
        """Run the periodic sweep once (expiry, re-delivery, cleanup) and print what it did."""
        from app.models.base import utcnow
        from app.sweeper import run_sweep

        results = run_sweep(utcnow())
        db.session.commit()
        click.echo(json.dumps(results))

    @app.cli.command("check-services")
    @with_appcontext
    def check_services_command():
        """Fail loudly unless the database and Redis answer and the periodic sweep keeps running."""
        db.session.execute(sa.text("SELECT 1"))
        click.echo(f"database ok: {db.engine.url.render_as_string(hide_password=True)}")
        from app.extensions import jobs
        from app.sweeper import sweep_health

        jobs.redis.ping()
        click.echo(f"redis ok: {current_app.config['REDIS_URL']}")
        healthy, sentence = sweep_health()
        if not healthy:
            raise click.ClickException(f"sweep stale: {sentence}; is a worker (flask worker) running?")
        click.echo(f"sweep ok: {sentence}")
