"""The certificate document: data, rendering read back with pypdf, numbering, revisions, delivery, safety."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.enums import CertificateSource, CoverageLine, RequestType
from app.extensions import db
from app.insurance import layout, rendering, stamping
from app.insurance.agency import get_agency, save_agency
from app.insurance.certificate_data import CertificateDataError, build_certificate_data, certificate_discrepancies
from app.insurance.documents import deliver_certificate, issue_certificate
from app.insurance.layout import HolderInfo
from app.insurance.rendering import render_certificate_pdf
from app.models import Activity, IssuedCertificate, OutboxMessage, Policy
from app.storage import get_store

ON = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
HOLDER = HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                    zip_code="78701", email="certs@northwind.example.com")


def text_of(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def agency(app):
    save_agency({"name": "Harbor Risk Partners", "contact_name": "Dana Broker", "phone": "(512) 555-0100",
                 "email": "desk@harbor.example.com", "address": "100 Congress Ave", "city": "Austin", "state": "TX",
                 "zip_code": "78701", "authorized_representative": "Dana Broker"})
    db.session.commit()


# -- data ---------------------------------------------------------------------------------------------------

def test_data_lists_insurers_and_coverage_rows_from_policies_in_force(make, agency):
    customer = make.customer(name="Bluebonnet Roofing LLC")
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON)

    assert [(i["letter"], i["name"], i["naic"]) for i in data["insurers"]] == [
        ("A", "Alpha Casualty", "11111"), ("B", "Beta Mutual", "22222"), ("C", "Gamma Comp Fund", "33333")]
    rows = {r["line"]: r for r in data["coverages"]}
    assert list(rows) == ["general_liability", "automobile", "umbrella", "workers_comp", "other"]
    assert rows["general_liability"]["letter"] == "A"
    assert rows["general_liability"]["policy_number"] == f"GL-{customer.id}"
    assert rows["umbrella"]["present"] is False
    assert rows["workers_comp"]["subr_wvd"] is False
    assert data["producer"]["name"] == "Harbor Risk Partners"
    assert data["holder"]["name"] == HOLDER.name
    import json
    json.dumps(data)  # stored in IssuedCertificate.data


def test_wos_marks_subr_wvd_on_wc_and_states_waiver_holder_and_project(make, agency):
    customer = make.customer()
    req = make.queue_request(customer, type="coi_wos", project_name="Riverside Tower", project_location="Austin, TX",
                             project_duration="6 months")
    data = build_certificate_data(customer, kind=RequestType.COI_WOS, holder=HolderInfo.from_request(req), on=ON,
                                  request=req)
    wc = next(r for r in data["coverages"] if r["line"] == "workers_comp")
    assert wc["subr_wvd"] is True and wc["addl_insd"] is False
    assert "Waiver of subrogation" in data["description"]
    assert "Northwind Builders Inc" in data["description"]
    assert "Riverside Tower" in data["description"]

    text = flat(text_of(render_certificate_pdf(data))[0])
    assert "WITH WAIVER OF SUBROGATION" in text
    assert ("Waiver of subrogation applies with respect to workers' compensation, where required by written "
            "contract, in favor of the certificate holder: Northwind Builders Inc") in text
    assert "Project: Riverside Tower" in text


def test_peo_poi_shows_only_workers_comp_and_names_the_client(make, agency):
    customer = make.customer(name="Client Co", program=make.program(is_peo=True))
    data = build_certificate_data(customer, kind=RequestType.POI, holder=HolderInfo(name="Jo Buyer"), on=ON)
    assert [r["line"] for r in data["coverages"]] == ["workers_comp"]
    assert "Client Co" in data["description"]
    text = flat(text_of(render_certificate_pdf(data))[0])
    assert "PROOF OF INSURANCE" in text
    assert f"WC-{customer.id}" in text
    assert f"GL-{customer.id}" not in text and f"CA-{customer.id}" not in text
    assert "employees of Client Co, a client company" in text
    assert "Jo Buyer" in text


def test_plain_poi_lists_every_policy_in_force(make, agency):
    customer = make.customer()
    text = flat(text_of(render_certificate_pdf(
        build_certificate_data(customer, kind=RequestType.POI, holder=HolderInfo(name="Jo Buyer"), on=ON)))[0])
    for number in (f"GL-{customer.id}", f"CA-{customer.id}", f"WC-{customer.id}"):
        assert number in text


def test_overrides_edit_limits_description_and_holder(make, agency):
    customer = make.customer()
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON, overrides={
        "description": "Edited wording for the job.",
        "coverages": {"general_liability": {"limits": {"each_occurrence": "$2,000,000"}, "policy_number": "GL-X9"}},
        "holder": {"name": "Northwind Builders Incorporated"},
    })
    gl = next(r for r in data["coverages"] if r["line"] == "general_liability")
    assert gl["limits"][0] == {"key": "each_occurrence", "label": "Each occurrence", "amount": 2_000_000}
    text = flat(text_of(render_certificate_pdf(data))[0])
    assert "$2,000,000" in text and "GL-X9" in text and "Edited wording for the job." in text
    assert "Northwind Builders Incorporated" in text

    with pytest.raises(CertificateDataError, match="not an amount"):
        build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON,
                               overrides={"coverages": {"general_liability": {"limits": {"each_occurrence": "lots"}}}})


def test_no_policy_in_force_is_an_error_and_a_discrepancy(make):
    customer = make.customer()
    later = date(2027, 3, 1)
    with pytest.raises(CertificateDataError, match="No policy is in force"):
        build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=later)
    problems = certificate_discrepancies(customer, kind=RequestType.COI, holder=HOLDER, on=later)
    assert any("No policy is in force" in p for p in problems)
    assert any(f"GL-{customer.id} expired on 01/01/2027" in p for p in problems)


def test_discrepancies_incomplete_holder_address_and_clean_case(make):
    customer = make.customer()
    assert certificate_discrepancies(customer, kind=RequestType.COI, holder=HOLDER, on=ON) == []
    problems = certificate_discrepancies(customer, kind=RequestType.COI,
                                         holder=HolderInfo(name="Acme", address="1 Road"), on=ON)
    assert problems == ["The holder address is incomplete (missing city, state, ZIP code)."]
    # A POI only needs a name.
    assert certificate_discrepancies(customer, kind=RequestType.POI, holder=HolderInfo(name="Acme"), on=ON) == []


def test_wos_without_workers_comp_is_refused(make):
    customer = make.customer(with_policies=False)
    customer.policies.append(Policy(line=CoverageLine.GENERAL_LIABILITY, insurer=make.insurer("Alpha"),
                                    policy_number="GL-1",
                                    effective_date=date(2026, 1, 1), expiry_date=date(2027, 1, 1), limits={}))
    db.session.flush()
    with pytest.raises(CertificateDataError, match="workers' compensation"):
        build_certificate_data(customer, kind=RequestType.COI_WOS, holder=HOLDER, on=ON)
    assert "No workers' compensation policy is in force." in certificate_discrepancies(
        customer, kind=RequestType.COI_WOS, holder=HOLDER, on=ON)


# -- rendering ----------------------------------------------------------------------------------------------

def test_certificate_reads_back_with_every_section_in_order(make, agency):
    customer = make.customer(name="Bluebonnet Roofing LLC")
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON)
    data.update(certificate_number="20260601-00001-ABCDEF", revision=3)
    pages = text_of(render_certificate_pdf(data))
    assert len(pages) == 1  # the common case fits one page
    text = flat(pages[0])
    order = ["CERTIFICATE OF LIABILITY INSURANCE", "06/01/2026", "FOR INFORMATION ONLY", "IMPORTANT",
             "PRODUCER", "Harbor Risk Partners", "INSURED", "Bluebonnet Roofing LLC", "Dana Broker",
             "INSURER A: Alpha Casualty", "11111", "INSURER C: Gamma Comp Fund",
             "CERTIFICATE NUMBER: 20260601-00001-ABCDEF", "REVISION NUMBER: 3", "This certifies",
             "COMMERCIAL GENERAL LIABILITY", f"GL-{customer.id}", "01/01/2026", "01/01/2027", "EACH OCCURRENCE",
             "$1,000,000", "AUTOMOBILE LIABILITY", f"CA-{customer.id}", "UMBRELLA / EXCESS LIABILITY",
             "WORKERS' COMPENSATION", "N/A", f"WC-{customer.id}", "OTHER",
             "DESCRIPTION OF OPERATIONS",
             # The holder box is stamped last into its place at the bottom of the page.
             "Northwind Builders Inc", "500 Congress Ave", "Austin, TX 78701"]
    # The bottom boxes (a fixed frame, drawn first) come out of the text extraction first.
    footer = text.index("CERTIFICATE HOLDER")
    assert footer < text.index("CANCELLATION") < text.index("AUTHORIZED REPRESENTATIVE") < text.index("Dana Broker")
    assert "notice will be delivered in accordance with the policy provisions" in text
    pos = 0
    for needle in order:
        found = text.find(needle, pos)
        assert found >= 0, f"{needle!r} missing or out of order"
        pos = found
    assert "30 days" not in text.lower()
    assert "acord" not in text.lower()


def test_long_description_continues_on_additional_remarks_page(make, agency):
    customer = make.customer()
    words = " ".join(f"word{i}" for i in range(700))
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON,
                                  overrides={"description": words + " THE-END"})
    pages = text_of(render_certificate_pdf(data))
    assert len(pages) == 2
    assert "Continued on the additional remarks page" in pages[0]
    assert "ADDITIONAL REMARKS" in pages[1] and "THE-END" in flat(pages[1])
    # Nothing is lost: every word appears once across both pages.
    everything = flat(pages[0] + " " + pages[1])
    assert all(f"word{i} " in everything + " " for i in (0, 350, 699))
    # The holder is on page 1 only.
    assert HOLDER.name in pages[0] and HOLDER.name not in pages[1]


def test_long_holder_name_wraps_onto_a_second_name_line(make, agency):
    name = "The Board of Trustees of the Riverside Independent School District Facilities Department"
    lines = HolderInfo(name=name, address="1 Road", city="Austin", state="TX", zip_code="78701").lines()
    assert len(lines[0]) <= 50 and " ".join(lines[:2]) == name
    data = build_certificate_data(make.customer(), kind=RequestType.COI, holder=HolderInfo(name=name), on=ON)
    text = text_of(render_certificate_pdf(data))[0]
    assert lines[0] in text and lines[1] in text


# -- safety --------------------------------------------------------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(b"\x89PNG\r\n\x1a\n")

    def log_message(self, *args):
        pass


def test_template_values_cannot_fetch_urls_or_read_files(make, agency, caplog):
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/x.png"
    evil = (f'<img src="file:///etc/passwd"><img src="{url}"><img src="http://127.0.0.1:1/x">'
            '<link rel="stylesheet" href="/etc/passwd">')
    try:
        data = build_certificate_data(make.customer(name=f"Insured {evil}"), kind=RequestType.COI,
                                      holder=HolderInfo(name=f"Holder {evil}"), on=ON,
                                      overrides={"description": f"Desc {evil}"})
        html = rendering.render_html(data)
        assert "<img src=\"file:" not in html and "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html
        out = render_certificate_pdf(data)
    finally:
        server.shutdown()
    assert _Recorder.hits == []
    reader = PdfReader(io.BytesIO(out))
    text = flat(reader.pages[0].extract_text())
    assert '<img src="file:///etc/passwd">' in text  # printed as text, not followed
    assert "root:x:0:0" not in text
    # The only images are our own check boxes.
    xobjects = reader.pages[0]["/Resources"].get("/XObject") or {}
    sizes = {(x.get_object()["/Width"], x.get_object()["/Height"]) for x in xobjects.values()}
    assert sizes <= {(40, 40)}


def test_injected_markup_in_a_resource_path_is_refused_by_link_callback():
    refused = rendering.link_callback("file:///etc/passwd")
    assert not refused.endswith("passwd") and "__refused__" in refused
    assert "__refused__" in rendering.link_callback("http://127.0.0.1:1/x")
    assert "__refused__" in rendering.link_callback("static/pdf/../../app/config.py")
    assert rendering.link_callback("static/pdf/box-checked.png").endswith("static/pdf/box-checked.png")


def test_rendering_does_not_log_css_warnings_but_keeps_real_problems(make, agency, caplog):
    data = build_certificate_data(make.customer(), kind=RequestType.COI, holder=HOLDER, on=ON)
    # CSS xhtml2pdf does not implement makes it warn on every render; those are silenced ...
    html = rendering.render_html(data).replace("</style>", "p { box-shadow: 1px 1px red; width: calc(100% - 2px); }"
                                                     "</style>", 1)
    html = html.replace("</body>", '<img src="static/pdf/not-there.png"></body>')
    with caplog.at_level(logging.WARNING):
        rendering.html_to_pdf(html)
        render_certificate_pdf(data)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("xhtml2pdf")] == []
    # ... a refused resource is still reported, and xhtml2pdf's errors still get through.
    assert any("refused resource 'static/pdf/not-there.png'" in r.getMessage() for r in caplog.records)
    assert logging.getLogger("xhtml2pdf.parser").isEnabledFor(logging.ERROR)


# -- issuing -----------------------------------------------------------------------------------------------

def test_issue_numbers_stores_renders_and_records(make, agency):
    customer = make.customer(name="Bluebonnet Roofing LLC")
    staff = make.user()
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=staff, now=NOW)
    db.session.commit()

    assert cert.revision == 1 and cert.is_current and cert.source is CertificateSource.GENERATED
    assert cert.certificate_number.startswith("20260601-")
    assert cert.data["certificate_number"] == cert.certificate_number
    text = flat(text_of(get_store().read(cert.document_key))[0])
    assert f"CERTIFICATE NUMBER: {cert.certificate_number}" in text
    assert "Bluebonnet Roofing LLC" in text and "Northwind Builders Inc" in text and f"GL-{customer.id}" in text
    assert cert.filename.endswith(".pdf") and cert.holder_email == HOLDER.email
    entry = db.session.scalar(sa.select(Activity).where(Activity.action == "certificate_issued"))
    assert entry.customer_id == customer.id and cert.certificate_number in entry.message


def test_reissue_increments_revision_and_keeps_history(make, agency):
    customer = make.customer()
    first = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    # Same holder written differently (case, punctuation) is the same holder.
    same = HolderInfo(name="NORTHWIND BUILDERS, INC.", address="500 Congress Ave.", city="Austin", state="TX",
                      zip_code="78701")
    second = issue_certificate(customer, kind=RequestType.COI, holder=same, actor=None, now=NOW)
    third = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    other_kind = issue_certificate(customer, kind=RequestType.COI_WOS, holder=HOLDER, actor=None, now=NOW)
    db.session.commit()
    assert [first.revision, second.revision, third.revision, other_kind.revision] == [1, 2, 3, 1]
    assert [c.is_current for c in (first, second, third)] == [False, False, True]
    # A re-issue keeps the number; another kind of certificate is another document with its own.
    assert first.certificate_number == second.certificate_number == third.certificate_number
    assert other_kind.certificate_number != first.certificate_number
    assert [first.superseded_by_id, second.superseded_by_id] == [second.id, third.id]
    assert "REVISION NUMBER: 3" in flat(text_of(get_store().read(third.document_key))[0])


def test_agency_defaults_and_save(app):
    assert get_agency()["name"]  # a default, never blank on the certificate
    save_agency({"name": " Harbor ", "phone": "1", "bogus": "x"})
    agency = get_agency()
    assert agency["name"] == "Harbor" and agency["phone"] == "1" and "bogus" not in agency


def test_deliver_one_message_per_recipient_with_attachment_over_smtp(make, agency, run_jobs, smtp):
    customer = make.customer(name="Bluebonnet Roofing LLC")
    cert = issue_certificate(customer, kind=RequestType.COI, holder=HOLDER, actor=None, now=NOW)
    messages = deliver_certificate(cert, recipients=[HOLDER.email, "Owner@Customer.example.com",
                                                     "owner@customer.example.com", ""])
    again = deliver_certificate(cert, recipients=[HOLDER.email])  # at most once per recipient
    db.session.commit()
    assert len(messages) == 2 and again[0].id == messages[0].id
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2

    run_jobs()
    for address in (HOLDER.email, "owner@customer.example.com"):
        [mail] = smtp.to(address)
        assert cert.certificate_number in mail["Subject"]
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_filename() == cert.filename
        assert attachment.get_content_type() == "application/pdf"
        text = flat(text_of(attachment.get_content())[0])
        assert "Northwind Builders Inc" in text and "Bluebonnet Roofing LLC" in text
    holder_mail = smtp.to(HOLDER.email)[0]
    assert "asked us to send you" in holder_mail.get_body(("plain",)).get_content()


def test_certificate_numbers_are_unique_across_many(make, agency):
    customer = make.customer()
    numbers = [issue_certificate(customer, kind=RequestType.POI, holder=HolderInfo(name=f"H{i}"), actor=None,
                                 now=NOW).certificate_number for i in range(15)]
    db.session.commit()
    assert len(set(numbers)) == 15
    assert db.session.scalar(sa.select(sa.func.count(IssuedCertificate.id))) == 15


def test_tall_rows_and_long_values_stay_on_one_page_without_running_into_next_cell(make, agency):
    customer = make.customer()
    long_number = "POLICY-NUMBER-WITHOUT-ANY-SPACES-0123456789"
    extra = {f"extra_limit_{i}": 100_000 for i in range(5)}
    data = build_certificate_data(customer, kind=RequestType.COI_WOS, holder=HOLDER, on=ON, overrides={
        "coverages": {line: {"policy_number": long_number, "limits": extra} for line in
                      ("general_liability", "automobile", "workers_comp")}})
    capacity = rendering.description_capacity(data)
    assert capacity < layout.DESCRIPTION_MAX_LINES  # the taller rows took room from the description box
    data["description"] = "\n".join(f"Description line {i}" for i in range(capacity))
    pages = text_of(render_certificate_pdf(data))
    assert len(pages) == 1
    text = flat(pages[0])
    assert f"Description line {capacity - 1}" in text and "Continued" not in text
    # The long policy number is broken inside its cell, not cut: both parts are printed.
    assert long_number not in text
    assert text.replace(" ", "").count(long_number) == 3


def test_only_our_own_inlined_images_pass_the_link_callback():
    ours = rendering.inline_image("box-checked")
    assert rendering.link_callback(ours) == ours
    assert "__refused__" in rendering.link_callback("data:image/png;base64,iVBORw0KGgo=")
    with pytest.raises(ValueError):
        rendering.inline_image("../../app/config")


def test_holder_text_always_stays_inside_its_box():
    assert layout.HOLDER_TEXT_X + layout.HOLDER_TEXT_W <= layout.MARGIN + layout.HOLDER_W
    bottom = layout.HOLDER_TEXT_TOP + layout.HOLDER_MAX_LINES * layout.HOLDER_LEADING
    assert bottom <= layout.FOOTER_TOP + layout.FOOTER_H - 4
    huge = HolderInfo(name="N" * 200, address="A" * 200, city="C" * 100, state="TX", zip_code="78701")
    size, leading, lines = huge.fitted()
    assert size < layout.HOLDER_SIZE and len(lines) * leading <= layout.HOLDER_MAX_LINES * layout.HOLDER_LEADING + 0.01
    # Set smaller, never cut: every character typed is in the box.
    joined = "".join(lines)
    assert joined.count("N") == 200 and joined.count("A") == 200 and joined.count("C") == 100
    content = stamping.holder_content(huge).decode("latin-1")
    assert content.count("'") + content.count(" Tj") == len(lines)


def test_override_dates_and_marks(make, agency):
    customer = make.customer()
    data = build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON, overrides={
        "coverages": {"general_liability": {"effective": "02/15/2026", "expiry": "2027-02-15", "addl_insd": "on"},
                      "workers_comp": {"addl_insd": True, "subr_wvd": "1"}}})
    gl, wc = (next(r for r in data["coverages"] if r["line"] == line) for line in ("general_liability", "workers_comp"))
    assert (gl["effective"], gl["expiry"], gl["addl_insd"]) == ("2026-02-15", "2027-02-15", True)
    assert wc["addl_insd"] is False and wc["subr_wvd"] is True  # ADDL INSD is N/A on the WC row
    assert "02/15/2026" in text_of(render_certificate_pdf(data))[0]
    with pytest.raises(CertificateDataError, match="is not a date"):
        build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON,
                               overrides={"coverages": {"general_liability": {"effective": "2026-02-30"}}})
    with pytest.raises(CertificateDataError, match="no umbrella / excess liability policy in force to edit"):
        build_certificate_data(customer, kind=RequestType.COI, holder=HOLDER, on=ON,
                               overrides={"coverages": {"umbrella": {"policy_number": "U-1"}}})
