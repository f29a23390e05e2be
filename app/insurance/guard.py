"""The issue guard: one pure function run before any certificate leaves CertDesk.

``check(data, policies, holder, on, wording)`` looks at the certificate data as it would print, the
customer's policies (by id), the holder, the issue date and the banned-wording list, and returns a
``GuardResult`` of blocks and warnings. It reads nothing else (no database, no request, no clock), so
every issuing path (automatic issue, staff submit, upload, mass generation, re-issue) asks the same
question and gets the same answer, and the table-driven tests exercise it directly.

Decisions:
- Every printed policy must be in force on the issue date (not before its effective date, not past its
  expiry, not cancelled by then). That is a **hard** block: no note overrides it.
- A printed policy that is not on file for this customer is a hard block too (a policy id from another
  customer, or none).
- ADDL INSD, SUBR WVD and primary & non-contributory are printed only where the row's policy carries a
  matching endorsement: a blanket one, or one naming this holder. Otherwise a block naming the missing
  endorsement; staff may override it with a recorded note (the carrier may have agreed in writing).
  SUBR WVD on the workers' compensation row without a waiver endorsement reads "needs a waiver of
  subrogation endorsement" (the reason automatic issue gives when it sends a WOS to the manual queue).
- The description must not contain banned wording (promises a policy does not make); each match is a
  block with the list's reason, overridable with a note.
- The holder's name, and for a COI / WOS its street, city, state and ZIP, must be filled in (hard block).
- Warnings never stop issue: a printed policy that ends within 30 days of the issue date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

# Row line -> the printed mark -> endorsement kind.
MARK_ENDORSEMENTS = {"addl_insd": "additional_insured", "subr_wvd": "waiver_of_subrogation"}
ENDORSEMENT_WORDS = {
    "additional_insured": "an additional insured endorsement",
    "waiver_of_subrogation": "a waiver of subrogation endorsement",
    "primary_noncontributory": "a primary & non-contributory endorsement",
}
PNC_PATTERN = re.compile(r"primary\s*(?:and|&)\s*non[\s-]*contributory", re.I)
EXPIRING_SOON = timedelta(days=30)


@dataclass(frozen=True)
class Finding:
    code: str          # e.g. "not_in_force", "missing_endorsement", "banned_wording", "holder_incomplete"
    message: str
    overridable: bool = False
    line: str = ""     # coverage line, when about one row


@dataclass
class GuardResult:
    blocks: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocks

    @property
    def hard_blocks(self) -> list[Finding]:
        return [b for b in self.blocks if not b.overridable]

    def allows(self, override_note: str | None = None) -> bool:
        """May it be issued: no blocks, or only overridable ones and a note saying why."""
        if self.ok:
            return True
        return not self.hard_blocks and bool((override_note or "").strip())

    @property
    def reasons(self) -> list[str]:
        return [b.message for b in self.blocks]

    def to_json(self, override_note: str = "") -> dict:
        out = {"blocks": [asdict(b) for b in self.blocks], "warnings": [asdict(w) for w in self.warnings]}
        if override_note.strip() and self.blocks:
            out["override_note"] = override_note.strip()
        return out

    @classmethod
    def from_json(cls, value: dict | None) -> GuardResult:
        value = value or {}
        return cls(blocks=[Finding(**b) for b in value.get("blocks") or []],
                   warnings=[Finding(**w) for w in value.get("warnings") or []])


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, hyphens / slashes / punctuation as spaces, spacing collapsed:
    "30 days' notice", "30-days notice" and "30 Days  Notice" all read "30 days notice"."""
    text = (text or "").lower().replace("\u2019", "").replace("'", "")
    text = re.sub(r"[^a-z0-9&]+", " ", text)
    return " ".join(text.split())


def _fmt(d: date | None) -> str:
    return f"{d:%m/%d/%Y}" if d else ""


def _get(obj: Any, name: str, default=None):
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def _line_title(row: Mapping) -> str:
    return str(row.get("title") or row.get("line") or "").lower()


def _not_in_force(policy: Any, on: date) -> str | None:
    """Why ``policy`` is not in force on ``on`` (None when it is)."""
    number = _get(policy, "policy_number", "")
    effective, expiry = _get(policy, "effective_date"), _get(policy, "expiry_date")
    status = str(getattr(_get(policy, "status"), "value", _get(policy, "status")) or "active")
    cancelled_on = _get(policy, "cancelled_on")
    if status == "cancelled" and (cancelled_on is None or cancelled_on <= on):
        return f"Policy {number} was cancelled" + (f" on {_fmt(cancelled_on)}." if cancelled_on else ".")
    if effective and on < effective:
        return f"Policy {number} is not in force yet: it starts on {_fmt(effective)}."
    if expiry and on > expiry:
        return f"Policy {number} expired on {_fmt(expiry)}."
    return None


def _endorsement(policy: Any, kind: str, holder_name: str):
    finder = getattr(policy, "endorsement_for", None)
    if finder is not None:
        return finder(kind, holder_name)
    # plain data (tests, stored JSON): [{"kind", "holder_name"}]
    wanted = " ".join((holder_name or "").lower().split())
    blanket = None
    for e in _get(policy, "endorsements", []) or []:
        if str(getattr(_get(e, "kind"), "value", _get(e, "kind"))) != kind:
            continue
        named = " ".join((_get(e, "holder_name") or "").lower().split())
        if not named:
            blanket = blanket or e
        elif named == wanted:
            return e
    return blanket


def check(data: Mapping, policies: Mapping[int, Any], holder: Mapping | Any, on: date,
          wording: Iterable[tuple[str, str]] = ()) -> GuardResult:
    """The guard. ``data``: the certificate data (``certificate_data.build_certificate_data`` shape: coverage rows with
    ``policy_id``, ``addl_insd``, ``subr_wvd``; ``description``; ``kind``). ``policies``: the customer's
    policies by id (models or dicts with the same fields). ``holder``: name, address, city, state,
    zip_code. ``wording``: (phrase, reason) pairs of the active banned-wording list."""
    result = GuardResult()
    holder_name = str(_get(holder, "name", "") or "")
    kind = str(data.get("kind") or "coi")
    gl_policy = None

    for row in data.get("coverages") or []:
        if not row.get("present"):
            continue
        title = _line_title(row)
        policy_id = row.get("policy_id")
        policy = policies.get(int(policy_id)) if policy_id not in (None, "") else None
        if policy is None:
            result.blocks.append(Finding("unknown_policy", f"The {title} row prints policy "
                                         f"{row.get('policy_number') or '(none)'}, which is not on file for this "
                                         "customer.", line=row.get("line", "")))
            continue
        if row.get("line") == "general_liability":
            gl_policy = policy
        why = _not_in_force(policy, on)
        if why:
            result.blocks.append(Finding("not_in_force", f"{why} It cannot be printed on a certificate issued "
                                         f"{_fmt(on)} ({title}).", line=row.get("line", "")))
        else:
            ends = _get(policy, "ends_on", None) or _get(policy, "expiry_date")
            if ends and ends - on <= EXPIRING_SOON:
                result.warnings.append(Finding("expiring_soon", f"Policy {_get(policy, 'policy_number')} ends on "
                                               f"{_fmt(ends)}.", line=row.get("line", "")))
        for mark, endorsement in MARK_ENDORSEMENTS.items():
            if mark == "addl_insd" and row.get("line") == "workers_comp":
                continue  # N/A on that row
            if row.get(mark) and _endorsement(policy, endorsement, holder_name) is None:
                label = "SUBR WVD" if mark == "subr_wvd" else "ADDL INSD"
                if mark == "subr_wvd" and row.get("line") == "workers_comp":
                    message = (f"Needs a waiver of subrogation endorsement: the workers' compensation policy "
                               f"{_get(policy, 'policy_number')} has none for this holder, so SUBR WVD cannot "
                               "be marked.")
                else:
                    who = holder_name or "the holder"
                    message = (f"Needs {ENDORSEMENT_WORDS[endorsement]}: the {title} policy "
                               f"{_get(policy, 'policy_number')} has none (blanket or naming {who}), so {label} "
                               "cannot be marked.")
                result.blocks.append(Finding("missing_endorsement", message, overridable=True,
                                             line=row.get("line", "")))

    description = str(data.get("description") or "")
    if kind != "poi" and PNC_PATTERN.search(description) and (
            gl_policy is None or _endorsement(gl_policy, "primary_noncontributory", holder_name) is None):
        result.blocks.append(Finding(
            "missing_endorsement", "Needs a primary & non-contributory endorsement: the description says "
            "coverage is primary and non-contributory, but the general liability policy has no such "
            "endorsement for this holder.", overridable=True, line="general_liability"))

    flat = f" {normalise(description)} "
    for phrase, reason in wording:
        wanted = normalise(phrase)
        if wanted and f" {wanted} " in flat:
            result.blocks.append(Finding("banned_wording", f"The description says \u201c{phrase}\u201d: {reason}",
                                         overridable=True))

    if not holder_name.strip():
        result.blocks.append(Finding("holder_incomplete", "The certificate holder has no name."))
    if kind != "poi":
        missing = [label for label, key in (("street address", "address"), ("city", "city"), ("state", "state"),
                                            ("ZIP code", "zip_code")) if not str(_get(holder, key, "") or "").strip()]
        if missing:
            result.blocks.append(Finding("holder_incomplete", "The holder's address is incomplete (missing "
                                         + ", ".join(missing) + ")."))
    return result
