"""Certificate data: what a certificate says, assembled from the customer's policies on file, and the
discrepancy rules that decide whether a request may be issued without a person looking
(``certificate_discrepancies``) next to the automation decision that reads them (``should_auto_issue``).

Plain data in, a dict out: nothing here renders or needs a Flask app context.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Any

from app.enums import CoverageLine, RequestType
from app.insurance.layout import HolderInfo, _clean

if TYPE_CHECKING:
    from app.models import CertificateRequest, Customer


class CertificateDataError(Exception):
    """The certificate cannot be produced from what is on file (e.g. no policy in force)."""


# -- data --------------------------------------------------------------------------------------------

LINE_ORDER = [CoverageLine.GENERAL_LIABILITY, CoverageLine.AUTOMOBILE, CoverageLine.UMBRELLA,
              CoverageLine.WORKERS_COMP, CoverageLine.OTHER]

LINE_TITLES = {
    CoverageLine.GENERAL_LIABILITY: "Commercial general liability",
    CoverageLine.AUTOMOBILE: "Automobile liability",
    CoverageLine.UMBRELLA: "Umbrella / excess liability",
    CoverageLine.WORKERS_COMP: "Workers' compensation and employers' liability",
    CoverageLine.OTHER: "Other",
}

# Limit key -> printed label, in print order. Keys on file that are not listed print after these.
LIMIT_LABELS: dict[CoverageLine, list[tuple[str, str]]] = {
    CoverageLine.GENERAL_LIABILITY: [
        ("each_occurrence", "Each occurrence"),
        ("damage_to_rented_premises", "Damage to rented premises (ea occurrence)"),
        ("medical_expense", "Med exp (any one person)"),
        ("personal_adv_injury", "Personal & adv injury"),
        ("general_aggregate", "General aggregate"),
        ("products_completed_ops", "Products - comp/op agg"),
    ],
    CoverageLine.AUTOMOBILE: [
        ("combined_single_limit", "Combined single limit (ea accident)"),
        ("bodily_injury_per_person", "Bodily injury (per person)"),
        ("bodily_injury_per_accident", "Bodily injury (per accident)"),
        ("property_damage", "Property damage (per accident)"),
    ],
    CoverageLine.UMBRELLA: [
        ("each_occurrence", "Each occurrence"),
        ("aggregate", "Aggregate"),
        ("retention", "Retention"),
    ],
    CoverageLine.WORKERS_COMP: [
        ("el_each_accident", "E.L. each accident"),
        ("el_disease_each_employee", "E.L. disease - ea employee"),
        ("el_disease_policy_limit", "E.L. disease - policy limit"),
    ],
    CoverageLine.OTHER: [],
}

# The check boxes printed in the "type of insurance" cell: (key, label, default when the policy has no
# coverage boxes on file). With boxes on file (``Policy.coverage``), ``_checked`` reads them.
CHECKS: dict[CoverageLine, list[tuple[str, str, bool]]] = {
    CoverageLine.GENERAL_LIABILITY: [("cgl", "Commercial general liability", True), ("claims_made", "Claims-made",
                                     False), ("occur", "Occur", True), ("agg_basis", "Gen'l aggregate applies per "
                                                                        "policy", True)],
    CoverageLine.AUTOMOBILE: [("any_auto", "Any auto", True), ("owned", "Owned autos only", False),
                              ("scheduled", "Scheduled autos", False), ("hired", "Hired autos", False),
                              ("non_owned", "Non-owned autos", False)],
    CoverageLine.UMBRELLA: [("umbrella", "Umbrella liab", True), ("excess", "Excess liab", False),
                            ("occur", "Occur", True), ("claims_made", "Claims-made", False)],
    CoverageLine.WORKERS_COMP: [("per_statute", "Per statute", True), ("other", "Other", False)],
    CoverageLine.OTHER: [],
}


def _check_label(key: str, label: str, coverage: dict) -> str:
    """The general aggregate's basis prints as the word on file: policy, project or location."""
    if key == "agg_basis":
        return f"Gen'l aggregate applies per {coverage.get('aggregate_basis') or 'policy'}"
    return label


def _checked(line: CoverageLine, key: str, coverage: dict, default: bool) -> bool:
    """Is box ``key`` ticked, from the policy's coverage boxes on file (``default`` when none are)."""
    if not coverage:
        return default
    form_claims = coverage.get("form") == "claims_made"
    if line is CoverageLine.GENERAL_LIABILITY:
        return {"cgl": True, "claims_made": form_claims, "occur": not form_claims,
                "agg_basis": True}.get(key, default)
    if line is CoverageLine.UMBRELLA:
        excess = coverage.get("kind") == "excess"
        return {"umbrella": not excess, "excess": excess, "occur": not form_claims,
                "claims_made": form_claims}.get(key, default)
    if line is CoverageLine.WORKERS_COMP:
        return {"per_statute": bool(coverage.get("per_statute", True)), "other": False}.get(key, default)
    return bool(coverage.get(key, False))

# The holder's name is a paragraph of its own, so mass generation can write each holder's name into the
# lines kept for it instead of rendering every certificate again (see _prepare_batch).
WOS_WORDING = ("Waiver of subrogation applies with respect to workers' compensation, where required by written "
               "contract, in favor of the certificate holder:\n{holder}")

MAX_INSURERS = 6


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def _amount(value: Any) -> int:
    if isinstance(value, bool):
        raise CertificateDataError(f"{value!r} is not an amount.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(round(value))
    text = re.sub(r"[\s$,]", "", str(value or ""))
    if not re.fullmatch(r"\d{1,12}", text):
        raise CertificateDataError(f"“{str(value)[:40]}” is not an amount in whole dollars.")
    return int(text)


def _iso(value: Any) -> str:
    """A date typed by staff (YYYY-MM-DD or MM/DD/YYYY) as ISO text."""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    us = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text).isoformat()
        if us:
            return date(int(us[3]), int(us[1]), int(us[2])).isoformat()
    except ValueError:
        pass
    raise CertificateDataError(f"“{text[:40]}” is not a date (use YYYY-MM-DD or MM/DD/YYYY).")


def _policies_in_force(customer: Customer, on: date) -> dict[CoverageLine, Any]:
    found: dict[CoverageLine, Any] = {}
    for policy in customer.policies:
        if policy.is_in_force(on) and policy.line not in found:
            found[policy.line] = policy
    return found


def _is_peo_poi(customer: Customer, kind: RequestType) -> bool:
    return kind is RequestType.POI and bool(customer.program and customer.program.is_peo)


def certificate_discrepancies(customer: Customer, *, kind: RequestType, holder: HolderInfo, on: date) -> list[str]:
    """Reasons automation must not issue this certificate; ``[]`` means clean."""
    kind = RequestType(kind)
    problems: list[str] = []
    in_force = _policies_in_force(customer, on)
    if not in_force:
        problems.append(f"No policy is in force on {on:%m/%d/%Y}.")
    for policy in customer.policies:
        if policy.line not in in_force and policy.expiry_date < on:
            problems.append(f"The {LINE_TITLES[policy.line].lower()} policy {policy.policy_number} expired on "
                            f"{policy.expiry_date:%m/%d/%Y}.")
        elif (policy.line not in in_force and getattr(policy, "is_cancelled", False)
              and getattr(policy, "cancelled_on", None) is not None and policy.cancelled_on <= on):
            problems.append(f"The {LINE_TITLES[policy.line].lower()} policy {policy.policy_number} was cancelled "
                            f"on {policy.cancelled_on:%m/%d/%Y}.")
    needs_wc = kind is RequestType.COI_WOS or _is_peo_poi(customer, kind)
    if needs_wc and CoverageLine.WORKERS_COMP not in in_force and in_force:
        problems.append("No workers' compensation policy is in force.")
    insurers = {p.insurer_name.strip().lower() for p in in_force.values()}
    if len(insurers) > MAX_INSURERS:
        problems.append(f"More than {MAX_INSURERS} insurers: the certificate has room for {MAX_INSURERS}.")
    if not holder.name.strip():
        problems.append("The certificate holder has no name.")
    if kind is not RequestType.POI:
        missing = [label for label, value in (("street address", holder.address), ("city", holder.city),
                                              ("state", holder.state), ("ZIP code", holder.zip_code))
                   if not (value or "").strip()]
        if missing:
            problems.append("The holder address is incomplete (missing " + ", ".join(missing) + ").")
        elif not re.fullmatch(r"[A-Za-z]{2}", holder.state.strip()) or not re.fullmatch(
                r"\d{5}(-\d{4})?", holder.zip_code.strip()):
            problems.append("The holder address has an invalid state or ZIP code.")
    return problems


def _coverage_row(line: CoverageLine, policy, letters: dict[str, str], *, kind: RequestType) -> dict:
    row: dict[str, Any] = {
        "line": line.value, "title": LINE_TITLES[line], "present": policy is not None,
        "letter": "", "insurer": "", "naic": "", "policy_number": "", "effective": "", "expiry": "",
        "addl_insd": False, "subr_wvd": False, "detail": "",
        "checks": [{"key": k, "label": lbl, "checked": bool(policy is not None and default)}
                   for k, lbl, default in CHECKS[line]],
        "limits": [],
    }
    if policy is None:
        return row
    coverage = dict(getattr(policy, "coverage", None) or {})
    row.update(policy_id=getattr(policy, "id", None), letter=letters[policy.insurer_name.strip().lower()],
               insurer=policy.insurer_name,
               naic=policy.naic_number or "", policy_number=policy.policy_number,
               effective=policy.effective_date.isoformat(), expiry=policy.expiry_date.isoformat(),
               detail=policy.description or "",
               checks=[{"key": k, "label": _check_label(k, lbl, coverage),
                        "checked": _checked(line, k, coverage, default)} for k, lbl, default in CHECKS[line]])
    if line is CoverageLine.WORKERS_COMP:
        row["proprietor_excluded"] = bool(coverage.get("proprietor_excluded", False))
    if line is CoverageLine.OTHER and getattr(policy, "line", line) is not CoverageLine.OTHER:
        row["detail"] = " – ".join(p for p in (LINE_TITLES[policy.line], policy.description or "") if p)
    if line is CoverageLine.WORKERS_COMP and kind is RequestType.COI_WOS:
        row["subr_wvd"] = True
    row["limits"] = _limits(line, policy.limits or {})
    return row


def _limits(line: CoverageLine, values: dict) -> list[dict]:
    known = LIMIT_LABELS[line]
    out = [{"key": k, "label": lbl, "amount": _amount(values[k])} for k, lbl in known
           if values.get(k) not in (None, "")]
    known_keys = {k for k, _ in known}
    out += [{"key": k, "label": _label(k), "amount": _amount(v)} for k, v in values.items()
            if k not in known_keys and v not in (None, "")]
    return out


def _agency() -> dict:
    from app.insurance.agency import get_agency  # not at module level: keeps the models out of the renderer

    return get_agency()


def _default_description(customer: Customer, *, kind: RequestType, holder: HolderInfo,
                         request: CertificateRequest | None, peo: bool) -> str:
    parts: list[str] = []
    if peo:
        parts.append(f"Workers' compensation and employers' liability coverage applies to the employees of "
                     f"{customer.name}, a client company, while working on its behalf.")
    if request is not None and (request.description or "").strip():
        parts.append(request.description.strip())
    project = []
    if request is not None:
        for label, value in (("Project", request.project_name), ("Location", request.project_location),
                             ("Duration", request.project_duration)):
            if (value or "").strip():
                project.append(f"{label}: {value.strip()}")
    if kind is RequestType.COI_WOS:
        parts.append(WOS_WORDING.format(holder=" ".join(holder.name.split())))
        if project:
            parts.append(". ".join(project) + ".")
        if request is not None and (request.contract_details or "").strip():
            parts.append("Contract: " + request.contract_details.strip())
    elif project:
        parts.append(". ".join(project) + ".")
    return "\n".join(parts)


def _chosen_policies(customer: Customer, in_force: dict, edits: dict) -> dict:
    """The policy per row: the one in force by default; staff may choose another of this customer's
    policies for a row (``coverages.<line>.policy_id``) — of the same line, or of any line for the OTHER
    row. A policy that is not in force may be chosen; the issue guard then refuses to issue it."""
    chosen = dict(in_force)
    by_id = {p.id: p for p in customer.policies}
    for line_value, edit in edits.items():
        raw = (edit or {}).get("policy_id") if isinstance(edit, dict) else None
        if raw in (None, ""):
            continue
        try:
            line = CoverageLine(line_value)
            policy = by_id[int(raw)]
        except (ValueError, KeyError, TypeError):
            raise CertificateDataError("The chosen policy is not on file for this customer.") from None
        if line is not CoverageLine.OTHER and policy.line is not line:
            raise CertificateDataError(f"Policy {policy.policy_number} is a {LINE_TITLES[policy.line].lower()} "
                                       f"policy: it cannot print on the {LINE_TITLES[line].lower()} row.")
        chosen[line] = policy
    return chosen


def build_certificate_data(customer: Customer, *, kind: RequestType, holder: HolderInfo, on: date,
                           request: CertificateRequest | None = None, overrides: dict | None = None) -> dict:
    """Everything printed on the certificate, as plain JSON-serialisable values."""
    kind = RequestType(kind)
    overrides = overrides or {}
    if overrides.get("holder"):
        edits = {k: str(v).strip() for k, v in overrides["holder"].items()
                 if k in HolderInfo.__dataclass_fields__ and str(v or "").strip()}
        holder = HolderInfo(**{**asdict(holder), **edits})
    peo = _is_peo_poi(customer, kind)
    in_force = _policies_in_force(customer, on)
    if not in_force:
        raise CertificateDataError(f"No policy is in force on {on:%m/%d/%Y}.")
    in_force = _chosen_policies(customer, in_force, overrides.get("coverages") or {})
    lines = [CoverageLine.WORKERS_COMP] if peo else LINE_ORDER
    if peo and CoverageLine.WORKERS_COMP not in in_force:
        raise CertificateDataError("No workers' compensation policy is in force.")
    if kind is RequestType.COI_WOS and CoverageLine.WORKERS_COMP not in in_force:
        raise CertificateDataError("A waiver of subrogation needs a workers' compensation policy in force.")

    insurers: list[dict] = []
    letters: dict[str, str] = {}
    for line in lines:
        policy = in_force.get(line)
        if policy is None:
            continue
        key = policy.insurer_name.strip().lower()
        if key not in letters:
            if len(insurers) == MAX_INSURERS:
                raise CertificateDataError(f"More than {MAX_INSURERS} insurers: the certificate has room for "
                                           f"{MAX_INSURERS}.")
            letters[key] = "ABCDEF"[len(insurers)]
            insurers.append({"letter": letters[key], "name": policy.insurer_name, "naic": policy.naic_number or ""})

    coverages = [_coverage_row(line, in_force.get(line), letters, kind=kind) for line in lines]
    for row in coverages:
        edit = (overrides.get("coverages") or {}).get(row["line"])
        if not edit:
            continue
        if not row["present"]:
            raise CertificateDataError(f"There is no {row['title'].lower()} policy in force to edit.")
        if "limits" in edit and isinstance(edit["limits"], dict):
            current = {item["key"]: item["amount"] for item in row["limits"]}
            for k, v in edit["limits"].items():
                if v in (None, ""):
                    current.pop(k, None)
                else:
                    current[str(k)] = _amount(v)
            row["limits"] = _limits(CoverageLine(row["line"]), current)
        for field in ("policy_number", "insurer", "naic"):
            if field in edit and str(edit[field] or "").strip():
                row[field] = str(edit[field]).strip()[:200]
        for field in ("effective", "expiry"):
            if field in edit and str(edit[field] or "").strip():
                row[field] = _iso(edit[field])
        for field in ("addl_insd", "subr_wvd"):
            if field in edit:
                row[field] = edit[field] in (True, "1", "on", "true", "yes", "Y", "y")
        if row["line"] == CoverageLine.WORKERS_COMP.value:
            row["addl_insd"] = False  # N/A on the workers' compensation row

    if "description" in overrides and overrides["description"] is not None:
        description = str(overrides["description"])
    else:
        description = _default_description(customer, kind=kind, holder=holder, request=request, peo=peo)

    return {
        "kind": kind.value,
        "date": on.isoformat(),
        "producer": _agency(),
        "insured": {
            "name": customer.name, "address": customer.address or "",
            "city_line": HolderInfo(name="", city=customer.city or "", state=customer.state or "",
                                    zip_code=customer.zip_code or "").city_line,
        },
        "insurers": insurers,
        "coverages": coverages,
        "description": _clean(description).strip(),
        "holder": asdict(holder),
        "peo": peo,
        "request_id": request.id if request is not None else None,
        "certificate_number": "",
        "revision": 0,
    }


def should_auto_issue(request: CertificateRequest, discrepancies: list[str],
                      guard_blocks: list[str] | tuple[str, ...] = ()) -> tuple[bool, str]:
    """Pure decision: may a job issue this request without staff? Returns (yes/no, the reason).

    Never past an issue-guard block (``guard_blocks``: the guard's reasons); a WOS request always goes to
    staff, with the guard's reasons (e.g. "needs a waiver of subrogation endorsement") when it has any."""
    if request.type is RequestType.COI_WOS:
        return False, " ".join(["Waiver of subrogation requests are always processed by staff.", *guard_blocks])
    if guard_blocks:
        return False, "Issue guard: " + " ".join(guard_blocks)
    if not request.customer.automation_enabled:
        return False, "Automation is not enabled for this customer's program."
    if (request.instructions or "").strip():
        return False, "The request has special instructions."
    if discrepancies:
        return False, "Discrepancies: " + "; ".join(discrepancies)
    return True, "No special instructions, no discrepancies and automation is enabled."
