"""State exemption rules: the table (data in ``state_rules.json``, each entry with its source), admins'
overrides of it, and the checks every submission and review runs against it.

The table answers, per state and DC: is there a state sales tax, does the state take the multistate
uniform (MTC) form and the streamlined (SST) form, which exemption reasons it recognises, whether a state
ID number is asked for, and how long a certificate without a printed expiry stays valid, by reason.

``run_checks`` is pure: certificate fields + the table in, verdicts out (pass / fail / review, what it
saw, why, and the source). Services store the verdicts on the certificate and in its timeline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from flask import has_app_context

from app.activity import record
from app.enums import ExemptionFormType, ExemptionReason
from app.extensions import db
from app.models import ExemptionRuleOverride, User

RULES_PATH = Path(__file__).with_name("state_rules.json")
PASS, FAIL, REVIEW = "pass", "fail", "review"
OVERRIDABLE = ("sales_tax", "accepts_mtc", "accepts_sst", "reasons", "state_id_required", "validity")
RULES_SUBJECT = "exemption_rules"


class RuleError(ValueError):
    """A refused override: ``errors`` maps field name -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class StateRule:
    state: str
    name: str
    sales_tax: bool
    accepts_mtc: bool
    accepts_sst: bool
    reasons: tuple[str, ...]
    state_id_required: bool
    validity: dict
    source: dict
    override: dict | None = field(default=None)

    def validity_for(self, reason: str) -> dict:
        return self.validity.get(reason) or self.validity.get("default") or {}

    def as_json(self) -> dict:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


@lru_cache(maxsize=1)
def repository_table() -> dict:
    """The table as committed (read once per process: it only changes with a release)."""
    return json.loads(RULES_PATH.read_text(encoding="utf-8"))


def _rule(entry: dict, override: ExemptionRuleOverride | None) -> StateRule:
    data = {**entry, **(override.changes if override else {})}
    return StateRule(
        state=data["state"], name=data["name"], sales_tax=bool(data["sales_tax"]),
        accepts_mtc=bool(data["accepts_mtc"]), accepts_sst=bool(data["accepts_sst"]),
        reasons=tuple(data["reasons"]), state_id_required=bool(data["state_id_required"]),
        validity=dict(data["validity"]), source=dict(data["source"]),
        override=None if override is None else {
            "changes": override.changes, "note": override.note,
            "by": override.created_by.name if override.created_by else "system",
            "at": override.created_at.isoformat(), "version": _version_of(override)},
    )


def _version_of(override: ExemptionRuleOverride) -> int:
    return db.session.scalar(sa.select(sa.func.count(ExemptionRuleOverride.id)).where(
        ExemptionRuleOverride.state == override.state, ExemptionRuleOverride.id <= override.id))


def _latest_overrides() -> dict[str, ExemptionRuleOverride]:
    newest = (sa.select(sa.func.max(ExemptionRuleOverride.id)).group_by(ExemptionRuleOverride.state))
    rows = db.session.scalars(sa.select(ExemptionRuleOverride).where(ExemptionRuleOverride.id.in_(newest)))
    return {o.state: o for o in rows}


def rules_table() -> dict[str, StateRule]:
    """Every state and DC, the repository's entry with the newest admin override applied (outside an
    application there is no database to hold overrides: the repository's table as it is)."""
    overrides = _latest_overrides() if has_app_context() else {}
    return {e["state"]: _rule(e, overrides.get(e["state"])) for e in repository_table()["states"]}


def rule_for(state: str) -> StateRule | None:
    entry = next((e for e in repository_table()["states"] if e["state"] == state), None)
    if entry is None:
        return None
    override = db.session.scalar(sa.select(ExemptionRuleOverride).where(ExemptionRuleOverride.state == state)
                                 .order_by(ExemptionRuleOverride.id.desc()).limit(1))
    return _rule(entry, override)


def override_history(state: str) -> list[ExemptionRuleOverride]:
    return list(db.session.scalars(sa.select(ExemptionRuleOverride).where(ExemptionRuleOverride.state == state)
                                   .order_by(ExemptionRuleOverride.id.desc())))


def override_rule(state: str, changes: dict, *, note: str, actor: User, now: datetime) -> ExemptionRuleOverride:
    """An admin changes a state's entry. A note is required (it is the audit trail of why); the
    changes must be fields of the table with values of the right kind. A new row each time: the
    previous override stays in the history."""
    errors: dict[str, str] = {}
    if rule_for(state) is None:
        errors["state"] = "Use a two-letter US state code (or DC)."
    note = (note or "").strip()
    if not note:
        errors["note"] = "Say why the rule is changed (the note is kept with the change)."
    clean: dict = {}
    for key, value in (changes or {}).items():
        if key not in OVERRIDABLE:
            errors[key] = "This field of the rules table cannot be changed."
        elif key in ("sales_tax", "accepts_mtc", "accepts_sst", "state_id_required"):
            if not isinstance(value, bool):
                errors[key] = "Use true or false."
            else:
                clean[key] = value
        elif key == "reasons":
            known = {str(r) for r in ExemptionReason}
            if not isinstance(value, list) or any(v not in known for v in value):
                errors[key] = "Use a list of: " + ", ".join(sorted(known)) + "."
            else:
                clean[key] = [r for r in (str(x) for x in ExemptionReason) if r in value]
        elif key == "validity":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                errors[key] = "Use an object of reason -> {years, text}."
            else:
                clean[key] = value
    if not clean and "note" not in errors and not errors:
        errors["changes"] = "Change at least one field."
    if errors:
        raise RuleError(errors)
    row = ExemptionRuleOverride(state=state, changes=clean, note=note[:5000], created_by_id=actor.id, created_at=now)
    db.session.add(row)
    db.session.flush()
    record(RULES_SUBJECT, row.id, "rule_overridden", actor=actor, now=now,
           message=f"{state}: {json.dumps(clean, sort_keys=True)} — {note}")
    return row


# -- checks -------------------------------------------------------------------------------------------

def computed_expiration(rule: StateRule, reason: str, effective: date) -> date | None:
    """The expiry a state's rule gives a certificate that prints none (None: valid until revoked)."""
    years = rule.validity_for(reason).get("years")
    if not years:
        return None
    try:
        return effective.replace(year=effective.year + int(years))
    except ValueError:  # 29 February
        return effective.replace(year=effective.year + int(years), day=28)


def _check(rule: str, state: str, result: str, evidence: str, source: dict) -> dict:
    return {"rule": rule, "state": state, "result": result, "evidence": evidence, "source": dict(source)}


def run_checks(*, reason: str, form_type: str, effective_date: date, expiration_date: date | None,
               jurisdictions: list[tuple[str, str, date | None]], table: dict[str, StateRule]) -> list[dict]:
    """Pure: every applicable rule's verdict for a certificate's fields, per state."""
    sources = repository_table()["sources"]
    reason = str(reason)
    form_type = str(form_type)
    checks: list[dict] = []
    for state, state_id, printed in jurisdictions:
        rule = table.get(state)
        if rule is None:
            checks.append(_check("known_state", state, FAIL, f"{state} is not in the rules table.", {}))
            continue
        src = rule.source
        if not rule.sales_tax:
            checks.append(_check("sales_tax", state, FAIL,
                                 f"{rule.name} levies no statewide sales tax: no exemption certificate is needed.",
                                 src))
            continue
        checks.append(_check("sales_tax", state, PASS, f"{rule.name} levies a state sales tax.", src))
        reason_label = ExemptionReason(reason).label if reason in set(ExemptionReason) else reason
        if reason in rule.reasons:
            checks.append(_check("reason", state, PASS, f"Reason “{reason_label}” is recognised in {state}.", src))
        else:
            checks.append(_check("reason", state, FAIL, f"Reason “{reason_label}” is not recognised in {state}.",
                                 src))
        if form_type == ExemptionFormType.UNIFORM_MULTISTATE:
            ok = rule.accepts_mtc
            checks.append(_check("form", state, PASS if ok else FAIL,
                                 f"{state} {'accepts' if ok else 'does not accept'} the multistate uniform (MTC) form.",
                                 sources["mtc"]))
        elif form_type == ExemptionFormType.STREAMLINED:
            ok = rule.accepts_sst
            checks.append(_check("form", state, PASS if ok else FAIL,
                                 f"{state} {'accepts' if ok else 'does not accept'} the streamlined (SST) certificate.",
                                 sources["sst"]))
        else:
            checks.append(_check("form", state, PASS, f"{state}'s own form.", src))
        if rule.state_id_required and not (state_id or "").strip():
            checks.append(_check("state_id", state, REVIEW,
                                 f"No {state} ID number given; {state} asks for the purchaser's registration "
                                 "or permit number.", src))
        elif rule.state_id_required:
            checks.append(_check("state_id", state, PASS, f"{state} ID number {state_id.strip()} given.", src))
        own = printed or expiration_date
        validity = rule.validity_for(reason)
        if own:
            checks.append(_check("expiration", state, PASS, f"Printed expiration {own.isoformat()}.", src))
        elif computed := computed_expiration(rule, reason, effective_date):
            checks.append(_check("expiration", state, PASS,
                                 f"Expiration computed as {computed.isoformat()} from {state}'s "
                                 f"{validity['years']}-year rule ({validity.get('text', '')}).", src))
        elif validity.get("inactive_months"):
            checks.append(_check("expiration", state, REVIEW,
                                 f"No printed expiry: {validity.get('text', '')}.", src))
        else:
            checks.append(_check("expiration", state, PASS,
                                 f"No printed expiry: {validity.get('text', 'valid until revoked')}.", src))
    return checks


def summary(checks: list[dict]) -> str:
    counts = {r: sum(1 for c in checks if c["result"] == r) for r in (PASS, FAIL, REVIEW)}
    text = f"Checks: {counts[PASS]} pass, {counts[FAIL]} fail, {counts[REVIEW]} to review."
    failed = [c["evidence"] for c in checks if c["result"] == FAIL]
    return text + (" Failed: " + " ".join(failed) if failed else "")
