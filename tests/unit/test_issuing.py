"""One issuing path: numbers and revisions, verification code + QR code, PAdES signature, SHA-256, the
public verify pages (by code and by upload) and the API's view of a certificate."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from pypdf import PdfReader

from app.enums import EndorsementKind, PolicyStatus, RequestType
from app.extensions import db
from app.insurance import issuing, signing
from app.insurance.certificate_data import build_certificate_data
from app.insurance.documents import issue_certificate
from app.insurance.layout import HolderInfo
from app.models import Endorsement
from app.storage import get_store

NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
HOLDER = HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                    zip_code="78701", email="certs@northwind.example.com")


def pdf_of(cert) -> bytes:
    return get_store().read(cert.document_key)


def qr_text(pdf: bytes, page: int = 1) -> list[str]:
    """Decode the QR code on ``page`` (1-based) from a rendered image (poppler -> zxing-cpp)."""
    import subprocess
    import tempfile
    from pathlib import Path

    import zxingcpp
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "c.pdf"
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", str(page), "-l", str(page), str(src),
                        str(Path(tmp) / "p")], check=True)
        image = Image.open(next(Path(tmp).glob("p*.png")))
        return [b.text for b in zxingcpp.read_barcodes(image)]


def test_issue_numbers_signs_hashes_and_prints_a_verifiable_qr_code(app, make):
    customer = make.customer(name="Acme Roofing LLC")
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    db.session.commit()
    pdf = pdf_of(cert)
    import hashlib

    assert cert.revision == 1 and cert.is_current and len(cert.verification_code) == 10
    assert cert.sha256 == hashlib.sha256(pdf).hexdigest()
    url = f"http://certdesk.test/verify/{cert.verification_code}"
    # The QR code decodes to the verify URL, and a link annotation over it opens the same page.
    assert qr_text(pdf) == [url]
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert [a.get_object()["/A"]["/URI"] for a in page["/Annots"] if a.get_object()["/Subtype"] == "/Link"] == [url]
    text = page.extract_text()
    assert cert.certificate_number in text and f"{cert.verification_code[:5]}-{cert.verification_code[5:]}" in text
    # PAdES signature by this run's own key: valid, covering the whole file; one changed byte breaks it.
    status = signing.signature_status(pdf, trust_cert_path=app.config["CERT_SIGNING_CERT"])
    assert status == {"signed": True, "intact": True, "valid": True, "trusted": True, "covers_whole_file": True}
    tampered = bytearray(pdf)
    spot = pdf.index(b"Northwind") if b"Northwind" in pdf else len(pdf) // 3
    tampered[spot] ^= 0x01
    assert signing.signature_status(bytes(tampered), trust_cert_path=app.config["CERT_SIGNING_CERT"])["intact"] is False


def test_reissue_keeps_the_number_increments_the_revision_and_supersedes(app, make, client):
    customer = make.customer()
    first = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    later = NOW + timedelta(days=3)
    second = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=later)
    db.session.commit()
    assert second.certificate_number == first.certificate_number
    assert (first.revision, second.revision) == (1, 2)
    assert not first.is_current and first.superseded_by_id == second.id and second.is_current
    assert second.verification_code != first.verification_code and second.sha256 != first.sha256
    page = client.get(f"/verify/{first.verification_code}")
    assert page.status_code == 200
    assert "Superseded by revision 2 on 06/04/2026" in page.text
    current = client.get(f"/verify/{second.verification_code.lower()[:5]}-{second.verification_code.lower()[5:]}")
    assert "Current." in current.text and "revision" in current.text.lower()
    # Another holder: its own number.
    other = issue_certificate(customer, kind=RequestType.COI, holder=HolderInfo(
        name="Other Holder", address="1 Elm St", city="Austin", state="TX", zip_code="78702"), actor=None, now=NOW)
    assert other.certificate_number != first.certificate_number and other.revision == 1


def test_verify_page_shows_only_the_face_of_the_certificate_and_its_state(app, make, client):
    customer = make.customer(name="Acme Roofing LLC", contact_email="secret-contact@acme.example.com")
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    db.session.commit()
    page = client.get(f"/verify/{cert.verification_code}")
    assert page.status_code == 200
    for shown in ("Northwind Builders Inc", "Acme Roofing LLC", cert.certificate_number, "Current."):
        assert shown in page.text
    for hidden in ("secret-contact@acme.example.com", "GL-", "1,000,000", "500 Congress Ave", "certs@northwind"):
        assert hidden not in page.text
    # A policy on it cancelled: the page says so at once.
    gl = next(p for p in customer.policies if p.line.value == "general_liability")
    gl.status, gl.cancelled_on = PolicyStatus.CANCELLED, date(2026, 7, 15)
    db.session.commit()
    assert "A policy on it was cancelled on 07/15/2026." in client.get(f"/verify/{cert.verification_code}").text


@pytest.mark.parametrize("code", ["ZZZZZZZZZZ", "not-a-code", "K7Q2M9XD4H'--", "0" * 40])
def test_unknown_or_tampered_code_is_a_neutral_404(app, make, client, code):
    make.customer()
    response = client.get(f"/verify/{code}")
    assert response.status_code == 404
    assert "Northwind" not in response.text and "Customer" not in response.text


def test_upload_matches_the_original_byte_for_byte_and_refuses_a_changed_byte(app, make, client):
    customer = make.customer()
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    db.session.commit()
    pdf = pdf_of(cert)
    ok = client.post("/verify", data={"file": (io.BytesIO(pdf), "cert.pdf")}, content_type="multipart/form-data")
    assert ok.status_code == 200
    assert "exactly a certificate CertDesk issued" in ok.text and cert.certificate_number in ok.text
    changed = bytearray(pdf)
    changed[len(pdf) // 2] ^= 0x20
    bad = client.post("/verify", data={"file": (io.BytesIO(bytes(changed)), "cert.pdf")},
                      content_type="multipart/form-data")
    assert bad.status_code == 200 and "not a certificate CertDesk issued" in bad.text
    assert cert.certificate_number not in bad.text
    junk = client.post("/verify", data={"file": (io.BytesIO(b"GIF89a not a pdf"), "cert.pdf")},
                       content_type="multipart/form-data")
    assert junk.status_code == 422 and "not a PDF" in junk.text


def test_verify_is_rate_limited(app, make, client):
    app.config["VERIFY_RATE_LIMIT"] = "3 per minute"
    statuses = [client.get("/verify/ZZZZZZZZZZ").status_code for _ in range(5)]
    assert statuses[:3] == [404, 404, 404] and statuses[-1] == 429


def test_guard_blocks_an_unbacked_mark_unless_a_note_is_given(app, make):
    customer = make.customer()
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=NOW.date(),
                                  overrides={"coverages": {"general_liability": {"addl_insd": "1"}}})
    with pytest.raises(issuing.CertificateBlocked, match="additional insured endorsement"):
        issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW, data=data)
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW, data=data,
                             override_note="Carrier confirmed AI in writing.")
    assert cert.guard["override_note"] == "Carrier confirmed AI in writing." and cert.guard_overridden
    # With a specific endorsement naming the holder, no block at all.
    gl = next(p for p in customer.policies if p.line.value == "general_liability")
    gl.endorsements.append(Endorsement(kind=EndorsementKind.ADDITIONAL_INSURED, holder_name=HOLDER.name))
    db.session.flush()
    again = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW, data=data)
    assert again.guard == {"blocks": [], "warnings": []}


def test_api_certificate_has_verification_url_revision_and_status(app, make, client):
    from app.cli import create_api_token
    from app.enums import Role

    customer = make.customer()
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    user = make.user(Role.CUSTOMER, customer=customer)
    token = create_api_token(user)
    other_token = create_api_token(make.user(Role.CUSTOMER, customer=make.customer()))
    db.session.commit()
    body = client.get(f"/api/v1/certificates/{cert.id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["verification_url"] == f"http://certdesk.test/verify/{cert.verification_code}"
    assert body["revision"] == 1 and body["status"] == "current"
    assert body["certificate_number"] == cert.certificate_number and body["download_url"].endswith("/pdf")
    assert client.get(f"/api/v1/certificates/{cert.id}",
                      headers={"Authorization": f"Bearer {other_token}"}).status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/certificates/{id}" in spec["paths"]
    assert {"verification_url", "status", "revision"} <= set(spec["components"]["schemas"]["IssuedCertificate"]
                                                               ["properties"])


def test_renewal_and_changed_limits_list_the_certificates_to_reissue_with_a_preview(app, make, client):
    from app.enums import CoverageLine
    from app.models import Policy

    customer = make.customer()
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    db.session.commit()
    assert issuing.certificates_to_reissue(customer, NOW.date()) == []
    gl = next(p for p in customer.policies if p.line is CoverageLine.GENERAL_LIABILITY)
    gl.expiry_date = date(2026, 6, 30)
    customer.policies.append(Policy(line=CoverageLine.GENERAL_LIABILITY, insurer=gl.insurer,
                                    policy_number=f"{gl.policy_number}-R", effective_date=date(2026, 7, 1),
                                    expiry_date=date(2027, 7, 1), supersedes=gl,
                                    limits={"each_occurrence": 2_000_000, "general_aggregate": 2_000_000}))
    db.session.commit()
    later = datetime(2026, 7, 2, 9, 0, tzinfo=UTC)
    [(listed, changes)] = issuing.certificates_to_reissue(customer, later.date())
    assert listed.id == cert.id
    assert f"policy number {gl.policy_number} → {gl.policy_number}-R" in " ".join(changes)
    assert "each occurrence 1000000 → 2000000" in " ".join(changes)
    new = issuing.reissue(cert, actor=None, now=later)
    db.session.commit()
    assert (new.certificate_number, new.revision) == (cert.certificate_number, 2)
    assert "Superseded by revision 2 on 07/02/2026" in client.get(f"/verify/{cert.verification_code}").text
    assert issuing.certificates_to_reissue(customer, later.date()) == []


def test_an_uploaded_certificate_gets_a_verification_page_and_a_signature_and_keeps_its_pages(app, make, client):
    from app.enums import CertificateSource
    from app.insurance.rendering import render_certificate_pdf
    from app.insurance.sample import sample_data

    customer = make.customer(name="Acme Roofing LLC")
    data = sample_data("coi")
    data["description"] = "Uploaded from the agency system: Eastside Elementary renovation, Building C."
    uploaded = render_certificate_pdf(data)  # issued elsewhere: unsigned, no verification code
    original = [page.extract_text() for page in PdfReader(io.BytesIO(uploaded)).pages]
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW,
                             uploaded_pdf=uploaded)
    db.session.commit()
    pdf = pdf_of(cert)
    import hashlib

    assert cert.source is CertificateSource.UPLOADED
    assert cert.sha256 == hashlib.sha256(pdf).hexdigest() != hashlib.sha256(uploaded).hexdigest()
    assert cert.data["uploaded_sha256"] == hashlib.sha256(uploaded).hexdigest()
    # The original pages, word for word, then one verification page.
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert [page.extract_text() for page in pages[:-1]] == original
    assert "Eastside Elementary renovation, Building C." in " ".join(pages[0].extract_text().split())
    last = " ".join(pages[-1].extract_text().split())
    url = f"http://certdesk.test/verify/{cert.verification_code}"
    for shown in ("Certificate verification", cert.certificate_number, "Revision: 1", "Northwind Builders Inc",
                  "Acme Roofing LLC", "06/01/2026", f"{cert.verification_code[:5]}-{cert.verification_code[5:]}", url):
        assert shown in last, shown
    assert qr_text(pdf, page=len(pages)) == [url]
    assert [a.get_object()["/A"]["/URI"] for a in pages[-1]["/Annots"]] == [url]
    # Signed like a generated certificate; one changed byte breaks it.
    status = signing.signature_status(pdf, trust_cert_path=app.config["CERT_SIGNING_CERT"])
    assert status == {"signed": True, "intact": True, "valid": True, "trusted": True, "covers_whole_file": True}
    tampered = bytearray(pdf)
    tampered[len(uploaded) // 2] ^= 0x01
    assert signing.signature_status(bytes(tampered), trust_cert_path=app.config["CERT_SIGNING_CERT"])["intact"] is False
    # The holder can verify it: by the code on the page, and by uploading the file.
    page = client.get(f"/verify/{cert.verification_code}")
    assert page.status_code == 200 and cert.certificate_number in page.text and "Current." in page.text
    found = client.post("/verify", data={"file": (io.BytesIO(pdf), "c.pdf")}, content_type="multipart/form-data")
    assert "exactly a certificate CertDesk issued" in found.text and cert.certificate_number in found.text


def test_an_uploaded_pdf_locked_against_editing_is_signed_and_a_broken_one_is_refused(app, make):
    from pypdf import PdfWriter

    from app.insurance.certificate_data import CertificateDataError
    from app.insurance.rendering import render_certificate_pdf
    from app.insurance.sample import sample_data
    from app.models import IssuedCertificate

    customer = make.customer()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(render_certificate_pdf(sample_data("coi")))))
    writer.encrypt(user_password="", owner_password="agency-owner")  # opens without a password
    locked = io.BytesIO()
    writer.write(locked)
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW,
                             uploaded_pdf=locked.getvalue())
    pdf = pdf_of(cert)
    assert signing.signature_status(pdf, trust_cert_path=app.config["CERT_SIGNING_CERT"])["valid"]
    assert "CERTIFICATE OF LIABILITY INSURANCE" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    db.session.commit()
    with pytest.raises(CertificateDataError, match="could not be stamped and signed"):
        issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW,
                          uploaded_pdf=b"%PDF-1.4\n% no objects at all\n%%EOF\n")
    db.session.rollback()
    assert db.session.query(IssuedCertificate).count() == 1


def test_a_prepared_signature_validates_with_an_rsa_or_an_ec_key_and_breaks_on_a_changed_byte(app, tmp_path):
    """The signature our stamping writes (``signing.Seal``): pyHanko validates it for RSA and for ECDSA keys
    (an ECDSA signature's length varies: each file still gets one that fits), and a changed byte breaks it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pyhanko.sign import signers

    from app.insurance import rendering, sample, stamping

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Agency EC signing")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "ec-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "ec-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pairs = [(app.config["CERT_SIGNING_KEY"], app.config["CERT_SIGNING_CERT"]),
             (tmp_path / "ec-key.pem", tmp_path / "ec-cert.pem")]
    stamper = stamping.Stamper(rendering.render_base_pdf(sample.sample_data("coi")))
    for key_path, cert_path in pairs:
        seal = signing.Seal(signing.kept_key_signer(signers.SimpleSigner.load(str(key_path), str(cert_path))),
                            signed_at=NOW)
        for i in range(8):
            stamp = stamping.IssueStamp(number=f"20260601-00001-00000{i}", revision=1, code="K7Q2M9XD4H",
                                   url="http://certdesk.test/verify/K7Q2M9XD4H")
            signed = stamper.stamp(HolderInfo(name=f"Holder {i} LLC"), stamp, seal)
            status = signing.signature_status(signed, trust_cert_path=cert_path)
            assert status == {"signed": True, "intact": True, "valid": True, "trusted": True,
                              "covers_whole_file": True}, (cert_path, i)
            assert f"Holder {i} LLC" in PdfReader(io.BytesIO(signed)).pages[0].extract_text()
        changed = bytearray(signed)
        changed[len(signed) // 3] ^= 0x01  # in the shared render, before the holder's update
        assert signing.signature_status(bytes(changed), trust_cert_path=cert_path)["intact"] is False
