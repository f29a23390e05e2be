"""CSV import of customers and of policies with endorsements: upload -> preview (new / changed / unchanged,
per-row errors, nothing written) -> confirm -> written through the services; a second import of the same file
changes nothing. The large files go through the real RQ worker."""

from __future__ import annotations

import csv
import io
import os
import re
import time

import sqlalchemy as sa

from app.customers.record_imports import POLICY_COLUMNS
from app.enums import ImportStatus, Role
from app.extensions import db
from app.models import Activity, Customer, Endorsement, ImportRun, Policy

CUSTOMER_HEADER = ["external_id", "name", "contact_name", "contact_email", "contact_phone", "address", "city",
                   "state", "zip", "status", "status_reason", "payment_method", "program", "language"]


def customers_csv(n: int, *, bad: dict[int, dict] | None = None, program: str = "") -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CUSTOMER_HEADER)
    for i in range(1, n + 1):
        row = {"external_id": f"C{i:05d}", "name": f"Customer {i} LLC", "contact_name": f"Contact {i}",
               "contact_email": f"office{i}@customer{i}.example.com", "contact_phone": "(512) 555-0100",
               "address": f"{i} Main St", "city": "Austin", "state": "TX", "zip": "78701", "status": "active",
               "status_reason": "", "payment_method": "ach", "program": program, "language": "en"}
        row.update((bad or {}).get(i, {}))
        w.writerow([row[c] for c in CUSTOMER_HEADER])
    return out.getvalue().encode("utf-8")


def policies_csv(n_customers: int, *, per_customer: int = 3, naic: str = "11111",
                 bad: dict[int, dict] | None = None) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(POLICY_COLUMNS)
    lines = [("general_liability", "GL", {"each_occurrence": "1000000", "general_aggregate": "2000000",
                                          "coverage_form": "occurrence", "aggregate_basis": "policy",
                                          "blanket_additional_insured": "CG 20 10"}),
             ("workers_comp", "WC", {"el_each_accident": "1000000", "el_disease_each_employee": "1000000",
                                     "el_disease_policy_limit": "1000000", "per_statute": "yes",
                                     "blanket_waiver_of_subrogation": "WC 00 03 13"}),
             ("automobile", "CA", {"combined_single_limit": "1,000,000", "any_auto": "yes",
                                   "specific_endorsements": "additional_insured|CA 20 48|Lakeside School District"})]
    k = 0
    for i in range(1, n_customers + 1):
        for line, prefix, extra in lines[:per_customer]:
            k += 1
            row = {c: "" for c in POLICY_COLUMNS}
            row.update({"customer_external_id": f"C{i:05d}", "line": line, "naic": naic,
                        "policy_number": f"{prefix}-{i:05d}", "effective_date": "2026-01-01",
                        "expiry_date": "2027-01-01", "status": "active", **extra})
            row.update((bad or {}).get(k, {}))
            w.writerow([row[c] for c in POLICY_COLUMNS])
    return out.getvalue().encode("utf-8")


def upload(client, kind: str, data: bytes, name: str = "file.csv"):
    return client.post(f"/customers/records/import/{kind}", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def run_id_of(response) -> int:
    location = response.headers.get("Location") or response.headers.get("HX-Redirect")
    return int(re.search(r"/runs/(\d+)", location).group(1))


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_small_files_preview_errors_confirm_and_reimport_is_idempotent(app, client, auth, make):
    make.insurer("Alpha Casualty", "11111")
    make.program("Contractors Program")
    admin = make.user(Role.ADMIN)
    db.session.commit()
    auth.login(admin)
    page = client.get("/customers/records/import").get_data(as_text=True)
    assert "Import customers and policies" in page and "Download the template CSV" in page
    template = client.get("/customers/records/import/template/customers.csv")
    assert template.headers["Content-Disposition"].startswith("attachment")
    assert template.get_data(as_text=True).lstrip("\ufeff").startswith("external_id,name,")

    data = customers_csv(5, program="Contractors Program",
                         bad={2: {"contact_email": "not-an-email"}, 4: {"status": "suspended"},
                              5: {"external_id": "C00001"}})
    response = upload(client, "customers", data, "customers.csv")
    run = db.session.get(ImportRun, run_id_of(response))
    assert run.status is ImportStatus.PREVIEW
    assert count(Customer) == 0  # a preview never writes
    body = client.get(f"/customers/records/import/runs/{run.id}").get_data(as_text=True)
    assert "<strong>2</strong> new" in body and "<strong>3</strong> rows with errors" in body
    assert "Contact e-mail" in body or "contact_email" in body
    assert "Say why the customer is suspended" in body
    assert "Duplicate of row 2 in this file" in body
    confirmed = client.post(f"/customers/records/import/runs/{run.id}/confirm")
    assert confirmed.status_code == 303
    assert "Import finished: 2 created" in client.get(confirmed.headers["Location"]).get_data(as_text=True)
    c1 = db.session.scalar(sa.select(Customer).where(Customer.external_id == "C00001"))
    assert c1.name == "Customer 1 LLC" and c1.program.name == "Contractors Program"
    assert count(Activity, Activity.action == "customer_created") == 2

    # the same file again: nothing new; a changed cell is shown old -> new and updated on confirm
    again = db.session.get(ImportRun, run_id_of(upload(client, "customers", data)))
    assert (again.preview["new"], again.preview["update"], again.preview["unchanged"]) == (0, 0, 2)
    changed = customers_csv(3, program="Contractors Program", bad={3: {"city": "Dallas"}})
    run3 = db.session.get(ImportRun, run_id_of(upload(client, "customers", changed)))
    # C00001 as before, C00002 now valid (new), C00003 moves to Dallas
    assert (run3.preview["new"], run3.preview["update"], run3.preview["unchanged"]) == (1, 1, 1)
    assert run3.preview["updates"] == [{"row": 4, "key": "C00003", "changes": ["city: Austin \u2192 Dallas"]}]
    shown = client.get(f"/customers/records/import/runs/{run3.id}").get_data(as_text=True)
    assert "city: Austin \u2192 Dallas" in shown

    # policies: preview, then the written policy carries its limits, coverage and endorsements
    pol = policies_csv(1, bad={2: {"el_each_accident": "-5"}})
    prun = db.session.get(ImportRun, run_id_of(upload(client, "policies", pol, "policies.csv")))
    assert (prun.preview["new"], prun.error_rows) == (2, 1)
    assert "cannot be negative" in client.get(f"/customers/records/import/runs/{prun.id}").get_data(as_text=True)
    client.post(f"/customers/records/import/runs/{prun.id}/confirm")
    gl = db.session.scalar(sa.select(Policy).where(Policy.policy_number == "GL-00001"))
    assert gl.limits == {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000}
    assert gl.coverage == {"form": "occurrence", "aggregate_basis": "policy"}
    assert [(e.kind.value, e.form_number, e.holder_name) for e in gl.endorsements] == \
        [("additional_insured", "CG 20 10", None)]
    auto = db.session.scalar(sa.select(Policy).where(Policy.policy_number == "CA-00001"))
    assert [(e.kind.value, e.form_number, e.holder_name) for e in auto.endorsements] == \
        [("additional_insured", "CA 20 48", "Lakeside School District")]

    # export -> the same columns, formulas neutralised, and re-importing the export changes nothing
    c1.name = "=HYPERLINK(\"http://evil.example\")"
    db.session.commit()
    exported = client.get("/customers/export.csv")
    assert exported.headers["Content-Disposition"].startswith("attachment")
    assert "'=HYPERLINK" in exported.get_data(as_text=True)
    policies_export = client.get("/customers/policies/export.csv").get_data(as_text=True)
    assert "GL-00001" in policies_export and "CG 20 10" in policies_export
    rerun = db.session.get(ImportRun, run_id_of(upload(client, "policies", policies_export.encode("utf-8"))))
    assert (rerun.preview["new"], rerun.preview["update"], rerun.error_rows) == (0, 0, 0)
    assert rerun.preview["unchanged"] == 2


def test_import_refusals_and_roles(app, client, auth, make):
    admin, advisor = make.user(Role.ADMIN), make.user(Role.ADVISOR)
    db.session.commit()
    auth.login(advisor)
    assert client.get("/customers/records/import").status_code == 403
    assert client.get("/customers/export.csv").status_code == 200  # reading roles may export
    auth.logout()
    auth.login(admin)
    latin1 = "external_id,name\nC1,Caf\xe9 Ltd\n".encode("latin-1")
    refused = upload(client, "customers", latin1)
    assert refused.status_code == 422 and "not UTF-8" in refused.get_data(as_text=True)
    wrong = upload(client, "customers", policies_csv(1))
    assert wrong.status_code == 422 and "upload it there" in wrong.get_data(as_text=True)
    unknown = upload(client, "customers", b"external_id,name,colour\nC1,A,red\n")
    assert unknown.status_code == 422 and "Unknown column" in unknown.get_data(as_text=True)
    assert count(ImportRun) == 0


def test_2000_customers_and_6000_policies_through_the_worker(app, client, auth, make, run_jobs):
    make.insurer("Alpha Casualty", "11111")
    admin = make.user(Role.ADMIN)
    db.session.commit()
    auth.login(admin)
    timings = {}

    def through_worker(kind, data):
        start = time.perf_counter()
        run_id = run_id_of(upload(client, kind, data, f"{kind}.csv"))
        run_jobs()
        checked = time.perf_counter()
        run = db.session.get(ImportRun, run_id)
        assert run.status is ImportStatus.PREVIEW, run.message
        return run, checked - start

    bad_customers = {7: {"state": "XX"}, 8: {"zip": "12"}}
    customer_data = customers_csv(2000, bad=bad_customers)  # + one extra duplicate row below
    customer_data += b"C00010,Duplicate Row,,,,,,,,,,,,\n"
    run, timings["customers preview"] = through_worker("customers", customer_data)
    assert (run.total_rows, run.preview["new"], run.error_rows) == (2001, 1998, 3)
    rows_with_errors = {e["row"] for e in run.errors}
    assert rows_with_errors == {8, 9, 2002}  # file lines (the header is line 1)
    assert count(Customer) == 0
    start = time.perf_counter()
    client.post(f"/customers/records/import/runs/{run.id}/confirm")
    run_jobs()
    timings["customers write"] = time.perf_counter() - start
    db.session.refresh(run)
    assert run.status is ImportStatus.DONE and run.created_count == 1998 and count(Customer) == 1998

    bad_policies = {1: {"expiry_date": "2025-01-01"}, 22: {"naic": "99998"}}  # C00001 GL, C00008 WC
    policy_data = policies_csv(2000, bad=bad_policies)
    prun, timings["policies preview"] = through_worker("policies", policy_data)
    # 6,000 rows: customers 7 and 8 were refused (their 6 policies name no customer) plus the two bad rows
    assert prun.total_rows == 6000
    assert prun.error_rows == 6 + 2 - 1  # row 22 belongs to customer 8 already counted
    assert prun.preview["new"] == 6000 - prun.error_rows
    start = time.perf_counter()
    client.post(f"/customers/records/import/runs/{prun.id}/confirm")
    run_jobs()
    timings["policies write"] = time.perf_counter() - start
    db.session.refresh(prun)
    assert prun.status is ImportStatus.DONE and prun.created_count == 6000 - 7
    assert count(Policy) == 6000 - 7
    assert count(Endorsement) == 6000 - 7
    page = client.get(f"/customers/records/import/runs/{prun.id}").get_data(as_text=True)
    assert f"Import finished: {6000 - 7} created" in page

    # the same two files again: nothing new, nothing changed
    rerun, timings["customers re-import preview"] = through_worker("customers", customer_data)
    assert (rerun.preview["new"], rerun.preview["update"], rerun.preview["unchanged"]) == (0, 0, 1998)
    prerun, timings["policies re-import preview"] = through_worker("policies", policy_data)
    assert (prerun.preview["new"], prerun.preview["update"], prerun.preview["unchanged"]) == (0, 0, 6000 - 7)
    client.post(f"/customers/records/import/runs/{prerun.id}/confirm")
    run_jobs()
    db.session.refresh(prerun)
    assert (prerun.created_count, prerun.updated_count, prerun.unchanged_count) == (0, 0, 6000 - 7)
    assert count(Policy) == 6000 - 7
    report = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(f"\nIMPORT TIMES ({db.engine.dialect.name}): {report}")
    if os.environ.get("IMPORT_TIMES_FILE"):
        with open(os.environ["IMPORT_TIMES_FILE"], "a") as fh:
            fh.write(f"{db.engine.dialect.name}: {report}\n")


def test_a_customer_import_is_not_shown_as_a_holder_import(app, client, auth, make):
    admin = make.user(Role.ADMIN)
    db.session.commit()
    auth.login(admin)
    run_id = run_id_of(upload(client, "customers", customers_csv(1), "our-book.csv"))
    assert client.get(f"/customers/holders/import/runs/{run_id}").status_code == 404
    assert "our-book.csv" in client.get(f"/customers/records/import/runs/{run_id}").get_data(as_text=True)
    assert "our-book.csv" in client.get("/customers/records/import").get_data(as_text=True)
    assert "our-book.csv" not in client.get("/customers/holders/import").get_data(as_text=True)
