"""Mass generation goes through the one issuing path: every holder's certificate has its own number,
revision, verification code and QR code, recorded and shown in the sent-certificates history; a second run
re-issues (revision 2) and the first revisions' verify pages say superseded; every ZIP member is a signed
PDF of its own and the combined PDF is signed."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import sqlalchemy as sa
from pypdf import PdfReader

from app.customers import generation, holders
from app.enums import CoverageLine, GenerationMode, GenerationStatus, Role
from app.extensions import db
from app.insurance import signing
from app.models import IssuedCertificate, SentCertificate
from app.models.base import utcnow
from app.storage import get_store

# Stamped per holder into the COVERAGES bar (number, then revision), read back as the page's last text.
NUMBER = re.compile(r"(\d{8}-\d{5}-[0-9A-F]{6}) (\d+)$")


def _customer_with_holders(make, count: int):
    customer = make.customer(name="Bigco Roofing LLC")
    staff = make.user(Role.REVIEWER)
    for i in range(count):
        holders.add_holder(customer, {"name": f"Holder {i:02d} Builders", "email": f"h{i}@example.com",
                                      "address": f"{i} Main St", "city": "Austin", "state": "TX", "zip_code": "78701"},
                           actor=staff, now=utcnow())
    db.session.commit()
    return customer, staff


def _run(customer, staff, mode, run_jobs, **kw):
    run = generation.start_generation(customer, holder_ids=None, mode=mode, actor=staff, now=utcnow(), **kw)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE, run.error
    return run


def _flat(pdf: bytes, page: int = 0) -> str:
    return " ".join(PdfReader(io.BytesIO(pdf)).pages[page].extract_text().split())


def test_fifty_holders_fifty_numbers_then_revision_two_supersedes(app, make, run_jobs, client, auth):
    customer, staff = _customer_with_holders(make, 50)
    first = _run(customer, staff, GenerationMode.ZIP, run_jobs, record_sent=True)
    with zipfile.ZipFile(get_store().path(first.file_key)) as archive:
        members = [archive.read(name) for name in archive.namelist()]
    printed = [NUMBER.search(_flat(pdf)).group(1) for pdf in members]
    assert len(members) == 50 and len(set(printed)) == 50
    certs = db.session.scalars(sa.select(IssuedCertificate).where(IssuedCertificate.generation_run_id == first.id)
                               .order_by(IssuedCertificate.id)).all()
    assert sorted(c.certificate_number for c in certs) == sorted(printed)
    assert all(c.revision == 1 and c.is_current for c in certs)
    # Each ZIP member is its certificate's file, byte for byte (SHA-256), with its own verification code.
    by_hash = {c.sha256: c for c in certs}
    for pdf in members:
        cert = by_hash[hashlib.sha256(pdf).hexdigest()]
        assert NUMBER.search(_flat(pdf)).groups() == (cert.certificate_number, "1")
        assert cert.holder_name in _flat(pdf)
        code = cert.verification_code
        assert f"{code[:5]}-{code[5:]}" in _flat(pdf)
    # The sent-certificates history shows number and revision.
    sent = db.session.scalars(sa.select(SentCertificate).order_by(SentCertificate.id)).all()
    assert len(sent) == 50 and {s.certificate.certificate_number for s in sent} == set(printed)
    auth.login(staff)
    history = client.get(f"/customers/{customer.id}/sent-certificates").text
    assert sent[0].certificate.certificate_number in history and "rev. 1" in history

    second = _run(customer, staff, GenerationMode.ZIP, run_jobs, record_sent=True)
    again = db.session.scalars(sa.select(IssuedCertificate).where(IssuedCertificate.generation_run_id == second.id)
                               ).all()
    assert len(again) == 50 and all(c.revision == 2 for c in again)
    assert {c.certificate_number for c in again} == set(printed)  # same numbers, next revision
    db.session.expire_all()
    old = db.session.get(IssuedCertificate, certs[0].id)
    assert not old.is_current
    page = client.get(f"/verify/{old.verification_code}")
    assert page.status_code == 200 and "Superseded by revision 2" in page.text
    with zipfile.ZipFile(get_store().path(second.file_key)) as archive:
        assert NUMBER.search(_flat(archive.read(archive.namelist()[0]))).group(2) == "2"


def test_merged_pdf_is_signed_in_place_and_each_page_has_its_own_number_and_qr_link(app, make, run_jobs, client):
    customer, staff = _customer_with_holders(make, 5)
    run = _run(customer, staff, GenerationMode.MERGED, run_jobs)
    merged = get_store().read(run.file_key)
    status = signing.signature_status(merged, trust_cert_path=app.config["CERT_SIGNING_CERT"])
    assert status["intact"] and status["valid"] and status["covers_whole_file"] and status["trusted"]
    changed = bytearray(merged)
    changed[len(merged) // 2] ^= 0x01  # a holder's page, written after the shared render
    assert signing.signature_status(bytes(changed), trust_cert_path=app.config["CERT_SIGNING_CERT"])["intact"] is False
    reader = PdfReader(io.BytesIO(merged))
    numbers, links = [], []
    for page in reader.pages:
        numbers.append(NUMBER.search(" ".join(page.extract_text().split())).group(1))
        links += [a.get_object()["/A"]["/URI"] for a in page.get("/Annots", []) if "/A" in a.get_object()]
    certs = db.session.scalars(sa.select(IssuedCertificate).where(IssuedCertificate.generation_run_id == run.id)).all()
    assert sorted(numbers) == sorted(c.certificate_number for c in certs) and len(set(numbers)) == 5
    assert sorted(links) == sorted(f"http://certdesk.test/verify/{c.verification_code}" for c in certs)
    # The combined file is what was delivered: uploading it finds all five.
    found = client.post("/verify", data={"file": (io.BytesIO(merged), "all.pdf")}, content_type="multipart/form-data")
    assert "exactly a certificate CertDesk issued" in found.text
    assert all(c.certificate_number in found.text for c in certs)


def test_mass_generation_marks_subr_wvd_only_on_the_wc_row_and_only_when_endorsed(app, make, run_jobs):
    customer, staff = _customer_with_holders(make, 2)
    from app.models import CustomerHolder

    for link in db.session.scalars(sa.select(CustomerHolder)):
        link.waiver_of_subrogation = link.additional_insured = True
    db.session.commit()
    run = _run(customer, staff, GenerationMode.ZIP, run_jobs)
    cert = db.session.scalars(sa.select(IssuedCertificate).where(IssuedCertificate.generation_run_id == run.id)).first()
    marks = {row["line"]: (row["addl_insd"], row["subr_wvd"]) for row in cert.data["coverages"] if row["present"]}
    # The factory's WC policy has a blanket waiver; GL has no additional insured endorsement.
    assert marks[CoverageLine.WORKERS_COMP.value] == (False, True)
    assert marks[CoverageLine.GENERAL_LIABILITY.value] == (False, False)
    assert marks[CoverageLine.AUTOMOBILE.value] == (False, False)
    from app.models import Activity

    note = db.session.scalar(sa.select(Activity.message).filter_by(subject_id=run.id, action="marks_omitted"))
    assert "no blanket additional insured endorsement" in note


def test_every_zip_member_is_signed_and_verifies_as_its_own_certificate(app, make, run_jobs, client):
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    customer, staff = _customer_with_holders(make, 6)
    run = _run(customer, staff, GenerationMode.ZIP, run_jobs)
    with zipfile.ZipFile(get_store().path(run.file_key)) as archive:
        members = [archive.read(name) for name in archive.namelist()]
    certs = {c.sha256: c for c in db.session.scalars(sa.select(IssuedCertificate).where(
        IssuedCertificate.generation_run_id == run.id))}
    assert len(members) == len(certs) == 6
    trust = app.config["CERT_SIGNING_CERT"]
    context = ValidationContext(trust_roots=[load_cert_from_pemder(trust)], allow_fetching=False)
    for pdf in members:
        # pyHanko's own validation: one PAdES signature over the whole file, by our key.
        [embedded] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert signing.signature_status(pdf, trust_cert_path=trust) == {
            "signed": True, "intact": True, "valid": True, "trusted": True, "covers_whole_file": True}
        # (off the event loop a browser test may have left running in this thread, as the app does)
        status = signing._off_the_event_loop(lambda: validate_pdf_signature(embedded, context))  # noqa: B023
        assert status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"
        assert hashlib.sha256(pdf).hexdigest() in certs  # the stored SHA-256 is of the signed file
    # One changed byte (in the holder's text, or in the certificate drawn before it) breaks the signature.
    first = members[0]
    for spot in (len(first) // 4, first.index(b"/Contents <") - 40):
        changed = bytearray(first)
        changed[spot] ^= 0x01
        assert signing.signature_status(bytes(changed), trust_cert_path=trust)["intact"] is False
    # The holder uploads its member on /verify: that certificate, and no other.
    cert = certs[hashlib.sha256(first).hexdigest()]
    found = client.post("/verify", data={"file": (io.BytesIO(first), f"{cert.filename}")},
                        content_type="multipart/form-data")
    assert "exactly a certificate CertDesk issued" in found.text and cert.certificate_number in found.text
    assert not any(other.certificate_number in found.text for other in certs.values() if other is not cert)
    refused = client.post("/verify", data={"file": (io.BytesIO(bytes(changed)), "x.pdf")},
                          content_type="multipart/form-data")
    assert "not a certificate CertDesk issued" in refused.text
