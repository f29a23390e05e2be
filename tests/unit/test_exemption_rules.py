"""State exemption rules: the table with its sources, the checks with evidence, overrides, computed
expiry, approval past a failed check, single-purchase lookups and renewals ahead of expiry."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionFormType, ExemptionReason, PurchaseType, Role
from app.exemptions import rules, services
from app.extensions import db
from app.models import Activity, ExemptionRequest
from app.uploads import PDF, CheckedUpload
from app.validation import US_STATES
from tests.factories import tiny_pdf

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _data(states, *, reason=ExemptionReason.RESALE, form=ExemptionFormType.UNIFORM_MULTISTATE,
          purchase=PurchaseType.BLANKET, po="", expiration=None):
    return services.CertificateData(
        reason=reason, form_type=form, purchase_type=purchase, tax_id_number="12-3456789",
        effective_date=date(2026, 3, 1), purchaser_name="Buyer Inc", purchaser_address="1 Main St",
        signer_name="Pat", signed_on=date(2026, 3, 1), po_number=po, expiration_date=expiration,
        jurisdictions=[(s, n, d) for s, n, d in states])


def _checks(states, **kw):
    data = _data(states, **kw)
    return rules.run_checks(reason=str(data.reason), form_type=str(data.form_type),
                            effective_date=data.effective_date, expiration_date=data.expiration_date,
                            jurisdictions=data.jurisdictions, table=rules.rules_table())


def _verdict(checks, state, rule):
    return next(c for c in checks if c["state"] == state and c["rule"] == rule)


def test_table_has_every_state_and_dc_each_with_a_source():
    table = rules.rules_table()
    assert set(table) == set(US_STATES) and len(table) == 51
    for rule in table.values():
        assert rule.source["title"] and rule.source["url"].startswith("https://"), rule.state
    assert {s for s, r in table.items() if not r.sales_tax} == {"AK", "DE", "MT", "NH", "OR"}


@pytest.mark.parametrize(("states", "kw", "state", "rule", "result", "evidence"), [
    ([("TX", "32000000001", None)], {}, "TX", "form", "pass", "TX accepts the multistate uniform (MTC) form."),
    ([("NY", "", None)], {}, "NY", "form", "fail", "NY does not accept the multistate uniform (MTC) form."),
    ([("TX", "1", None)], {"form": ExemptionFormType.STREAMLINED}, "TX", "form", "fail",
     "TX does not accept the streamlined (SST) certificate."),
    ([("WA", "1", None)], {"form": ExemptionFormType.STREAMLINED}, "WA", "form", "pass",
     "WA accepts the streamlined (SST) certificate."),
    ([("TX", "", None)], {}, "TX", "state_id", "review", "No TX ID number given"),
    ([("FL", "1", None)], {}, "FL", "expiration", "pass", "Expiration computed as 2027-03-01 from FL's 1-year rule"),
    ([("TX", "1", date(2028, 1, 1))], {}, "TX", "expiration", "pass", "Printed expiration 2028-01-01."),
    ([("TX", "1", None)], {}, "TX", "reason", "pass", "Reason “Resale” is recognised in TX."),
])
def test_checks_give_a_verdict_with_evidence_and_source(states, kw, state, rule, result, evidence):
    check = _verdict(_checks(states, **kw), state, rule)
    assert check["result"] == result
    assert evidence in check["evidence"]
    assert check["source"]["title"] and check["source"]["url"]


def test_no_sales_tax_state_is_refused_with_the_reason(app):
    with pytest.raises(services.InvalidData) as exc:
        services.check_certificate_data(_data([("TX", "1", None), ("OR", "", None)]))
    assert "Oregon levies no statewide sales tax" in exc.value.errors["jurisdictions"]


def _submit(make, states, **kw):
    req, _ = make.exemption_request(now=NOW)
    upload = CheckedUpload(data=tiny_pdf(), content_type=PDF, filename="cert.pdf", page_count=1)
    cert = services.submit_certificate(req, _data(states, **kw), upload, now=NOW + timedelta(hours=1))
    db.session.commit()
    return cert


def test_a_rule_override_shows_in_the_checks_of_the_next_submission(app, make):
    admin = make.user(Role.ADMIN)
    before = _submit(make, [("TX", "1", None)])
    assert _verdict(before.checks, "TX", "reason")["result"] == "pass"

    with pytest.raises(rules.RuleError) as exc:
        rules.override_rule("TX", {"reasons": ["government"]}, note="", actor=admin, now=NOW)
    assert "note" in exc.value.errors
    rules.override_rule("TX", {"reasons": ["government"]}, note="Bulletin 2026-7: resale needs Form X",
                        actor=admin, now=NOW)
    db.session.commit()

    after = _submit(make, [("TX", "1", None)])
    check = _verdict(after.checks, "TX", "reason")
    assert check["result"] == "fail" and "not recognised in TX" in check["evidence"]
    assert rules.rule_for("TX").override["note"] == "Bulletin 2026-7: resale needs Form X"
    assert rules.rule_for("TX").override["version"] == 1
    timeline = [a.message for a in db.session.scalars(sa.select(Activity).filter_by(subject_id=after.id,
                                                                                  action="checked"))]
    assert timeline and "1 fail" in timeline[0] and "not recognised in TX" in timeline[0]


def test_computed_expiry_is_stored_and_counts_in_the_lookup(app, make):
    cert = _submit(make, [("FL", "1", None)])
    assert cert.jurisdictions[0].rule_expiration == date(2027, 3, 1)
    reviewer = make.user(Role.REVIEWER)
    services.approve_certificate(cert, reviewer=reviewer, now=NOW + timedelta(days=1))
    db.session.commit()
    assert services.lookup(cert.customer_id, "FL", date(2027, 2, 28)) == [cert]
    assert services.lookup(cert.customer_id, "FL", date(2027, 3, 2)) == []


def test_approving_past_a_failed_check_needs_a_note_which_is_kept(app, make):
    reviewer = make.user(Role.REVIEWER)
    cert = _submit(make, [("NY", "", None)])  # NY does not take the MTC form
    with pytest.raises(services.InvalidData) as exc:
        services.approve_certificate(cert, reviewer=reviewer, now=NOW + timedelta(days=1))
    assert "does not accept the multistate uniform (MTC) form" in exc.value.errors["notes"]
    db.session.rollback()
    services.approve_certificate(cert, reviewer=reviewer, now=NOW + timedelta(days=1),
                                 notes="Customer also sent ST-120; on file")
    db.session.commit()
    assert cert.status is CS.ACTIVE
    override = db.session.scalar(sa.select(Activity).filter_by(subject_id=cert.id, action="checks_overridden"))
    assert "Customer also sent ST-120" in override.message


def test_single_purchase_certificate_answers_only_for_its_po(app, make):
    reviewer = make.user(Role.REVIEWER)
    single = _submit(make, [("TX", "1", None)], purchase=PurchaseType.SINGLE, po="PO-55120")
    services.approve_certificate(single, reviewer=reviewer, now=NOW + timedelta(days=1))
    db.session.commit()
    on = date(2026, 6, 1)
    assert services.lookup(single.customer_id, "TX", on) == []
    assert services.lookup(single.customer_id, "TX", on, po="PO-55120") == [single]
    assert services.lookup(single.customer_id, "TX", on, po="po-55120 ") == [single]
    assert services.lookup(single.customer_id, "TX", on, po="PO-1") == []

    blanket = make.exemption_certificate(customer=single.customer, states=(("TX", "1", None),))
    assert services.lookup(single.customer_id, "TX", on, po="PO-1") == [blanket]


def test_renewal_goes_out_45_days_before_the_earliest_expiry_once(app, make):
    cert = make.exemption_certificate(states=(("TX", "1", date(2026, 9, 30)), ("OK", "2", date(2027, 9, 30))))
    cert.customer.contact_email = "buyer@renew.example.com"
    db.session.commit()
    day_before = datetime(2026, 8, 15, 23, 59, tzinfo=UTC)  # 46 days before Sep 30
    assert services.renew_certificate(cert, now=day_before) is None
    due = datetime(2026, 8, 16, 0, 1, tzinfo=UTC)  # Sep 30 - 45 days
    req = services.renew_certificate(cert, now=due)
    assert req is not None and req.source == "renewal" and req.email == "buyer@renew.example.com"
    assert services.renew_certificate(cert, now=due + timedelta(days=1)) is None  # once
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(ExemptionRequest.id)).filter_by(source="renewal")) == 1


@pytest.mark.parametrize(("now", "expires", "days"), [
    # 5 days left is "5 days", whatever the schedule said
    (datetime(2026, 5, 1, 12, tzinfo=UTC), datetime(2026, 5, 6, 12, tzinfo=UTC), 5),
    # across the US spring-forward change (2027-03-14) and a month end
    (datetime(2027, 3, 10, 15, tzinfo=UTC), datetime(2027, 3, 17, 15, tzinfo=UTC), 7),
    (datetime(2026, 1, 30, 12, tzinfo=UTC), datetime(2026, 2, 2, 11, tzinfo=UTC), 3),
    (datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 11, tzinfo=UTC), 1),
])
def test_reminder_day_counts(now, expires, days):
    assert services.days_left(expires, now) == days
