"""Holders and additional interests: add (shared holders), edit, unlink, flags, transitions."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.customers import holders
from app.enums import (
    GENERATION_TRANSITIONS,
    IMPORT_TRANSITIONS,
    GenerationStatus,
    ImportStatus,
    can_transition,
)
from app.extensions import db
from app.models import Activity, CustomerHolder, Holder

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
NORTHWIND = {"name": "Northwind Builders Inc", "email": "certs@northwind.example.com", "phone": "512-555-0199",
             "address": "500 Congress Ave", "city": "Austin", "state": "tx", "zip_code": "78701"}


def test_add_links_one_shared_holder_to_many_customers(app, make):
    a, b = make.customer(), make.customer()
    first = holders.add_holder(a, {**NORTHWIND, "additional_insured": True}, actor=None, now=NOW)
    second = holders.add_holder(b, {**NORTHWIND, "name": "NORTHWIND builders, inc", "email": ""}, actor=None,
                                now=NOW)
    db.session.commit()
    assert first.holder_id == second.holder_id
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 1
    assert first.additional_insured and not second.additional_insured
    holder = first.holder
    assert (holder.state, holder.phone, holder.email) == ("TX", "(512) 555-0199", "certs@northwind.example.com")
    assert db.session.scalar(sa.select(Activity.message).filter_by(action="holder_linked", customer_id=a.id)) \
        == "Northwind Builders Inc added to additional interests (new holder)"


def test_add_twice_to_the_same_customer_is_refused(app, make):
    a = make.customer()
    holders.add_holder(a, NORTHWIND, actor=None, now=NOW)
    with pytest.raises(holders.HolderError, match="already an additional interest"):
        holders.add_holder(a, NORTHWIND, actor=None, now=NOW)


@pytest.mark.parametrize("field, value, fragment", [
    ("name", "", "required"),
    ("state", "ZZ", "two-letter"),
    ("zip_code", "123", "5-digit"),
    ("email", "nope", "e-mail"),
    ("phone", "12", "10-digit"),
])
def test_bad_holder_values_are_refused_per_field(app, make, field, value, fragment):
    a = make.customer()
    with pytest.raises(holders.HolderError) as err:
        holders.add_holder(a, {**NORTHWIND, field: value}, actor=None, now=NOW)
    assert fragment in err.value.errors[field]
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0


def test_edit_changes_holder_and_flags_and_refuses_a_clash(app, make):
    a = make.customer()
    link = holders.add_holder(a, NORTHWIND, actor=None, now=NOW)
    other = holders.add_holder(a, {**NORTHWIND, "name": "Other Co"}, actor=None, now=NOW)
    holders.edit_link(link, {**NORTHWIND, "city": "Round Rock", "zip_code": "78664", "waiver_of_subrogation": True},
                      actor=None, now=NOW)
    assert link.holder.city == "Round Rock" and link.waiver_of_subrogation and not link.additional_insured
    assert "round rock" in link.holder.normalized_key
    with pytest.raises(holders.HolderError, match="Another holder"):
        holders.edit_link(other, {**NORTHWIND, "city": "Round Rock", "zip_code": "78664"}, actor=None, now=NOW)


def test_unlink_keeps_the_holder(app, make):
    a = make.customer()
    link = holders.add_holder(a, NORTHWIND, actor=None, now=NOW)
    holders.unlink_holder(link, actor=None, now=NOW)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 1
    assert holders.linked_holders(a.id) == []


@pytest.mark.parametrize("current", list(ImportStatus))
@pytest.mark.parametrize("target", list(ImportStatus))
def test_import_transition_table(current, target):
    allowed = {
        (ImportStatus.VALIDATING, ImportStatus.PREVIEW), (ImportStatus.VALIDATING, ImportStatus.FAILED),
        (ImportStatus.VALIDATING, ImportStatus.CANCELLED), (ImportStatus.PREVIEW, ImportStatus.IMPORTING),
        (ImportStatus.PREVIEW, ImportStatus.CANCELLED), (ImportStatus.IMPORTING, ImportStatus.DONE),
        (ImportStatus.IMPORTING, ImportStatus.FAILED),
    }
    assert can_transition(IMPORT_TRANSITIONS, current, target) == ((current, target) in allowed)


@pytest.mark.parametrize("current", list(GenerationStatus))
@pytest.mark.parametrize("target", list(GenerationStatus))
def test_generation_transition_table(current, target):
    allowed = {
        (GenerationStatus.QUEUED, GenerationStatus.RUNNING), (GenerationStatus.QUEUED, GenerationStatus.FAILED),
        (GenerationStatus.RUNNING, GenerationStatus.DONE), (GenerationStatus.RUNNING, GenerationStatus.FAILED),
        (GenerationStatus.DONE, GenerationStatus.EXPIRED),
    }
    assert can_transition(GENERATION_TRANSITIONS, current, target) == ((current, target) in allowed)


def test_seed_demo_links_a_dozen_holders_and_is_idempotent(app):
    from app.cli import SEED_HOOKS, seed_demo

    assert holders.seed_demo_holders in SEED_HOOKS
    seed_demo()
    counts = (db.session.scalar(sa.select(sa.func.count(Holder.id))),
              db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))))
    seed_demo()
    assert counts[0] == 12 and counts[1] >= 12
    assert (db.session.scalar(sa.select(sa.func.count(Holder.id))),
            db.session.scalar(sa.select(sa.func.count(CustomerHolder.id)))) == counts
    first = db.session.scalar(sa.select(sa.func.min(CustomerHolder.customer_id)))
    assert len(holders.linked_holders(first)) == 8
