"""The business's own records: customers, programs and insurers (create, edit, change status).

Plain functions with explicit arguments (``actor``, ``now``); the caller commits. Every face (staff pages,
JSON API, CSV import) passes the values it received, keyed by the public field names (``zip``, ``peo``,
``naic``, ...), as text or JSON values. ``clean_*`` check everything first and raise ``RecordInvalid``
with one message per field, so a refused submission stores nothing. Every change writes an activity row
naming the fields changed, old -> new.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.activity import record
from app.enums import CustomerStatus, Language, PaymentMethod
from app.extensions import db
from app.models import Customer, Insurer, Program, User
from app.validation import (
    InvalidInput,
    has_control_chars,
    normalize_email,
    normalize_phone,
    normalize_state,
    normalize_zip,
    parse_id,
    strip_bidi,
)


class RecordInvalid(Exception):
    """Submitted values were refused; ``errors`` maps each public field name to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RecordNotFound(Exception):
    """A referenced row does not exist."""


# -- shared value checks ---------------------------------------------------------------------------

def text_value(value: Any, label: str, max_length: int, *, required: bool = False) -> str:
    """Trimmed text without control or bidi-override characters; raises InvalidInput with a message."""
    if value is None:
        value = ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"{label} must be text.")
    text = strip_bidi(str(value)).strip()
    if required and not text:
        raise InvalidInput(f"{label} is required.")
    if has_control_chars(text):
        raise InvalidInput(f"{label} contains control characters.")
    if len(text) > max_length:
        raise InvalidInput(f"{label} is too long (at most {max_length} characters, got {len(text)}).")
    return text


def bool_value(value: Any, label: str) -> bool:
    """A tick box: JSON true/false, or form / CSV text (on, yes, true, 1 / off, no, false, 0, empty)."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("", "0", "false", "no", "n", "off"):
        return False
    raise InvalidInput(f"{label} must be yes or no.")


def choice_value(value: Any, enum_cls, label: str):
    text = str(value if value is not None else "").strip().lower()
    try:
        return enum_cls(text)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_cls)
        raise InvalidInput(f"{label} must be one of: {allowed}.") from None


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(getattr(value, "value", value))


def describe_changes(changes: list[tuple[str, Any, Any]]) -> str:
    """"Label: old → new" for each change, one per line (the activity row's message)."""
    return "\n".join(f"{label}: {_show(old)} → {_show(new)}" for label, old, new in changes)


def apply_changes(obj, clean: dict[str, Any], labels: dict[str, str]) -> list[tuple[str, Any, Any]]:
    """Set each attribute whose value differs; return (label, old, new) for the ones that changed."""
    changes = []
    for attr, new in clean.items():
        old = getattr(obj, attr)
        if old != new:
            setattr(obj, attr, new)
            changes.append((labels.get(attr, attr), old, new))
    return changes


# -- customers --------------------------------------------------------------------------------------

# public field name -> (model attribute, label)
CUSTOMER_FIELDS: dict[str, tuple[str, str]] = {
    "external_id": ("external_id", "Customer number"),
    "name": ("name", "Name"),
    "contact_name": ("contact_name", "Contact name"),
    "contact_email": ("contact_email", "Contact e-mail"),
    "contact_phone": ("contact_phone", "Contact phone"),
    "address": ("address", "Address"),
    "city": ("city", "City"),
    "state": ("state", "State"),
    "zip": ("zip_code", "ZIP code"),
    "status": ("status", "Status"),
    "status_reason": ("status_reason", "Status reason"),
    "payment_method": ("payment_method", "Payment method"),
    "program_id": ("program_id", "Program"),
    "language": ("language", "Language"),
}
CUSTOMER_LABELS = {attr: label for attr, label in CUSTOMER_FIELDS.values()}
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def customer_values(customer: Customer) -> dict[str, Any]:
    """The customer's fields under their public names (forms, API answers, CSV rows)."""
    return {
        "id": customer.id, "external_id": customer.external_id or "", "name": customer.name,
        "contact_name": customer.contact_name, "contact_email": customer.contact_email,
        "contact_phone": customer.contact_phone, "address": customer.address, "city": customer.city,
        "state": customer.state, "zip": customer.zip_code, "status": customer.status.value,
        "status_reason": customer.status_reason or "", "payment_method": customer.payment_method.value,
        "program_id": customer.program_id, "language": customer.language.value,
    }


def clean_customer(values: dict[str, Any], *, existing: Customer | None = None) -> dict[str, Any]:
    """Check a customer's values (all of them for a new customer; only those given for an edit) and
    return them keyed by model attribute. Decisions:

    - ``external_id`` (the customer number) and ``name`` are required and the number is unique; it may
      be changed but never blanked, since imports and integrations find the customer by it.
    - Contact e-mail, phone, state and ZIP are optional, but when given must be valid (phone and ZIP in
      US formats, stored normalised).
    - ``status`` other than active needs a ``status_reason`` (it is shown in every refusal).
    - An unknown ``program_id`` is a message on that field, never a foreign-key error.
    - Unknown field names are refused, so a misspelt field is never silently dropped.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    unknown = sorted(k for k in values if k not in CUSTOMER_FIELDS and k != "id")
    for key in unknown:
        errors[key] = "Unknown field."
    creating = existing is None
    given = {k: v for k, v in values.items() if k in CUSTOMER_FIELDS}
    if creating:
        for key in ("external_id", "name"):
            given.setdefault(key, "")

    def check(key: str, fn):
        if key not in given:
            return
        attr, label = CUSTOMER_FIELDS[key]
        try:
            clean[attr] = fn(given[key], label)
        except InvalidInput as exc:
            errors[key] = str(exc)

    def external(value, label):
        text = text_value(value, label, 64, required=True)
        if not EXTERNAL_ID_RE.match(text):
            raise InvalidInput(f"{label} may contain letters, digits and . _ / - only.")
        return text

    def optional(fn, max_length):
        def run(value, label):
            text = text_value(value, label, max_length)
            return fn(text) if text else ""
        return run

    def program(value, label):
        if value in (None, ""):
            return None
        program_id = parse_id(value)
        if program_id is None or db.session.get(Program, program_id) is None:
            raise InvalidInput(f"Unknown program {str(value)[:20]!r}: pick one from the program list.")
        return program_id

    check("external_id", external)
    check("name", lambda v, label: text_value(v, label, 200, required=True))
    check("contact_name", lambda v, label: text_value(v, label, 120))
    check("contact_email", optional(normalize_email, 254))
    check("contact_phone", optional(normalize_phone, 32))
    check("address", lambda v, label: text_value(v, label, 200))
    check("city", lambda v, label: text_value(v, label, 100))
    check("state", optional(normalize_state, 40))
    check("zip", optional(normalize_zip, 40))
    check("status", lambda v, label: choice_value(v, CustomerStatus, label))
    check("status_reason", lambda v, label: text_value(v, label, 300))
    check("payment_method", lambda v, label: choice_value(v, PaymentMethod, label))
    check("program_id", program)
    check("language", lambda v, label: choice_value(v or "en", Language, label))

    if "external_id" in clean and "external_id" not in errors:
        taken = db.session.scalar(sa.select(Customer.id).where(Customer.external_id == clean["external_id"]))
        if taken is not None and (creating or taken != existing.id):
            errors["external_id"] = f"Customer number {clean['external_id']} is already used by customer #{taken}."
    status = clean.get("status", existing.status if existing else CustomerStatus.ACTIVE)
    reason = clean.get("status_reason", existing.status_reason if existing else "")
    touched = "status" in clean or "status_reason" in clean
    if touched and "status" not in errors and status is not CustomerStatus.ACTIVE and not (reason or "").strip():
        errors["status_reason"] = f"Say why the customer is {status.value}: the reason is shown when it is refused."
    if errors:
        raise RecordInvalid(errors)
    return clean


def create_customer(values: dict[str, Any], *, actor: User | None, now: datetime) -> Customer:
    """A new customer from checked values (status defaults to active, language to English, payment to
    ACH); one activity row lists every value it was created with."""
    clean = clean_customer(values)
    clean.setdefault("status", CustomerStatus.ACTIVE)
    clean.setdefault("language", Language.EN)
    clean.setdefault("payment_method", PaymentMethod.ACH)
    customer = Customer(created_at=now, **clean)
    db.session.add(customer)
    db.session.flush()
    shown = [(CUSTOMER_LABELS[attr], None, value) for attr, value in clean.items() if value not in (None, "")]
    record("customer", customer.id, "customer_created", actor=actor, customer_id=customer.id, now=now,
           message=f"Customer {customer.name} created.\n" + describe_changes(shown))
    return customer


def update_customer(customer: Customer, values: dict[str, Any], *, actor: User | None,
                    now: datetime) -> list[tuple[str, Any, Any]]:
    """Change the given fields; returns the changes (none -> no activity row). A status change goes
    through the same path as ``change_status``: reactivating clears the old reason unless a new one is
    given, and the customer may request certificates again at once (eligibility reads the status)."""
    clean = clean_customer(values, existing=customer)
    if clean.get("status") is CustomerStatus.ACTIVE and "status_reason" not in clean:
        clean["status_reason"] = ""
    changes = apply_changes(customer, clean, CUSTOMER_LABELS)
    if changes:
        status_changed = any(label == CUSTOMER_LABELS["status"] for label, _, _ in changes)
        record("customer", customer.id, "customer_status_changed" if status_changed else "customer_updated",
               actor=actor, customer_id=customer.id, now=now, message=describe_changes(changes))
        db.session.flush()
    return changes


def change_status(customer: Customer, status: CustomerStatus | str, reason: str, *, actor: User | None,
                  now: datetime) -> list[tuple[str, Any, Any]]:
    """Set active / inactive / suspended with a reason (required unless active); the reason is written to
    the timeline and shown in every certificate refusal while the customer is not active."""
    return update_customer(customer, {"status": status, "status_reason": reason}, actor=actor, now=now)


# -- programs ---------------------------------------------------------------------------------------

PROGRAM_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("name", "Name"),
    "automation_enabled": ("automation_enabled", "Automation enabled"),
    "peo": ("is_peo", "PEO-style"),
}
PROGRAM_LABELS = {attr: label for attr, label in PROGRAM_FIELDS.values()}


def program_values(program: Program) -> dict[str, Any]:
    return {"id": program.id, "name": program.name, "automation_enabled": program.automation_enabled,
            "peo": program.is_peo}


def clean_program(values: dict[str, Any], *, existing: Program | None = None) -> dict[str, Any]:
    """Name required and unique (ignoring case); the two flags are yes / no (missing = no on create)."""
    errors: dict[str, str] = {k: "Unknown field." for k in values if k not in PROGRAM_FIELDS and k != "id"}
    clean: dict[str, Any] = {}
    given = dict(values)
    if existing is None:
        given.setdefault("name", "")
        given.setdefault("automation_enabled", False)
        given.setdefault("peo", False)
    for key, (attr, label) in PROGRAM_FIELDS.items():
        if key not in given:
            continue
        try:
            clean[attr] = (text_value(given[key], label, 120, required=True) if key == "name"
                           else bool_value(given[key], label))
        except InvalidInput as exc:
            errors[key] = str(exc)
    if "name" in clean:
        taken = db.session.scalar(sa.select(Program.id).where(sa.func.lower(Program.name) == clean["name"].lower()))
        if taken is not None and (existing is None or taken != existing.id):
            errors["name"] = f"A program named {clean['name']} already exists."
    if errors:
        raise RecordInvalid(errors)
    return clean


def create_program(values: dict[str, Any], *, actor: User | None, now: datetime) -> Program:
    clean = clean_program(values)
    program = Program(created_at=now, **clean)
    db.session.add(program)
    db.session.flush()
    record("program", program.id, "program_created", actor=actor, now=now,
           message=describe_changes([(PROGRAM_LABELS[a], None, v) for a, v in clean.items()]))
    return program


def update_program(program: Program, values: dict[str, Any], *, actor: User | None,
                   now: datetime) -> list[tuple[str, Any, Any]]:
    """Automation and PEO-style apply to the program's customers from their next request on."""
    changes = apply_changes(program, clean_program(values, existing=program), PROGRAM_LABELS)
    if changes:
        record("program", program.id, "program_updated", actor=actor, now=now, message=describe_changes(changes))
        db.session.flush()
    return changes


# -- insurers ---------------------------------------------------------------------------------------

INSURER_FIELDS: dict[str, tuple[str, str]] = {"name": ("name", "Name"), "naic": ("naic", "NAIC number")}
INSURER_LABELS = {attr: label for attr, label in INSURER_FIELDS.values()}


def insurer_values(insurer: Insurer) -> dict[str, Any]:
    return {"id": insurer.id, "name": insurer.name, "naic": insurer.naic or ""}


def clean_insurer(values: dict[str, Any], *, existing: Insurer | None = None) -> dict[str, Any]:
    """Name required; NAIC number exactly five digits and unique (it identifies the insurer on imports)."""
    errors: dict[str, str] = {k: "Unknown field." for k in values if k not in INSURER_FIELDS and k != "id"}
    clean: dict[str, Any] = {}
    given = dict(values)
    if existing is None:
        given.setdefault("name", "")
        given.setdefault("naic", "")
    if "name" in given:
        try:
            clean["name"] = text_value(given["name"], "Name", 200, required=True)
        except InvalidInput as exc:
            errors["name"] = str(exc)
    if "naic" in given:
        try:
            naic = text_value(given["naic"], "NAIC number", 20, required=True)
            if not re.fullmatch(r"[0-9]{5}", naic):
                raise InvalidInput("The NAIC number is five digits, e.g. 10234.")
            clean["naic"] = naic
        except InvalidInput as exc:
            errors["naic"] = str(exc)
    if "naic" in clean:
        taken = db.session.scalar(sa.select(Insurer).where(Insurer.naic == clean["naic"]))
        if taken is not None and (existing is None or taken.id != existing.id):
            errors["naic"] = f"NAIC {clean['naic']} is already on the list as {taken.name}."
    if errors:
        raise RecordInvalid(errors)
    return clean


def create_insurer(values: dict[str, Any], *, actor: User | None, now: datetime) -> Insurer:
    clean = clean_insurer(values)
    insurer = Insurer(created_at=now, **clean)
    db.session.add(insurer)
    db.session.flush()
    record("insurer", insurer.id, "insurer_created", actor=actor, now=now,
           message=describe_changes([(INSURER_LABELS[a], None, v) for a, v in clean.items()]))
    return insurer


def update_insurer(insurer: Insurer, values: dict[str, Any], *, actor: User | None,
                   now: datetime) -> list[tuple[str, Any, Any]]:
    """A new name or NAIC number shows on certificates issued from now on; issued ones keep what they printed."""
    changes = apply_changes(insurer, clean_insurer(values, existing=insurer), INSURER_LABELS)
    if changes:
        record("insurer", insurer.id, "insurer_updated", actor=actor, now=now, message=describe_changes(changes))
        db.session.flush()
    return changes


def find_insurer(insurer_id: Any = None, naic: Any = None) -> Insurer | None:
    """The insurer by id, else by NAIC number (the API accepts either)."""
    if insurer_id not in (None, ""):
        found_id = parse_id(insurer_id)
        return db.session.get(Insurer, found_id) if found_id else None
    if naic not in (None, ""):
        return db.session.scalar(sa.select(Insurer).where(Insurer.naic == str(naic).strip()))
    return None
