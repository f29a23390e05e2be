"""The audit pack through the real worker: the ZIP's CSV rows are exactly the certificates active in the
range for the asked states, each listed document is in the ZIP as uploaded, with its review history."""

import csv
import io
import zipfile
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app.cli import create_api_token
from app.enums import ExemptionCertificateStatus as CS
from app.enums import Role
from app.extensions import db
from app.models import AuditPack
from tests.factories import tiny_pdf


@pytest.fixture
def bearer(make):
    token = create_api_token(make.user(Role.REVIEWER))
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _cert(make, customer, states, *, status=CS.ACTIVE, effective=date(2025, 6, 1), activated=None, text="doc"):
    cert = make.exemption_certificate(customer, status=status, states=states, effective=effective,
                                      document=tiny_pdf(text))
    cert.activated_at = activated or datetime.combine(effective, datetime.min.time(), tzinfo=UTC)
    db.session.commit()
    return cert


def test_audit_pack_for_two_states_over_a_year(client, make, bearer, run_jobs):
    acme = make.customer(name="Acme Supply")
    bolt = make.customer(name="=Bolt Tools")  # a formula-looking name is neutralised in the CSV
    in_tx = _cert(make, acme, (("TX", "32000000001", date(2027, 1, 1)), ("CA", "", None)), text="acme tx")
    in_ny = _cert(make, bolt, (("NY", "NY-9", None),), effective=date(2026, 3, 1), text="bolt ny")
    expired_in_range = _cert(make, bolt, (("TX", "", date(2026, 2, 1)),), status=CS.EXPIRED,
                             effective=date(2024, 1, 1), text="bolt old")
    _cert(make, acme, (("CA", "", None),))  # another state
    _cert(make, acme, (("TX", "", date(2025, 12, 31)),), effective=date(2024, 1, 1))  # ended before the range
    _cert(make, acme, (("TX", "", None),), effective=date(2027, 2, 1))  # starts after the range
    _cert(make, acme, (("NY", "", None),), status=CS.REJECTED)  # never active
    _cert(make, acme, (("NY", "", None),), status=CS.PENDING_REVIEW)

    started = client.post("/api/v1/audit-packs", json={"from": "2026-01-01", "to": "2026-12-31",
                                                      "jurisdictions": ["tx", "NY"]}, headers=bearer)
    assert started.status_code == 202
    body = started.get_json()
    assert body["status"] == "queued" and body["jurisdictions"] == ["NY", "TX"] and body["download_url"] is None
    run_jobs()
    done = client.get(f"/api/v1/audit-packs/{body['id']}", headers=bearer).get_json()
    assert done["status"] == "done" and done["progress"] == 100 and done["total"] == 3
    download = client.get(done["download_url"].replace("http://localhost", ""), headers=bearer)
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]

    zf = zipfile.ZipFile(io.BytesIO(download.data))
    rows = list(csv.DictReader(io.StringIO(zf.read("certificates.csv").decode())))
    assert sorted((int(r["certificate_id"]), r["state"]) for r in rows) == sorted(
        [(in_tx.id, "TX"), (in_ny.id, "NY"), (expired_in_range.id, "TX")])
    tx_row = next(r for r in rows if int(r["certificate_id"]) == in_tx.id)
    assert tx_row["customer"] == "Acme Supply" and tx_row["state_id"] == "32000000001"
    assert tx_row["expiration"] == "2027-01-01" and tx_row["purchase_type"] == "blanket"
    assert next(r for r in rows if int(r["certificate_id"]) == in_ny.id)["customer"] == "'=Bolt Tools"
    for r in rows:
        assert r["document"] in zf.namelist()
        assert f"history/certificate-{r['certificate_id']}.txt" in zf.namelist()
    assert b"acme tx" in zf.read(tx_row["document"]) or zf.read(tx_row["document"]).startswith(b"%PDF")


def test_staff_page_builds_a_pack_and_offers_the_download(client, auth, make, run_jobs):
    auth.login(make.user(Role.REVIEWER))
    page = client.get("/exemptions/audit-packs").get_data(as_text=True)
    assert "Build the audit pack" in page and "Texas (TX)" in page
    response = client.post("/exemptions/audit-packs", data={"from": "2026-01-01", "to": "2026-12-31",
                                                          "jurisdictions": ["TX"]})
    assert response.status_code in (302, 303)
    pack_url = response.headers["Location"]
    run_jobs()
    page = client.get(pack_url).get_data(as_text=True)
    assert "Done" in page and "Download exemption-audit-2026-01-01-2026-12-31-" in page


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"from": "2026-01-01", "to": "2025-01-01", "jurisdictions": ["TX"]}, "to", "on or after"),
    ({"from": "2010-01-01", "to": "2026-01-01", "jurisdictions": ["TX"]}, "to", "at most 10 years"),
    ({"from": "2026-01-01", "to": "2026-02-01", "jurisdictions": ["ZZ"]}, "jurisdictions", "not a US state"),
    ({"from": "2026-01-01", "to": "2026-02-01", "jurisdictions": []}, "jurisdictions", "at least one"),
    ({"from": "01/02/2026", "to": "2026-02-01", "jurisdictions": ["TX"]}, "from", "YYYY-MM-DD"),
])
def test_bad_audit_requests_are_refused_and_store_nothing(client, bearer, body, field, message):
    response = client.post("/api/v1/audit-packs", json=body, headers=bearer)
    assert response.status_code == 422
    assert message in response.get_json()["fields"][field]
    assert db.session.scalar(sa.select(sa.func.count(AuditPack.id))) == 0
