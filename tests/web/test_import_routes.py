"""Import pages: upload -> preview with row errors -> confirm; bad files; templates; large files as a job."""

import io

import pytest
import sqlalchemy as sa

from app.customers import imports
from app.enums import ImportStatus, Role
from app.extensions import db
from app.models import CustomerHolder, Holder, ImportRun

HOLDERS = (
    "name,email,phone,address,city,state,zip\n"
    "Northwind Builders Inc,certs@northwind.example.com,,500 Congress Ave,Austin,TX,78701\n"
    "Broken Row Co,,,1 Main St,Austin,QQ,78701\n"
    "Lakeside Property Management,,,12 Harbor Rd,Madison,WI,53703\n"
)


@pytest.fixture
def staff(auth, make):
    user = make.user(Role.REVIEWER)
    auth.login(user)
    return user


def upload(client, kind, data: bytes, filename="holders.csv", **kw):
    return client.post(f"/customers/holders/import/{kind}", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data", **kw)


def test_import_page_offers_both_passes_and_templates(client, staff):
    page = client.get("/customers/holders/import").get_data(as_text=True)
    assert "<html" in page
    assert "Pass 1: certificate holders" in page and "Pass 2: customer links" in page
    response = client.get("/customers/holders/import/template/links.csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    assert response.get_data().decode("utf-8-sig").splitlines()[0] == (
        "customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
        "primary_noncontributory")
    assert client.get("/customers/holders/import/template/nope.csv").status_code == 404


def test_upload_preview_confirm_then_reimport_creates_nothing(client, staff, make):
    response = upload(client, "holders", HOLDERS.encode())
    assert response.status_code == 303
    run = db.session.scalar(sa.select(ImportRun))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2</strong> valid rows: 2 new, 0 already there" in page
    assert "1</strong> row with errors" in page
    assert "state: Use a two-letter US state code" in page
    assert "Northwind Builders Inc" in page  # the preview sample
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0  # nothing written before confirming

    done = client.post(f"/customers/holders/import/runs/{run.id}/confirm")
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Import finished: 2 created, 0 updated, 0 already there." in page
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 2

    again = upload(client, "holders", HOLDERS.encode())
    run2 = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    assert "0 new, 2 already there" in client.get(again.headers["Location"]).get_data(as_text=True)
    client.post(f"/customers/holders/import/runs/{run2.id}/confirm")
    db.session.expire_all()
    assert run2.status is ImportStatus.DONE and run2.created_count == 0
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 2

    # a second confirmation is a conflict, not a second import
    response = client.post(f"/customers/holders/import/runs/{run2.id}/confirm")
    assert response.status_code == 409 and "done already" in response.get_data(as_text=True)

    # pass 2 links the customer to the imported holders
    customer = make.customer()
    links = (f"customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
             f"primary_noncontributory\n{customer.id},Northwind Builders Inc,500 Congress Ave,Austin,TX,78701,y,y,n\n")
    response = upload(client, "links", links.encode(), "links.csv")
    run3 = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    client.post(f"/customers/holders/import/runs/{run3.id}/confirm")
    link = db.session.scalar(sa.select(CustomerHolder))
    assert (link.customer_id, link.additional_insured, link.waiver_of_subrogation) == (customer.id, True, True)
    tab = client.get(f"/customers/{customer.id}/interests").get_data(as_text=True)
    assert "Northwind Builders Inc" in tab


@pytest.mark.parametrize("data, message", [
    (HOLDERS.encode("utf-16"), "saved as UTF-16 text"),
    (HOLDERS.replace("Lakeside", "L\u00e4keside").encode("cp1252"), "The file is not UTF-8 text"),
    (b"holder,town\nA,B\n", "The file is missing the columns name, address, city, state, zip"),
])
def test_bad_files_get_a_clear_message_and_store_nothing(client, staff, htmx, data, message):
    response = upload(client, "holders", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    response = htmx.post("/customers/holders/import/holders", data={"file": (io.BytesIO(data), "x.csv")},
                         content_type="multipart/form-data", target="import-upload")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and "<html" not in body
    assert db.session.scalar(sa.select(sa.func.count(ImportRun.id))) == 0


def test_upload_without_a_file_is_refused(client, staff):
    response = client.post("/customers/holders/import/holders", data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose a CSV file" in response.get_data(as_text=True)


def test_cancel_writes_nothing(client, staff):
    upload(client, "holders", HOLDERS.encode())
    run = db.session.scalar(sa.select(ImportRun))
    response = client.post(f"/customers/holders/import/runs/{run.id}/cancel", follow_redirects=True)
    assert "Cancelled; nothing was written." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0


def test_errors_csv_neutralises_formulas(client, staff):
    text = "name,email,phone,address,city,state,zip\n=cmd|' /C calc'!A0,,,1 Main,Austin,=1+1,78701\n"
    upload(client, "holders", text.encode())
    run = db.session.scalar(sa.select(ImportRun))
    body = client.get(f"/customers/holders/import/runs/{run.id}/errors.csv").get_data().decode("utf-8-sig")
    assert body.splitlines()[1].startswith("2,")
    assert "\n=" not in body and ",=" not in body


def test_large_file_is_checked_and_imported_by_a_job_with_progress(client, staff, run_jobs, monkeypatch, htmx):
    monkeypatch.setattr(imports, "INLINE_ROWS", 2)
    monkeypatch.setattr(imports, "CHUNK", 2)
    response = upload(client, "holders", HOLDERS.encode())
    run = db.session.scalar(sa.select(ImportRun))
    assert run.status is ImportStatus.VALIDATING
    widget = htmx.get(f"/customers/holders/import/runs/{run.id}", target=f"import-run-{run.id}")
    assert 'hx-trigger="load delay:1s"' in widget.get_data(as_text=True)
    assert run_jobs() == 1
    assert run.status is ImportStatus.PREVIEW and run.percent == 100 and run.valid_rows == 2
    client.post(f"/customers/holders/import/runs/{run.id}/confirm")
    db.session.expire_all()
    assert run.status is ImportStatus.IMPORTING
    assert run_jobs() == 1
    assert run.status is ImportStatus.DONE and run.created_count == 2 and run.percent == 100
    widget = htmx.get(f"/customers/holders/import/runs/{run.id}", target=f"import-run-{run.id}").get_data(as_text=True)
    assert "hx-trigger" not in widget and "Import finished: 2 created" in widget
    assert response.status_code == 303


@pytest.mark.parametrize("role", [Role.PROCESSOR, Role.ADVISOR])
def test_import_needs_manage_holders(client, auth, make, role):
    auth.login(make.user(role))
    assert client.get("/customers/holders/import").status_code == 403
    assert upload(client, "holders", HOLDERS.encode()).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(ImportRun.id))) == 0
