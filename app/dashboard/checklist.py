"""The first-run checklist on the staff dashboard: what an empty instance still lacks before it can
issue a certificate (agency details, a program, an insurer, a customer, a policy)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import url_for

from app.auth.access import can
from app.extensions import db
from app.models import Customer, Insurer, Policy, Program, Setting


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    why: str
    done: bool
    url: str | None  # None when the signed-in role may not do it


def _exists(model) -> bool:
    return db.session.execute(sa.select(model.id).limit(1)).first() is not None


def first_run_steps() -> list[Step]:
    """Every step with whether it is done; the dashboard shows them until all are done."""
    from app.insurance.agency import AGENCY_KEY

    first_customer = db.session.scalar(sa.select(Customer.id).order_by(Customer.id).limit(1))
    return [
        Step("agency", "Agency details", "printed as the producer on every certificate",
             db.session.get(Setting, AGENCY_KEY) is not None,
             url_for("admin.agency") if can("configure") else None),
        Step("program", "A program", "decides whether a customer's requests are issued automatically",
             _exists(Program), url_for("admin.programs") if can("manage_programs") else None),
        Step("insurer", "An insurer", "policies pick their insurer from this list",
             _exists(Insurer), url_for("admin.insurers") if can("manage_programs") else None),
        Step("customer", "A customer", "the business that requests certificates",
             first_customer is not None, url_for("customers.new_customer") if can("manage_customers") else None),
        Step("policy", "A policy", "what the certificates list; add it on the customer's Policies tab",
             _exists(Policy),
             (url_for("customers.new_policy", customer_id=first_customer) if first_customer
              else url_for("customers.new_customer")) if can("manage_customers") else None),
    ]


def first_run_checklist() -> list[Step] | None:
    """The steps while any is missing; None once the instance has everything (the box disappears)."""
    steps = first_run_steps()
    return None if all(s.done for s in steps) else steps
