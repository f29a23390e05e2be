"""Additional interests tab, the generate dialog and progress widget, sent certificates, access rules."""

import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.customers import holders
from app.enums import GenerationStatus, Role
from app.extensions import db
from app.models import CustomerHolder, GenerationRun, Holder, SentCertificate
from app.models.base import utcnow

HOLDER = {"name": "Northwind Builders Inc", "email": "certs@northwind.example.com", "phone": "",
          "address": "500 Congress Ave", "city": "Austin", "state": "TX", "zip_code": "78701"}


@pytest.fixture
def customer(make):
    c = make.customer(name="Acme Roofing LLC")
    for i, name in enumerate(["Northwind Builders Inc", "Lakeside Property Management"]):
        holders.add_holder(c, {**HOLDER, "name": name, "address": f"{i} Main St"}, actor=None, now=utcnow())
    db.session.commit()
    return c


@pytest.fixture
def staff(auth, make):
    user = make.user(Role.REVIEWER, name="Riley Reviewer")
    auth.login(user)
    return user


def test_tab_lists_linked_holders_full_page_and_partial(client, htmx, staff, customer):
    page = client.get(f"/customers/{customer.id}/interests")
    body = page.get_data(as_text=True)
    assert "<html" in body and "Northwind Builders Inc" in body and "Lakeside Property Management" in body
    assert "Generate Certificates" in body and 'data-check-all="#generate-holders"' in body
    assert "HX-Request" in page.headers["Vary"]
    part = htmx.get(f"/customers/{customer.id}/interests", target="interests").get_data(as_text=True)
    assert "<html" not in part and part.lstrip().startswith('<section id="interests"')


def test_add_edit_unlink(client, htmx, staff, customer):
    url = f"/customers/{customer.id}/interests"
    response = htmx.post(url, data={**HOLDER, "name": "Summit Tower LLC", "additional_insured": "y"},
                         target="interests")
    assert response.status_code == 200 and "holder-linked" in response.headers["HX-Trigger"]
    assert "Summit Tower LLC" in response.get_data(as_text=True)
    link = db.session.scalar(sa.select(CustomerHolder).join(Holder).where(Holder.name == "Summit Tower LLC"))
    assert link.additional_insured and not link.waiver_of_subrogation

    bad = htmx.post(url, data={**HOLDER, "name": "Typo Co", "state": "Texas", "zip_code": "7"}, target="interests")
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "two-letter US state code" in body and "5-digit ZIP" in body and 'value="Typo Co"' in body
    assert db.session.scalar(sa.select(Holder).filter_by(name="Typo Co")) is None

    edit = client.post(f"{url}/{link.id}/edit", data={**HOLDER, "name": "Summit Tower LLC", "city": "Round Rock",
                                                       "waiver_of_subrogation": "y"})
    assert edit.status_code == 303
    db.session.expire_all()
    assert link.holder.city == "Round Rock" and link.waiver_of_subrogation and not link.additional_insured

    gone = htmx.post(f"{url}/{link.id}/unlink", target="interests")
    assert "holder-unlinked" in gone.headers["HX-Trigger"]
    assert "Summit Tower LLC" not in gone.get_data(as_text=True)
    assert db.session.scalar(sa.select(Holder).filter_by(name="Summit Tower LLC")) is not None  # kept


def test_generate_combined_pdf_progress_and_download(client, htmx, staff, customer, run_jobs):
    ids = [str(link.holder_id) for link in holders.linked_holders(customer.id)]
    response = htmx.post(f"/customers/{customer.id}/generate", target="generation-result",
                         data={"holder_ids": ids, "mode": "merged", "record_sent": "1", "kind": "coi"})
    assert response.status_code == 200 and "generation-started" in response.headers["HX-Trigger"]
    widget = response.get_data(as_text=True)
    run = db.session.scalar(sa.select(GenerationRun))
    assert 'hx-trigger="load delay:1s"' in widget and f"/generations/{run.id}" in widget
    assert run_jobs() == 1
    widget = htmx.get(f"/customers/{customer.id}/generations/{run.id}", target=f"generation-{run.id}")
    body = widget.get_data(as_text=True)
    assert "hx-trigger" not in body and "100 %" in body and "Download" in body
    download = client.get(f"/customers/{customer.id}/generations/{run.id}/download")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    reader = PdfReader(io.BytesIO(download.get_data()))
    assert len(reader.pages) == 2
    sent_page = client.get(f"/customers/{customer.id}/sent-certificates").get_data(as_text=True)
    assert "Lakeside Property Management" in sent_page and "Riley Reviewer" in sent_page


def test_generate_without_js_redirects_to_the_status_page(client, staff, customer, run_jobs):
    response = client.post(f"/customers/{customer.id}/generate", data={"all": "1", "mode": "zip"})
    assert response.status_code == 303
    run_jobs()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<html" in page and "Individual PDFs (ZIP)" in page and "Download" in page
    assert db.session.scalar(sa.select(sa.func.count(SentCertificate.id))) == 0


@pytest.mark.parametrize("data, message", [
    ({}, "Choose Individual PDFs (ZIP) or One combined PDF."),
    ({"mode": "zip"}, "Choose at least one holder."),
    ({"mode": "zip", "holder_ids": ["abc"]}, "not additional interests"),
    ({"mode": "merged", "holder_ids": ["999999"]}, "not additional interests"),
])
def test_garbage_generation_requests_are_422_and_store_nothing(client, htmx, staff, customer, data, message):
    response = htmx.post(f"/customers/{customer.id}/generate", data=data, target="generation-result")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and "<dialog" not in body
    page = client.post(f"/customers/{customer.id}/generate", data=data)  # without JavaScript
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    assert "<html" in body and message in body and '<dialog id="generate-dialog" open' in body
    assert db.session.scalar(sa.select(sa.func.count(GenerationRun.id))) == 0


def test_sent_certificates_csv_neutralises_formulas(client, staff, customer):
    link = holders.linked_holders(customer.id)[0]
    link.holder.name = "=HYPERLINK(\"http://x\")"
    db.session.add(SentCertificate(customer_id=customer.id, holder_id=link.holder_id, holder_name=link.holder.name,
                                   document_key="aa/none", filename="c.pdf", created_at=utcnow()))
    db.session.commit()
    body = client.get("/customers/sent-certificates?format=csv").get_data().decode("utf-8-sig")
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body
    assert "Acme Roofing LLC" in client.get("/customers/sent-certificates").get_data(as_text=True)


def test_customer_user_sees_own_certificates_and_never_another_customers_holders(client, auth, make, customer,
                                                                                 run_jobs):
    from app.customers import generation

    run = generation.start_generation(customer, holder_ids=None, mode="zip", record_sent=True, actor=None,
                                      now=utcnow())
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert run.status is GenerationStatus.DONE
    sent = db.session.scalars(sa.select(SentCertificate)).first()
    link = holders.linked_holders(customer.id)[0]

    own = make.customer(name="Own Co")
    holders.add_holder(own, {**HOLDER, "name": "Own Holder"}, actor=None, now=utcnow())
    db.session.commit()
    auth.login(make.user(Role.CUSTOMER, customer=own))
    other = customer.id
    for method, url in [
        ("GET", f"/customers/{other}/interests"),
        ("GET", f"/customers/{other}/interests.csv"),
        ("POST", f"/customers/{other}/interests"),
        ("POST", f"/customers/{other}/interests/{link.id}/unlink"),
        ("GET", f"/customers/{other}/interests/{link.id}/edit"),
        ("POST", f"/customers/{other}/generate"),
        ("GET", f"/customers/{other}/generations/{run.id}"),
        ("GET", f"/customers/{other}/generations/{run.id}/download"),
        ("GET", f"/customers/{other}/sent-certificates"),
        ("GET", f"/customers/{other}/sent-certificates?format=csv"),
        ("GET", f"/customers/{other}/sent-certificates/{sent.id}/file"),
        ("GET", f"/customers/{own.id}/sent-certificates/{sent.id}/file"),
        ("GET", "/customers/sent-certificates"),
        ("GET", "/customers/holders/import"),
    ]:
        response = client.open(url, method=method, data={"mode": "zip", "all": "1"})
        assert response.status_code == 404, (method, url, response.status_code)
        assert "Northwind" not in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(GenerationRun.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))) == 3
    page = client.get(f"/customers/{own.id}/sent-certificates")
    assert page.status_code == 200 and "No certificates recorded yet." in page.get_data(as_text=True)


def test_customer_user_downloads_its_own_sent_certificate(client, auth, make, customer, run_jobs):
    from app.customers import generation

    generation.start_generation(customer, holder_ids=None, mode="merged", record_sent=True, actor=None,
                                now=utcnow())
    db.session.commit()
    run_jobs()
    sent = db.session.scalars(sa.select(SentCertificate).order_by(SentCertificate.holder_name)).first()
    auth.login(make.user(Role.CUSTOMER, customer=customer))
    page = client.get(f"/customers/{customer.id}/sent-certificates").get_data(as_text=True)
    assert "Lakeside Property Management" in page and "Overview" not in page
    pdf = client.get(f"/customers/{customer.id}/sent-certificates/{sent.id}/file")
    assert pdf.status_code == 200 and pdf.headers["Content-Disposition"].startswith("attachment")
    assert sent.holder_name in " ".join(PdfReader(io.BytesIO(pdf.get_data())).pages[0].extract_text().split())


@pytest.mark.parametrize("role", [Role.PROCESSOR, Role.ADVISOR])
def test_read_only_staff_see_the_tab_but_cannot_change_or_generate(client, auth, make, customer, role):
    auth.login(make.user(role))
    page = client.get(f"/customers/{customer.id}/interests").get_data(as_text=True)
    assert "Northwind Builders Inc" in page and "Generate Certificates" not in page and "Unlink" not in page
    assert client.post(f"/customers/{customer.id}/interests", data=HOLDER).status_code == 403
    assert client.post(f"/customers/{customer.id}/generate", data={"all": "1", "mode": "zip"}).status_code == 403


def test_huge_ids_are_not_found(client, staff, customer):
    huge = 2**40
    for url in [f"/customers/{customer.id}/interests/{huge}/edit", f"/customers/{customer.id}/generations/{huge}",
                f"/customers/{customer.id}/generations/{huge}/download", f"/customers/{huge}/sent-certificates",
                f"/customers/{customer.id}/sent-certificates/{huge}/file", f"/customers/holders/import/runs/{huge}"]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/customers/{customer.id}/generate",
                       data={"mode": "zip", "holder_ids": [str(huge)]}).status_code == 422


def test_nul_characters_and_oversized_values_never_reach_the_database_raw(htmx, staff, customer):
    response = htmx.post(f"/customers/{customer.id}/interests", target="interests",
                         data={**HOLDER, "name": "Nul\x00 Co", "city": "x" * 5000})
    assert response.status_code == 422 and "At most 100 characters." in response.get_data(as_text=True)
    response = htmx.post(f"/customers/{customer.id}/interests", target="interests",
                         data={**HOLDER, "name": "Nul\x00 Co"})
    assert response.status_code == 200
    assert db.session.scalar(sa.select(Holder.name).where(Holder.name.like("Nul%"))) == "Nul Co"


def _done_run(customer) -> GenerationRun:
    from datetime import timedelta

    from app.enums import GenerationMode

    now = utcnow()
    run = GenerationRun(customer_id=customer.id, status=GenerationStatus.DONE, mode=GenerationMode.ZIP, total=2,
                        done=2, filename=f"certificates-{customer.id}.zip", file_key="missing",
                        created_at=now, updated_at=now, finished_at=now, expires_at=now + timedelta(days=7))
    db.session.add(run)
    db.session.commit()
    return run


@pytest.mark.parametrize("role, allowed", [(Role.ADVISOR, False), (Role.PROCESSOR, False), (Role.ADMIN, True),
                                           (Role.REVIEWER, True)])
def test_download_of_a_generation_shows_only_to_who_may_download(client, auth, make, customer, role, allowed):
    run = _done_run(customer)
    auth.login(make.user(role))
    download = f"/customers/{customer.id}/generations/{run.id}/download"
    page = client.get(f"/customers/{customer.id}/interests").get_data(as_text=True)
    assert "Recent generations" in page and "2 certificates" in page
    assert (download in page) is allowed and (f"Download {run.filename}" in page) is allowed
    status = client.get(f"/customers/{customer.id}/generations/{run.id}")
    assert status.status_code == 200  # the progress widget polls this: read-only staff may see it
    assert (download in status.get_data(as_text=True)) is allowed
    if not allowed:
        assert client.get(download).status_code == 403


def test_no_page_of_the_tab_links_an_advisor_to_a_forbidden_url(client, auth, make, customer):
    """Every link and form action an advisor sees on the tab answers something other than 403."""
    import re

    _done_run(customer)
    auth.login(make.user(Role.ADVISOR))
    page = client.get(f"/customers/{customer.id}/interests").get_data(as_text=True)
    section = page[page.index('id="interests"'):]
    urls = set(re.findall(r'(?:href|action|hx-get|hx-post)="(/[^"#]*)"', section))
    assert urls
    for url in urls:
        assert client.get(url).status_code != 403, url
