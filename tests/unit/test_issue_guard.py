"""The issue guard as a table of cases: one pure function, no database."""

from __future__ import annotations

from datetime import date

import pytest

from app.insurance.guard import GuardResult, check, normalise

ON = date(2026, 6, 1)
HOLDER = {"name": "City of Austin", "address": "301 W 2nd St", "city": "Austin", "state": "TX", "zip_code": "78701"}
WORDING = [("30 days notice", "No notice period can be promised."), ("will notify", "No promise to notify."),
           ("guarantee", "A certificate guarantees nothing."),
           ("notwithstanding", "It would override the policy terms."),
           ("amend the coverage", "A certificate does not amend coverage."),
           ("extend the coverage", "A certificate does not extend coverage.")]


def policy(pid, line, *, start=date(2026, 1, 1), end=date(2027, 1, 1), status="active", cancelled_on=None,
           endorsements=()):
    return {"id": pid, "line": line, "policy_number": f"{line[:2].upper()}-{pid}", "effective_date": start,
            "expiry_date": end, "status": status, "cancelled_on": cancelled_on,
            "endorsements": [{"kind": k, "holder_name": h} for k, h in endorsements]}


def row(line, pid, **marks):
    return {"line": line, "title": line.replace("_", " "), "present": True, "policy_id": pid,
            "policy_number": f"{line[:2].upper()}-{pid}", "addl_insd": marks.get("ai", False),
            "subr_wvd": marks.get("wos", False)}


def data(*rows, description="Roofing work.", kind="coi"):
    return {"kind": kind, "coverages": list(rows), "description": description}


GL, WC = "general_liability", "workers_comp"
AI, WOS, PNC = "additional_insured", "waiver_of_subrogation", "primary_noncontributory"

CASES = [
    # (name, data, policies, holder, expected block codes, expected message fragment, overridable)
    ("in force, no marks", data(row(GL, 1)), [policy(1, GL)], HOLDER, [], None, None),
    ("expired yesterday", data(row(GL, 1)), [policy(1, GL, end=date(2026, 5, 31))], HOLDER,
     ["not_in_force"], "expired on 05/31/2026", False),
    ("not yet in force", data(row(GL, 1)), [policy(1, GL, start=date(2026, 6, 2))], HOLDER,
     ["not_in_force"], "starts on 06/02/2026", False),
    ("cancelled before issue", data(row(GL, 1)),
     [policy(1, GL, status="cancelled", cancelled_on=date(2026, 4, 15))], HOLDER,
     ["not_in_force"], "cancelled on 04/15/2026", False),
    ("cancellation later this year still in force", data(row(GL, 1)),
     [policy(1, GL, status="cancelled", cancelled_on=date(2026, 9, 1))], HOLDER, [], None, None),
    ("policy of another customer", data(row(GL, 99)), [policy(1, GL)], HOLDER,
     ["unknown_policy"], "not on file for this customer", False),
    ("ADDL INSD with blanket endorsement", data(row(GL, 1, ai=True)), [policy(1, GL, endorsements=[(AI, None)])],
     HOLDER, [], None, None),
    ("ADDL INSD with specific endorsement for this holder", data(row(GL, 1, ai=True)),
     [policy(1, GL, endorsements=[(AI, "city of  AUSTIN")])], HOLDER, [], None, None),
    ("ADDL INSD with specific endorsement for another holder", data(row(GL, 1, ai=True)),
     [policy(1, GL, endorsements=[(AI, "County of Travis")])], HOLDER,
     ["missing_endorsement"], "Needs an additional insured endorsement", True),
    ("ADDL INSD without endorsement", data(row(GL, 1, ai=True)), [policy(1, GL)], HOLDER,
     ["missing_endorsement"], "Needs an additional insured endorsement", True),
    ("WOS on WC without waiver", data(row(WC, 2, wos=True), kind="coi_wos"), [policy(2, WC)], HOLDER,
     ["missing_endorsement"], "Needs a waiver of subrogation endorsement", True),
    ("WOS on WC with blanket waiver", data(row(WC, 2, wos=True), kind="coi_wos"),
     [policy(2, WC, endorsements=[(WOS, None)])], HOLDER, [], None, None),
    ("waiver on GL is not a waiver on WC", data(row(WC, 2, wos=True)),
     [policy(2, WC, endorsements=[(AI, None)])], HOLDER, ["missing_endorsement"], "waiver of subrogation", True),
    ("P&NC wording without endorsement", data(row(GL, 1), description="Coverage is primary and non-contributory."),
     [policy(1, GL)], HOLDER, ["missing_endorsement"], "primary & non-contributory endorsement", True),
    ("P&NC wording with endorsement", data(row(GL, 1), description="Coverage is primary & non-contributory."),
     [policy(1, GL, endorsements=[(PNC, None)])], HOLDER, [], None, None),
    ("banned wording: 30 days' notice", data(row(GL, 1), description="Holder gets 30 days' notice of cancellation."),
     [policy(1, GL)], HOLDER, ["banned_wording"], "No notice period can be promised", True),
    ("banned wording: Will Notify", data(row(GL, 1), description="The insurer WILL  NOTIFY the holder."),
     [policy(1, GL)], HOLDER, ["banned_wording"], "will notify", True),
    ("banned wording: notwithstanding", data(row(GL, 1), description="Notwithstanding the policy terms..."),
     [policy(1, GL)], HOLDER, ["banned_wording"], "notwithstanding", True),
    ("banned wording: extend the coverage", data(row(GL, 1), description="This certificate shall extend the coverage."),
     [policy(1, GL)], HOLDER, ["banned_wording"], "does not extend coverage", True),
    ("a word containing a banned one is fine", data(row(GL, 1), description="Guaranteed Rate Field events."),
     [policy(1, GL)], HOLDER, [], None, None),
    ("holder without address", data(row(GL, 1)), [policy(1, GL)], {**HOLDER, "address": "", "zip_code": " "},
     ["holder_incomplete"], "missing street address, ZIP code", False),
    ("holder without name", data(row(GL, 1)), [policy(1, GL)], {**HOLDER, "name": ""},
     ["holder_incomplete"], "has no name", False),
    ("POI needs no holder address", data(row(WC, 2), kind="poi"), [policy(2, WC)], {"name": "Anyone"}, [], None, None),
]


@pytest.mark.parametrize(("name", "cert", "policies", "holder", "codes", "fragment", "overridable"), CASES,
                         ids=[c[0] for c in CASES])
def test_guard_case(name, cert, policies, holder, codes, fragment, overridable):
    result = check(cert, {p["id"]: p for p in policies}, holder, ON, WORDING)
    assert [b.code for b in result.blocks] == codes
    if fragment:
        assert fragment.lower() in " ".join(result.reasons).lower()
        assert all(b.overridable is overridable for b in result.blocks)
        assert not result.allows("")  # a block never passes without a note
    else:
        assert result.ok and result.allows("")


def test_override_with_note_passes_endorsement_and_wording_blocks_only():
    cert = data(row(GL, 1, ai=True), description="We guarantee coverage.")
    result = check(cert, {1: policy(1, GL)}, HOLDER, ON, WORDING)
    assert {b.code for b in result.blocks} == {"missing_endorsement", "banned_wording"}
    assert not result.allows("   ")
    assert result.allows("Carrier approved the AI wording by e-mail on 05/30 (ticket 4411).")
    stored = result.to_json("Carrier approved the AI wording by e-mail on 05/30 (ticket 4411).")
    assert stored["override_note"].startswith("Carrier approved")
    assert GuardResult.from_json(stored).reasons == result.reasons


def test_a_policy_not_in_force_cannot_be_overridden_even_with_a_note():
    cert = data(row(GL, 1, ai=True))
    result = check(cert, {1: policy(1, GL, end=date(2026, 5, 31))}, HOLDER, ON, WORDING)
    assert result.hard_blocks and not result.allows("The customer promised to renew.")


def test_every_printed_row_is_checked_and_warnings_do_not_block():
    cert = data(row(GL, 1), row(WC, 2, wos=True), kind="coi_wos")
    result = check(cert, {1: policy(1, GL, end=date(2026, 6, 20)), 2: policy(2, WC, end=date(2026, 5, 1))},
                   HOLDER, ON, WORDING)
    assert [b.code for b in result.blocks] == ["not_in_force", "missing_endorsement"]
    assert [w.code for w in result.warnings] == ["expiring_soon"]
    assert "06/20/2026" in result.warnings[0].message


def test_normalise_reads_spelling_variants_alike():
    assert normalise("30 Days\u2019  Notice") == normalise("30-days notice") == "30 days notice"
