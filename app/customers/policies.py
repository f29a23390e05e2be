"""Policies on file and their endorsements: create, edit, cancel, renew.

Plain functions with explicit ``actor`` and ``now``; the caller commits. Values come keyed by the public
field names (``line``, ``insurer_id`` or ``naic``, ``policy_number``, ``effective_date``, ``expiry_date``,
``status``, ``cancelled_on``, ``limits``, ``coverage``, ``endorsements``), as form text or JSON values.
``clean_policy`` checks everything before anything is written and raises ``RecordInvalid`` with one
message per field (``limits.each_occurrence``, ``endorsements.0.kind``, ...). Every change writes an
activity row on the customer's timeline naming the fields changed, old -> new.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from app import lifecycle
from app.activity import record
from app.customers.records import (
    RecordInvalid,
    choice_value,
    describe_changes,
    find_insurer,
    text_value,
)
from app.enums import CoverageLine, EndorsementKind, PolicyStatus
from app.extensions import db
from app.models import Customer, Endorsement, Policy, User
from app.models.policies import COVERAGE_FIELDS, LIMIT_KEYS, LIMIT_LABELS
from app.validation import InvalidInput

POLICY_LABELS = {
    "line": "Line", "insurer_id": "Insurer", "policy_number": "Policy number", "effective_date": "Effective date",
    "expiry_date": "Expiry date", "status": "Status", "cancelled_on": "Cancelled on", "limits": "Limits",
    "coverage": "Coverage", "endorsements": "Endorsements", "description": "Description",
}
PUBLIC_FIELDS = {"line", "insurer_id", "naic", "policy_number", "effective_date", "expiry_date", "status",
                 "cancelled_on", "limits", "coverage", "endorsements", "description"}
MAX_LIMIT = 10**12  # whole dollars; a trillion is more than any policy limit
LIMIT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ENDORSEMENTS = 50


def policy_values(policy: Policy) -> dict[str, Any]:
    """The policy under its public field names (API answers, CSV rows, form defaults)."""
    return {
        "id": policy.id, "customer_id": policy.customer_id, "line": policy.line.value,
        "insurer_id": policy.insurer_id, "naic": policy.naic_number, "insurer_name": policy.insurer_name,
        "policy_number": policy.policy_number, "effective_date": policy.effective_date.isoformat(),
        "expiry_date": policy.expiry_date.isoformat(), "status": policy.status.value,
        "cancelled_on": policy.cancelled_on.isoformat() if policy.cancelled_on else None,
        "limits": dict(policy.limits or {}), "coverage": dict(policy.coverage or {}),
        "description": policy.description or "",
        "supersedes_id": policy.supersedes_id,
        "superseded_by_id": policy.superseded_by.id if policy.superseded_by else None,
        "endorsements": [endorsement_values(e) for e in policy.endorsements],
    }


def endorsement_values(e: Endorsement) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind.value, "form_number": e.form_number, "holder_name": e.holder_name}


# -- value checks -----------------------------------------------------------------------------------

def date_value(value: Any, label: str) -> date:
    if isinstance(value, date):
        return value
    text = str(value if value is not None else "").strip()
    if not text:
        raise InvalidInput(f"{label} is required.")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise InvalidInput(f"{label} must be a date in the form YYYY-MM-DD.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{label} is not a real date (use YYYY-MM-DD).") from None


def dollars(value: Any, label: str) -> int | None:
    """Whole, non-negative dollars: 1000000, "1,000,000" or "$1,000,000"; empty = not on file."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{label} must be an amount in whole dollars.")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidInput(f"{label} must be whole dollars (no cents).")
        value = int(value)
    if isinstance(value, int):
        amount = value
    else:
        text = re.sub(r"[\s,$]", "", str(value))
        if re.fullmatch(r"-\d+(\.\d+)?", text):
            raise InvalidInput(f"{label} cannot be negative.")
        if re.fullmatch(r"\d+\.\d+", text):
            raise InvalidInput(f"{label} must be whole dollars (no cents).")
        if not re.fullmatch(r"\d{1,13}", text):
            raise InvalidInput(f"{label} must be an amount in whole dollars, e.g. 1,000,000.")
        amount = int(text)
    if amount < 0:
        raise InvalidInput(f"{label} cannot be negative.")
    if amount > MAX_LIMIT:
        raise InvalidInput(f"{label} is larger than any policy limit.")
    return amount


def clean_limits(value: Any, line: CoverageLine, errors: dict[str, str]) -> dict[str, int]:
    """Limits of the line, by the names the certificate prints; any other name is refused (a misspelt
    limit would otherwise never print). The "other" line takes any lower-case name."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        errors["limits"] = "Limits must be an object of limit name -> whole dollars."
        return {}
    allowed = LIMIT_KEYS[line]
    out: dict[str, int] = {}
    for key, raw in value.items():
        name = str(key)
        if allowed and name not in allowed:
            errors[f"limits.{name}"] = (f"Not a {line.value} limit; use: " + ", ".join(allowed) + ".")
            continue
        if not allowed and not LIMIT_NAME_RE.match(name):
            errors[f"limits.{name}"] = "A limit name is lower-case letters, digits and _ (at most 40)."
            continue
        try:
            amount = dollars(raw, LIMIT_LABELS.get(name, name))
        except InvalidInput as exc:
            errors[f"limits.{name}"] = str(exc)
            continue
        if amount is not None:
            out[name] = amount
    return out


def clean_coverage(value: Any, line: CoverageLine, errors: dict[str, str]) -> dict[str, Any]:
    """The type-of-insurance boxes of the line (COVERAGE_FIELDS): choices or yes / no."""
    from app.customers.records import bool_value

    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        errors["coverage"] = "Coverage must be an object of box name -> value."
        return {}
    fields = COVERAGE_FIELDS[line]
    out: dict[str, Any] = {}
    for key, raw in value.items():
        name = str(key)
        if name not in fields:
            allowed = ", ".join(fields) or "none"
            errors[f"coverage.{name}"] = f"Not a {line.value} coverage box; use: {allowed}."
            continue
        spec = fields[name]
        try:
            if spec is bool:
                out[name] = bool_value(raw, name)
            else:
                text = str(raw if raw is not None else "").strip().lower()
                if not text:
                    continue
                if text not in spec:
                    raise InvalidInput(f"{name} must be one of: {', '.join(spec)}.")
                out[name] = text
        except InvalidInput as exc:
            errors[f"coverage.{name}"] = str(exc)
    return out


def clean_endorsements(value: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
    """A list of {kind, form_number, holder_name}; holder_name null or empty = blanket."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        errors["endorsements"] = "Endorsements must be a list of {kind, form_number, holder_name}."
        return []
    if len(value) > MAX_ENDORSEMENTS:
        errors["endorsements"] = f"At most {MAX_ENDORSEMENTS} endorsements per policy."
        return []
    out = []
    seen = set()
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            errors[f"endorsements.{i}"] = "Each endorsement is an object {kind, form_number, holder_name}."
            continue
        for extra in sorted(set(item) - {"kind", "form_number", "holder_name", "id"}):
            errors[f"endorsements.{i}.{extra}"] = "Unknown field."
        entry: dict[str, Any] = {}
        try:
            entry["kind"] = choice_value(item.get("kind"), EndorsementKind, "Kind")
        except InvalidInput as exc:
            errors[f"endorsements.{i}.kind"] = str(exc)
        try:
            entry["form_number"] = text_value(item.get("form_number"), "Form number", 40)
        except InvalidInput as exc:
            errors[f"endorsements.{i}.form_number"] = str(exc)
        try:
            entry["holder_name"] = text_value(item.get("holder_name"), "Holder name", 200) or None
        except InvalidInput as exc:
            errors[f"endorsements.{i}.holder_name"] = str(exc)
        if len(entry) == 3:
            key = (entry["kind"], " ".join((entry["holder_name"] or "").lower().split()))
            if key in seen:
                errors[f"endorsements.{i}"] = "The same endorsement is listed twice."
            seen.add(key)
            out.append(entry)
    return out


def clean_policy(values: dict[str, Any], *, customer: Customer, existing: Policy | None = None,
                 supersedes: Policy | None = None) -> dict[str, Any]:
    """Check a policy's values (all for a new one, the given ones for an edit). Decisions:

    - The insurer is picked from the list, by ``insurer_id`` or ``naic``; an unknown one is a message.
    - Effective date before expiry date; a cancellation date only on a cancelled policy, within its term.
    - Limits are whole non-negative dollars under the names of the line (see ``clean_limits``).
    - The policy number is unique per insurer and line (the import key).
    - Terms of the same line for the same customer may not overlap (a renewal may start the day the old
      term expires); cancelled terms count up to their cancellation date.
    - Unknown field names are refused rather than dropped.
    Returns model attributes plus ``endorsements`` (a list of dicts) when given.
    """
    errors: dict[str, str] = {k: "Unknown field." for k in values if k not in PUBLIC_FIELDS and k != "id"}
    creating = existing is None
    given = {k: v for k, v in values.items() if k in PUBLIC_FIELDS}
    clean: dict[str, Any] = {}

    def field(key: str, fn):
        if key not in given:
            return
        try:
            clean[key] = fn(given[key])
        except InvalidInput as exc:
            errors[key] = str(exc)

    if creating:
        for key in ("line", "policy_number", "effective_date", "expiry_date"):
            given.setdefault(key, "")
    field("line", lambda v: choice_value(v, CoverageLine, "Line"))
    field("policy_number", lambda v: text_value(v, "Policy number", 60, required=True))
    field("effective_date", lambda v: date_value(v, "Effective date"))
    field("expiry_date", lambda v: date_value(v, "Expiry date"))
    field("status", lambda v: choice_value(v or "active", PolicyStatus, "Status"))
    field("cancelled_on", lambda v: None if v in (None, "") else date_value(v, "Cancellation date"))
    field("description", lambda v: text_value(v, "Description", 200))

    if "insurer_id" in given or "naic" in given or creating:
        key = "insurer_id" if given.get("insurer_id") not in (None, "") or "naic" not in given else "naic"
        insurer = find_insurer(given.get("insurer_id"), given.get("naic"))
        if insurer is None:
            if given.get(key) in (None, ""):
                errors[key] = "Pick the insurer from the list (insurer_id or naic)."
            else:
                errors[key] = f"Unknown insurer {str(given.get(key))[:20]!r}: add it to the insurer list first."
        else:
            clean["insurer_id"] = insurer.id

    line = clean.get("line", existing.line if existing else None)
    if "line" not in errors and line is not None:
        if "limits" in given:
            clean["limits"] = clean_limits(given["limits"], line, errors)
        elif existing is not None and "line" in clean and clean["line"] is not existing.line and existing.limits:
            errors["limits"] = "Give the limits of the new line too (the old line's limits do not apply)."
        if "coverage" in given:
            clean["coverage"] = clean_coverage(given["coverage"], line, errors)
        elif existing is not None and "line" in clean and clean["line"] is not existing.line:
            clean["coverage"] = {}
    if "endorsements" in given:
        clean["endorsements"] = clean_endorsements(given["endorsements"], errors)

    def current(key):
        return clean[key] if key in clean else (getattr(existing, key) if existing is not None else None)

    effective, expiry = current("effective_date"), current("expiry_date")
    if "effective_date" not in errors and "expiry_date" not in errors and effective and expiry \
            and expiry <= effective:
        errors["expiry_date"] = "The expiry date must be after the effective date."
    status = current("status") or PolicyStatus.ACTIVE
    cancelled_on = current("cancelled_on")
    if "status" not in errors and "cancelled_on" not in errors:
        if status is PolicyStatus.CANCELLED and cancelled_on is None:
            errors["cancelled_on"] = "A cancelled policy needs the date the cancellation took effect."
        elif status is PolicyStatus.ACTIVE and cancelled_on is not None:
            errors["cancelled_on"] = "Only a cancelled policy has a cancellation date (or set status to cancelled)."
        elif cancelled_on is not None and effective and expiry and not (effective <= cancelled_on <= expiry):
            errors["cancelled_on"] = "The cancellation date must be within the policy term."
    if not errors:
        _check_unique_and_overlap(customer, existing, supersedes, line, current("insurer_id"),
                                  current("policy_number"), effective, expiry,
                                  cancelled_on if status is PolicyStatus.CANCELLED else None, errors)
    if errors:
        raise RecordInvalid(errors)
    return clean


def _check_unique_and_overlap(customer, existing, supersedes, line, insurer_id, number, effective, expiry,
                              cancelled_on, errors) -> None:
    own_id = existing.id if existing is not None else None
    same = db.session.scalar(sa.select(Policy).where(
        Policy.insurer_id == insurer_id, Policy.line == line, Policy.policy_number == number,
        Policy.id != (own_id or 0)))
    if same is not None:
        errors["policy_number"] = (f"Policy {number} for this insurer and line is already on file"
                                   + (f" for customer #{same.customer_id}." if same.customer_id != customer.id
                                      else "."))
        return
    if customer.id is None:
        return
    end = cancelled_on if cancelled_on is not None else expiry
    others = db.session.scalars(sa.select(Policy).where(
        Policy.customer_id == customer.id, Policy.line == line, Policy.id != (own_id or 0)))
    for other in others:
        other_end = other.cancelled_on if other.is_cancelled and other.cancelled_on else other.expiry_date
        if effective < other_end and other.effective_date < end:
            errors["effective_date"] = (
                f"The term overlaps {other.line.value.replace('_', ' ')} policy {other.policy_number} "
                f"({other.effective_date.isoformat()} to {other_end.isoformat()}); renew or cancel that one "
                f"instead.")
            return


# -- writes -----------------------------------------------------------------------------------------

def _changes(policy: Policy, clean: dict[str, Any], *, actor: User | None,
             now: datetime) -> list[tuple[str, Any, Any]]:
    """Apply the changed fields, in order; the status moves through the lifecycle engine (its table:
    active <-> cancelled), the rest are plain fields."""
    changes = []
    for key, new in clean.items():
        if key == "endorsements":
            continue
        old = getattr(policy, key)
        if old != new:
            if key == "insurer_id":
                from app.models import Insurer

                changes.append(("Insurer", policy.insurer_name, db.session.get(Insurer, new).name))
            else:
                changes.append((POLICY_LABELS[key], _plain(old), _plain(new)))
            if key == "status":
                lifecycle.transition(policy, new, actor=actor, now=now)
            else:
                setattr(policy, key, new)
    return changes


def _plain(value):
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k} {v}"
                         for k, v in value.items()) or None
    return value


def _replace_endorsements(policy: Policy, wanted: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Make the policy's endorsements exactly ``wanted`` (kept rows keep their id)."""
    def key(kind, holder):
        return kind, " ".join((holder or "").lower().split())

    before = [e.label for e in policy.endorsements]
    current = {key(e.kind, e.holder_name): e for e in policy.endorsements}
    keep = set()
    for entry in wanted:
        k = key(entry["kind"], entry["holder_name"])
        keep.add(k)
        if k in current:
            current[k].form_number = entry["form_number"]
            current[k].holder_name = entry["holder_name"]
        else:
            policy.endorsements.append(Endorsement(**entry))
    for k, e in current.items():
        if k not in keep:
            policy.endorsements.remove(e)
    after = [e.label for e in policy.endorsements]
    if sorted(before) == sorted(after):
        return []
    return [("Endorsements", "; ".join(before) or None, "; ".join(after) or None)]


def _title(policy: Policy) -> str:
    return f"{policy.line.value.replace('_', ' ').capitalize()} policy {policy.policy_number}"


def create_policy(customer: Customer, values: dict[str, Any], *, actor: User | None, now: datetime,
                  supersedes: Policy | None = None) -> Policy:
    """A new policy (with its endorsements) for the customer; status defaults to active."""
    clean = clean_policy(values, customer=customer, supersedes=supersedes)
    endorsements = clean.pop("endorsements", [])
    clean.setdefault("status", PolicyStatus.ACTIVE)
    clean.setdefault("limits", {})
    clean.setdefault("coverage", {})
    policy = Policy(customer_id=customer.id, created_at=now, supersedes=supersedes, **clean)
    policy.endorsements = [Endorsement(created_at=now, **e) for e in endorsements]
    db.session.add(policy)
    db.session.flush()
    what = "renewed" if supersedes is not None else "added"
    lines = [f"{_title(policy)} {what} ({policy.insurer.label}, {policy.effective_date.isoformat()} "
             f"to {policy.expiry_date.isoformat()})."]
    if supersedes is not None:
        lines.append(f"Supersedes policy {supersedes.policy_number}, which stays on file.")
    if policy.limits:
        lines.append("Limits: " + _plain(policy.limits))
    if policy.endorsements:
        lines.append("Endorsements: " + "; ".join(e.label for e in policy.endorsements))
    record("policy", policy.id, "policy_renewed" if supersedes is not None else "policy_created", actor=actor,
           customer_id=customer.id, now=now, message="\n".join(lines))
    return policy


def update_policy(policy: Policy, values: dict[str, Any], *, actor: User | None,
                  now: datetime) -> list[tuple[str, Any, Any]]:
    """Change the given fields; ``endorsements`` (when given) replaces the whole list."""
    clean = clean_policy(values, customer=policy.customer, existing=policy)
    endorsements = clean.pop("endorsements", None)
    changes = _changes(policy, clean, actor=actor, now=now)
    if endorsements is not None:
        changes += _replace_endorsements(policy, endorsements)
    if changes:
        cancelled = any(label == "Status" for label, _, _ in changes) and policy.is_cancelled
        record("policy", policy.id, "policy_cancelled" if cancelled else "policy_updated", actor=actor,
               customer_id=policy.customer_id, now=now,
               message=f"{_title(policy)}:\n" + describe_changes(changes))
        db.session.flush()
        if cancelled:
            from app.events import emit
            from app.insurance.documents import notify_cancellation

            emit("policy.cancelled", "policy", policy, now=now)
            notify_cancellation(policy, actor=actor, now=now)
    return changes


def cancel_policy(policy: Policy, cancelled_on: Any, *, actor: User | None,
                  now: datetime) -> list[tuple[str, Any, Any]]:
    """Cancelled from ``cancelled_on`` (within the term): certificates issued on or after that date no
    longer list it; the row stays on file."""
    return update_policy(policy, {"status": "cancelled", "cancelled_on": cancelled_on}, actor=actor, now=now)


def renew_policy(policy: Policy, values: dict[str, Any], *, actor: User | None, now: datetime) -> Policy:
    """A renewal is a new term (new number and dates) that supersedes this one; this one stays readable.
    Insurer, line, limits, coverage boxes and endorsements carry over unless given; a term can be
    renewed once."""
    if policy.superseded_by is not None:
        raise RecordInvalid({"policy_number": f"Policy {policy.policy_number} was already renewed by "
                                              f"{policy.superseded_by.policy_number}."})
    carried = {"line": policy.line.value, "insurer_id": policy.insurer_id, "limits": dict(policy.limits or {}),
               "coverage": dict(policy.coverage or {}), "description": policy.description or "",
               "endorsements": [{"kind": e.kind.value, "form_number": e.form_number, "holder_name": e.holder_name}
                                for e in policy.endorsements]}
    if "naic" in values and "insurer_id" not in values:
        carried.pop("insurer_id")
    merged = {**carried, **values}
    merged.pop("status", None)
    merged.pop("cancelled_on", None)
    return create_policy(policy.customer, merged, actor=actor, now=now, supersedes=policy)


def add_endorsement(policy: Policy, values: dict[str, Any], *, actor: User | None, now: datetime) -> Endorsement:
    """One more endorsement (blanket when no holder is named); the same kind for the same holder twice
    is refused."""
    wanted = [endorsement_values(e) for e in policy.endorsements] + [values]
    for item in wanted:
        item.pop("id", None)
    update_policy(policy, {"endorsements": wanted}, actor=actor, now=now)
    return policy.endorsements[-1]


def remove_endorsement(endorsement: Endorsement, *, actor: User | None, now: datetime) -> None:
    policy = endorsement.policy
    wanted = [endorsement_values(e) for e in policy.endorsements if e.id != endorsement.id]
    for item in wanted:
        item.pop("id", None)
    update_policy(policy, {"endorsements": wanted}, actor=actor, now=now)
