"""State rule checks as a reviewer and an integration see them: the review page's table with evidence
and sources, approval past a failed check, the rules and certificate API, and the lookup by PO."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.cli import create_api_token
from app.enums import ExemptionFormType, ExemptionReason, PurchaseType, Role
from app.exemptions import services
from app.extensions import db
from app.models import Activity, ExemptionCertificate
from app.uploads import PDF, CheckedUpload
from tests.factories import tiny_pdf

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _submitted(make, states, *, form=ExemptionFormType.UNIFORM_MULTISTATE, purchase=PurchaseType.BLANKET, po=""):
    req, _ = make.exemption_request(now=NOW)
    data = services.CertificateData(
        reason=ExemptionReason.RESALE, form_type=form, purchase_type=purchase, tax_id_number="12-3456789",
        effective_date=date(2026, 3, 1), purchaser_name="Buyer Inc", purchaser_address="1 Main St",
        signer_name="Pat", signed_on=date(2026, 3, 1), po_number=po, jurisdictions=states)
    upload = CheckedUpload(data=tiny_pdf(), content_type=PDF, filename="cert.pdf", page_count=1)
    cert = services.submit_certificate(req, data, upload, now=NOW + timedelta(hours=1))
    db.session.commit()
    return cert


@pytest.fixture
def reviewer(make, auth):
    user = make.user(Role.REVIEWER, name="Rita Reviewer")
    auth.login(user)
    return user


@pytest.fixture
def bearer(make):
    token = create_api_token(make.user(Role.ADMIN))
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_review_page_shows_each_check_with_evidence_and_source(client, reviewer, make):
    cert = _submitted(make, [("NY", "", None), ("TX", "32000000001", None)])
    page = client.get(f"/exemptions/certificates/{cert.id}").get_data(as_text=True)
    assert "State rule checks" in page
    assert "NY does not accept the multistate uniform (MTC) form." in page
    assert "TX accepts the multistate uniform (MTC) form." in page
    assert "Multistate Tax Commission" in page and "https://www.mtc.gov/" in page
    assert "1 check failed: approving needs a note saying why." in page


def test_approve_past_a_failed_check_needs_a_note_then_records_it(client, htmx, reviewer, make):
    cert = _submitted(make, [("NY", "", None)])
    refused = htmx.post(f"/exemptions/certificates/{cert.id}/approve", data={"version": str(cert.version)})
    assert refused.status_code == 422
    assert "Add a note saying why you approve anyway." in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status.value == "pending_review"

    ok = htmx.post(f"/exemptions/certificates/{cert.id}/approve",
                   data={"version": str(cert.version), "notes": "ST-120 received separately"})
    assert ok.status_code == 200
    db.session.expire_all()
    assert db.session.get(ExemptionCertificate, cert.id).status.value == "active"
    note = db.session.scalar(sa.select(Activity.message).filter_by(subject_id=cert.id, action="checks_overridden"))
    assert "ST-120 received separately" in note


def test_rules_api_lists_every_state_with_sources(client, bearer):
    body = client.get("/api/v1/exemption-rules", headers=bearer).get_json()
    assert len(body["rules"]) == 51
    oregon = next(r for r in body["rules"] if r["state"] == "OR")
    assert oregon["sales_tax"] is False and oregon["source"]["url"].startswith("https://")
    tx = client.get("/api/v1/exemption-rules/tx", headers=bearer).get_json()
    assert tx["accepts_mtc"] is True and tx["accepts_sst"] is False and "resale" in tx["reasons"]
    assert tx["override"] is None
    missing = client.get("/api/v1/exemption-rules/ZZ", headers=bearer)
    assert missing.status_code == 404 and "two-letter" in missing.get_json()["error"]
    assert client.get("/api/v1/exemption-rules").status_code == 401


def test_certificate_api_has_status_purchase_type_po_and_checks(client, bearer, make):
    cert = _submitted(make, [("TX", "1", None)], purchase=PurchaseType.SINGLE, po="PO-55120")
    body = client.get(f"/api/v1/exemption-certificates/{cert.id}", headers=bearer).get_json()
    assert body["status"] == "pending_review" and body["purchase_type"] == "single"
    assert body["po_number"] == "PO-55120"
    form = next(c for c in body["checks"] if c["rule"] == "form")
    assert form == {"rule": "form", "state": "TX", "result": "pass",
                    "evidence": "TX accepts the multistate uniform (MTC) form.", "source": form["source"]}
    assert form["source"]["title"].startswith("Multistate Tax Commission")
    assert client.get("/api/v1/exemption-certificates/99999", headers=bearer).status_code == 404


def test_lookup_by_po(client, bearer, make):
    reviewer = make.user(Role.REVIEWER)
    cert = _submitted(make, [("TX", "1", None)], purchase=PurchaseType.SINGLE, po="PO-55120")
    services.approve_certificate(cert, reviewer=reviewer, now=NOW + timedelta(days=1))
    db.session.commit()
    base = f"/api/v1/customers/{cert.customer_id}/exemptions?jurisdiction=TX&on=2026-11-23"
    without = client.get(base, headers=bearer).get_json()
    assert without["exempt"] is False and without["certificates"] == []
    with_po = client.get(base + "&po=PO-55120", headers=bearer).get_json()
    assert with_po["exempt"] is True and with_po["po"] == "PO-55120"
    [answer] = with_po["certificates"]
    assert answer["id"] == cert.id and answer["purchase_type"] == "single" and answer["po_number"] == "PO-55120"
    other = client.get(base + "&po=PO-1", headers=bearer).get_json()
    assert other["exempt"] is False
    empty = client.get(base + "&po=", headers=bearer)
    assert empty.status_code == 422 and "po" in empty.get_json()["fields"]


def test_free_notes_on_requests_certificates_and_customers(client, reviewer, make):
    cert = _submitted(make, [("TX", "1", None)])
    req = cert.request
    for url, page in [(f"/exemptions/requests/{req.id}/notes", f"/exemptions/requests/{req.id}"),
                      (f"/exemptions/certificates/{cert.id}/notes", f"/exemptions/certificates/{cert.id}"),
                      (f"/exemptions/customers/{cert.customer_id}/notes", f"/exemptions/customers/{cert.customer_id}")]:
        added = client.post(url, data={"text": f"Called the buyer about {url}"})
        assert added.status_code == 303 and added.headers["Location"].endswith(page)
        assert f"Called the buyer about {url}" in client.get(page).get_data(as_text=True)
        refused = client.post(url, data={"text": "   "})
        assert refused.status_code == 422 and "Write the note first." in refused.get_data(as_text=True)
        too_long = client.post(url, data={"text": "x" * 5001})
        assert too_long.status_code == 422 and "up to 5,000 characters" in too_long.get_data(as_text=True)
    notes = db.session.scalars(sa.select(Activity).filter_by(is_note=True)).all()
    assert len(notes) == 3
    # the customer's own page gathers all three
    page = client.get(f"/exemptions/customers/{cert.customer_id}").get_data(as_text=True)
    assert page.count("Called the buyer about") == 3


def test_admin_overrides_a_state_rule_with_a_note_and_sees_the_history(client, auth, make):
    auth.login(make.user(Role.ADMIN, name="Ada Admin"))
    table = client.get("/admin/exemption-rules").get_data(as_text=True)
    assert "Oregon (OR)" in table and "Multistate" not in table.split("Oregon (OR)")[0][-10:]
    page = client.get("/admin/exemption-rules/TX").get_data(as_text=True)
    assert "Texas (TX)" in page and "No changes: the repository" in page

    keep = {"sales_tax": "on", "accepts_mtc": "on", "state_id_required": "on",
            "reasons": ["resale", "government", "non_profit"]}
    refused = client.post("/admin/exemption-rules/TX", data=keep)
    assert refused.status_code == 422 and "Say why the rule is changed" in refused.get_data(as_text=True)
    assert rules_override_count() == 0

    saved = client.post("/admin/exemption-rules/TX", data={**keep, "note": "Comptroller letter 2026-14"})
    assert saved.status_code == 303
    page = client.get("/admin/exemption-rules/TX").get_data(as_text=True)
    assert "Comptroller letter 2026-14" in page and "Ada Admin" in page
    from app.exemptions import rules
    assert rules.rule_for("TX").reasons == ("resale", "government", "non_profit")


def rules_override_count() -> int:
    from app.models import ExemptionRuleOverride

    return db.session.scalar(sa.select(sa.func.count(ExemptionRuleOverride.id)))
