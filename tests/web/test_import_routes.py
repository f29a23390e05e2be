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
    assert "2</strong> valid rows: 2 new, 0 unchanged" in page
    assert "Nothing has been written yet" in page and "File uploaded" not in page  # no stale toast
    assert "1</strong> row with errors" in page
    assert "state: Use a two-letter US state code" in page
    assert "Northwind Builders Inc" in page  # the preview sample
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0  # nothing written before confirming

    done = client.post(f"/customers/holders/import/runs/{run.id}/confirm")
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Import finished: 2 created, 0 updated, 0 unchanged." in page
    assert "Nothing has been written yet" not in page and "File uploaded" not in page
    assert 'href="/customers/holders/import"' in page and 'href="/customers/"' in page  # a way on
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 2

    again = upload(client, "holders", HOLDERS.encode())
    run2 = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    assert "0 new, 2 unchanged" in client.get(again.headers["Location"]).get_data(as_text=True)
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


def test_links_preview_says_what_will_change_and_the_result_matches(client, staff, make):
    from app.customers import holders
    from app.models.base import utcnow

    customer = make.customer(name="Preview Check Co")
    base = {"email": "", "phone": "", "city": "Austin", "state": "TX", "zip_code": "78701"}
    same = holders.add_holder(customer, {**base, "name": "Same Flags LLC", "address": "1 A St",
                                         "additional_insured": True}, actor=None, now=utcnow())
    changed = holders.add_holder(customer, {**base, "name": "Changed Flags LLC", "address": "2 B St",
                                            "primary_noncontributory": True}, actor=None, now=utcnow())
    holders.get_or_create_holder(holders.clean_holder({**base, "name": "Fresh Link LLC", "address": "3 C St"}))
    db.session.commit()
    rows = (f"customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
            f"primary_noncontributory\n"
            f"{customer.id},Same Flags LLC,1 A St,Austin,TX,78701,yes,no,no\n"
            f"{customer.id},Changed Flags LLC,2 B St,Austin,TX,78701,yes,yes,no\n"
            f"{customer.id},Fresh Link LLC,3 C St,Austin,TX,78701,no,no,yes\n")
    response = upload(client, "links", rows.encode(), "links.csv")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "3</strong> valid rows: 1 new, 1 will update flags, 1 unchanged" in page
    updates = page[page.index("Flags that will change"):page.index("Preview (first")]
    assert "Changed Flags LLC" in updates and "Same Flags LLC" not in updates
    for change in ("Additional insured: no \u2192 yes", "Waiver of subrogation: no \u2192 yes",
                   "Primary &amp; non-contributory: yes \u2192 no"):
        assert change in updates
    db.session.expire_all()
    assert (changed.additional_insured, changed.primary_noncontributory) == (False, True)  # nothing written yet

    run = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    done = client.post(f"/customers/holders/import/runs/{run.id}/confirm")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Import finished: 1 created, 1 updated, 1 unchanged." in page
    db.session.expire_all()
    assert (run.created_count, run.updated_count, run.unchanged_count) == (run.preview["new"], run.preview["update"],
                                                                           run.preview["unchanged"]) == (1, 1, 1)
    assert (same.additional_insured, same.waiver_of_subrogation) == (True, False)
    assert (changed.additional_insured, changed.waiver_of_subrogation, changed.primary_noncontributory) == \
        (True, True, False)
    # a way back to the customer whose links were imported
    assert f'href="/customers/{customer.id}/interests"' in page and "Preview Check Co" in page


def test_templates_are_neutral_examples_that_import_as_new(client, staff, make):
    from app.customers import holders
    from app.models.base import utcnow

    # the demo holders exist, linked to a customer: the templates touch none of them
    customer = make.customer()
    for name, email, address, city, state, zip_code in holders.DEMO_HOLDERS:
        holders.add_holder(customer, {"name": name, "email": email, "phone": "", "address": address, "city": city,
                                      "state": state, "zip_code": zip_code}, actor=None, now=utcnow())
    db.session.commit()
    demo_names = {h[0] for h in holders.DEMO_HOLDERS}
    for kind in ("holders", "links"):
        text = client.get(f"/customers/holders/import/template/{kind}.csv").get_data(as_text=True)
        assert not any(name in text for name in demo_names), kind
    data = client.get("/customers/holders/import/template/holders.csv").get_data()
    page = client.get(upload(client, "holders", data).headers["Location"]).get_data(as_text=True)
    assert "2</strong> valid rows: 2 new, 0 unchanged" in page


def test_row_errors_are_joined_without_doubled_punctuation(client, staff):
    data = b"name,email,phone,address,city,state,zip\nBad Co,,,1 Main St,Austin,QQ,7870\n"
    response = upload(client, "holders", data)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    run = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    row = page[page.index("Rows with errors"):]
    assert "state: " in row and "zip: " in row
    assert ".;" not in row and ". zip: " in row
    csv_text = client.get(f"/customers/holders/import/runs/{run.id}/errors.csv").get_data(as_text=True)
    assert ".;" not in csv_text and ". zip: " in csv_text
