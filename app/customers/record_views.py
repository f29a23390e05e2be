"""Staff pages for the business's own records: new / edit customer, status with a reason, and the
customer's Policies tab (add, edit, cancel, renew, endorsements). Thin: parse the form, call
``app.customers.records`` / ``app.customers.policies``, pick the page or partial, commit."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from app.auth.access import requires
from app.customers import bp, records
from app.customers import policies as policy_service
from app.customers.records import RecordInvalid
from app.enums import CoverageLine, CustomerStatus, EndorsementKind, Language, PaymentMethod
from app.extensions import db
from app.htmx import hx_redirect, hx_trigger, is_htmx, render_page_or_partial
from app.models import Customer, Endorsement, Insurer, Policy, Program
from app.models.base import utcnow
from app.models.policies import COVERAGE_FIELDS, COVERAGE_LABELS, LIMIT_KEYS, LIMIT_LABELS
from app.validation import parse_int

ID = "int(max=2147483647)"
CUSTOMER_FORM_FIELDS = ("external_id", "name", "contact_name", "contact_email", "contact_phone", "address", "city",
                        "state", "zip", "payment_method", "program_id", "language")
ENDORSEMENT_ROWS = 3


def _customer(customer_id: int) -> Customer:
    return db.session.get(Customer, customer_id) or abort(404)


def _policy(customer: Customer, policy_id: int) -> Policy:
    policy = db.session.get(Policy, policy_id)
    if policy is None or policy.customer_id != customer.id:
        abort(404)
    return policy


def _choices() -> dict:
    return {
        "programs": db.session.scalars(sa.select(Program).order_by(Program.name)).all(),
        "payment_methods": list(PaymentMethod), "languages": list(Language), "statuses": list(CustomerStatus),
    }


# -- customers ------------------------------------------------------------------------------------------

def _customer_form(page: str, *, customer: Customer | None, values: dict, errors: dict, status: int = 200):
    return render_page_or_partial(page, "customers/_customer_form_part.html", status=status, customer=customer,
                                  values=values, errors=errors, **_choices())


@bp.route("/new")
@requires("manage_customers")
def new_customer():
    return _customer_form("customers/customer_new.html", customer=None, values={"language": "en",
                                                                                 "payment_method": "ach"}, errors={})


@bp.route("/new", methods=["POST"])
@requires("manage_customers")
def create_customer():
    values = {k: request.form.get(k, "") for k in CUSTOMER_FORM_FIELDS}
    try:
        customer = records.create_customer(values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _customer_form("customers/customer_new.html", customer=None, values=values, errors=exc.errors,
                              status=422)
    db.session.commit()
    flash(f"Customer {customer.name} created.", "success")
    return hx_redirect(url_for("customers.detail", customer_id=customer.id))


def _edit_values(customer: Customer) -> dict:
    values = records.customer_values(customer)
    values["program_id"] = values["program_id"] or ""
    return values


@bp.route(f"/<{ID}:customer_id>/edit")
@requires("manage_customers")
def edit_customer(customer_id: int):
    customer = _customer(customer_id)
    return _customer_form("customers/customer_edit.html", customer=customer, values=_edit_values(customer),
                          errors={})


@bp.route(f"/<{ID}:customer_id>/edit", methods=["POST"])
@requires("manage_customers")
def update_customer(customer_id: int):
    customer = _customer(customer_id)
    values = {k: request.form.get(k, "") for k in CUSTOMER_FORM_FIELDS}
    try:
        changes = records.update_customer(customer, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _customer_form("customers/customer_edit.html", customer=customer, values=values, errors=exc.errors,
                              status=422)
    db.session.commit()
    flash(f"Saved: {', '.join(c[0] for c in changes)}." if changes else "Nothing changed.", "success")
    return hx_redirect(url_for("customers.detail", customer_id=customer.id))


@bp.route(f"/<{ID}:customer_id>/status", methods=["POST"])
@requires("manage_customers")
def change_customer_status(customer_id: int):
    """Active / inactive / suspended with a reason; the reason shows in the timeline and in refusals."""
    customer = _customer(customer_id)
    status, reason = request.form.get("status", ""), request.form.get("status_reason", "")
    try:
        records.change_status(customer, status, reason, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return render_page_or_partial("customers/customer_edit.html", "customers/_customer_status_part.html",
                                      status=422, customer=customer, values=_edit_values(customer),
                                      errors={}, status_errors=exc.errors,
                                      status_form={"status": status, "status_reason": reason}, **_choices())
    db.session.commit()
    flash(f"{customer.name} is now {customer.status.value}.", "success")
    return hx_redirect(url_for("customers.detail", customer_id=customer.id))


# -- policies -------------------------------------------------------------------------------------------

def _policies_page(customer: Customer, status: int = 200, **extra):
    return render_page_or_partial("customers/policies.html", "customers/_policies_part.html", status=status,
                                  customer=customer, policies=_in_print_order(customer.policies),
                                  today=utcnow().date(),
                                  kinds=list(EndorsementKind), errors=extra.pop("errors", {}),
                                  form=extra.pop("form", {}), **extra)


def _in_print_order(policies: list[Policy]) -> list[Policy]:
    """The lines in the certificate's order, newest term first within a line."""
    order = {line: i for i, line in enumerate(CoverageLine)}
    return sorted(policies, key=lambda p: (order[p.line], -p.effective_date.toordinal(), -p.id))


@bp.route(f"/<{ID}:customer_id>/policies")
@requires("view_dashboard")
def policies(customer_id: int):
    return _policies_page(_customer(customer_id))


def _policy_form_values(form) -> dict:
    """The policy form as service values: limits / coverage boxes of the chosen line, endorsement rows
    with anything typed (a row left completely empty is no endorsement)."""
    line = form.get("line", "")
    values = {k: form.get(k, "") for k in ("line", "insurer_id", "policy_number", "effective_date",
                                            "expiry_date", "description")}
    try:
        chosen = CoverageLine(line)
    except ValueError:
        chosen = None
    if chosen is not None:
        values["limits"] = {k: form.get(f"limit_{k}", "") for k in LIMIT_KEYS[chosen]}
        if chosen is CoverageLine.OTHER:
            for i in range(3):
                name, amount = form.get(f"other_limit_name_{i}", "").strip(), form.get(f"other_limit_{i}", "")
                if name or amount.strip():
                    values["limits"][name or f"limit_{i + 1}"] = amount
        values["coverage"] = {k: (form.get(f"coverage_{k}", "") if spec is not bool else
                                  ("1" if form.get(f"coverage_{k}") else "0"))
                              for k, spec in COVERAGE_FIELDS[chosen].items()}
    endorsements = []
    for i in range(parse_int(form.get("endorsement_rows"), low=0, high=50, default=ENDORSEMENT_ROWS)):
        row = {k: form.get(f"endorsement_{i}_{k}", "") for k in ("kind", "form_number", "holder_name")}
        if any(v.strip() for v in row.values()):
            endorsements.append(row)
    values["endorsements"] = endorsements
    return values


POLICY_CONFLICT = ("Someone else saved this policy at the same moment, so nothing of yours was saved. Your "
                   "values are still in the form: check the policy list in another tab, then save again.")


def _policy_form(customer: Customer, *, mode: str, policy: Policy | None, values: dict, errors: dict,
                 status: int = 200, conflict: str = ""):
    try:
        line = CoverageLine(values.get("line") or "")
    except ValueError:
        line = None
    rows = list(values.get("endorsements") or [])
    rows += [{"kind": "", "form_number": "", "holder_name": ""}] * max(ENDORSEMENT_ROWS - len(rows), 1)
    return render_page_or_partial(
        "customers/policy_form.html", "customers/_policy_form_part.html", status=status, customer=customer,
        policy=policy, mode=mode, values=values, errors=errors, conflict=conflict, line=line, lines=list(CoverageLine),
        insurers=db.session.scalars(sa.select(Insurer).order_by(Insurer.name)).all(),
        limit_keys=LIMIT_KEYS.get(line, ()), limit_labels=LIMIT_LABELS,
        coverage_fields=COVERAGE_FIELDS.get(line, {}), coverage_labels=COVERAGE_LABELS,
        bool_keys={k for k, spec in COVERAGE_FIELDS.get(line, {}).items() if spec is bool},
        endorsement_rows=rows, kinds=list(EndorsementKind), action=_form_action(customer, mode, policy))


def _form_action(customer: Customer, mode: str, policy: Policy | None) -> str:
    if mode == "edit":
        return url_for("customers.update_policy", customer_id=customer.id, policy_id=policy.id)
    if mode == "renew":
        return url_for("customers.renew_policy", customer_id=customer.id, policy_id=policy.id)
    return url_for("customers.create_policy", customer_id=customer.id)


def _stored_values(policy: Policy) -> dict:
    values = policy_service.policy_values(policy)
    values["insurer_id"] = str(policy.insurer_id)
    values["endorsements"] = [{"kind": e["kind"], "form_number": e["form_number"],
                               "holder_name": e["holder_name"] or ""} for e in values["endorsements"]]
    return values


@bp.route(f"/<{ID}:customer_id>/policies/new")
@requires("manage_customers")
def new_policy(customer_id: int):
    """The form; choosing a line (``?line=``) shows that line's limits and coverage boxes, keeping what
    was typed (the line picker re-requests this page with the form's values)."""
    customer = _customer(customer_id)
    values = _policy_form_values(request.args) if request.args else {"line": ""}
    return _policy_form(customer, mode="new", policy=None, values=values, errors={})


@bp.route(f"/<{ID}:customer_id>/policies/new", methods=["POST"])
@requires("manage_customers")
def create_policy(customer_id: int):
    customer = _customer(customer_id)
    values = _policy_form_values(request.form)
    try:
        policy = policy_service.create_policy(customer, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _policy_form(customer, mode="new", policy=None, values=values, errors=exc.errors, status=422)
    db.session.commit()
    flash(f"Policy {policy.policy_number} added.", "success")
    return hx_redirect(url_for("customers.policies", customer_id=customer.id))


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/edit")
@requires("manage_customers")
def edit_policy(customer_id: int, policy_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    values = _policy_form_values(request.args) if request.args else _stored_values(policy)
    return _policy_form(customer, mode="edit", policy=policy, values=values, errors={})


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/edit", methods=["POST"])
@requires("manage_customers")
def update_policy(customer_id: int, policy_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    values = _policy_form_values(request.form)
    try:
        changes = policy_service.update_policy(policy, values, actor=current_user, now=utcnow())
        db.session.commit()
    except RecordInvalid as exc:
        db.session.rollback()
        return _policy_form(customer, mode="edit", policy=policy, values=values, errors=exc.errors, status=422)
    except StaleDataError:  # saved by someone else at the same moment: keep what was typed, say so
        db.session.rollback()
        return _policy_form(customer, mode="edit", policy=_policy(customer, policy_id), values=values, errors={},
                            status=409, conflict=POLICY_CONFLICT)
    flash(f"Policy {policy.policy_number} saved." if changes else "Nothing changed.", "success")
    return hx_redirect(url_for("customers.policies", customer_id=customer.id))


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/renew")
@requires("manage_customers")
def renew_policy_form(customer_id: int, policy_id: int):
    """The renewal form starts from the old term (insurer, line, limits, boxes, endorsements), with the
    new number and dates to fill in."""
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    values = _stored_values(policy)
    values.update(policy_number="", effective_date=policy.expiry_date.isoformat(), expiry_date="")
    return _policy_form(customer, mode="renew", policy=policy, values=values, errors={})


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/renew", methods=["POST"])
@requires("manage_customers")
def renew_policy(customer_id: int, policy_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    values = _policy_form_values(request.form)
    try:
        renewal = policy_service.renew_policy(policy, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _policy_form(customer, mode="renew", policy=policy, values=values, errors=exc.errors, status=422)
    db.session.commit()
    flash(f"Policy {policy.policy_number} renewed as {renewal.policy_number}.", "success")
    return hx_redirect(url_for("customers.policies", customer_id=customer.id))


def _policies_done(customer: Customer, toast: str):
    db.session.commit()
    if not is_htmx():
        flash(toast, "success")
        return redirect(url_for("customers.policies", customer_id=customer.id), code=303)
    return hx_trigger(_policies_page(customer), "policies-changed", toast=toast)


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/cancel", methods=["POST"])
@requires("manage_customers")
def cancel_policy(customer_id: int, policy_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    on = request.form.get("cancelled_on", "")
    try:
        policy_service.cancel_policy(policy, on, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        return _policies_page(customer, status=422, errors={policy.id: exc.errors}, form={policy.id: {
            "cancelled_on": on}})
    return _policies_done(customer, f"Policy {policy.policy_number} cancelled from {policy.cancelled_on:%m/%d/%Y}.")


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/endorsements", methods=["POST"])
@requires("manage_customers")
def add_endorsement(customer_id: int, policy_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    values = {k: request.form.get(k, "") for k in ("kind", "form_number", "holder_name")}
    try:
        endorsement = policy_service.add_endorsement(policy, values, actor=current_user, now=utcnow())
    except RecordInvalid as exc:
        db.session.rollback()
        errors = {k.rsplit(".", 1)[-1]: v for k, v in exc.errors.items()}
        return _policies_page(customer, status=422, errors={policy.id: errors}, form={policy.id: values})
    return _policies_done(customer, f"{endorsement.label} added to {policy.policy_number}.")


@bp.route(f"/<{ID}:customer_id>/policies/<{ID}:policy_id>/endorsements/<{ID}:endorsement_id>/remove",
          methods=["POST"])
@requires("manage_customers")
def remove_endorsement(customer_id: int, policy_id: int, endorsement_id: int):
    customer = _customer(customer_id)
    policy = _policy(customer, policy_id)
    endorsement = db.session.get(Endorsement, endorsement_id)
    if endorsement is None or endorsement.policy_id != policy.id:
        abort(404)
    label = endorsement.label
    policy_service.remove_endorsement(endorsement, actor=current_user, now=utcnow())
    return _policies_done(customer, f"{label} removed from {policy.policy_number}.")
