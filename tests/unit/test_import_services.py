"""Two-pass CSV import: reading, checking (preview), writing, idempotent re-import, CSV output."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.customers import imports
from app.customers.imports import ImportFileError
from app.enums import ImportKind, ImportStatus
from app.extensions import db
from app.models import CustomerHolder, Holder, ImportRun

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)

HOLDERS_CSV = (
    "name,email,phone,address,city,state,zip\n"
    "Northwind Builders Inc,certs@northwind.example.com,(512) 555-0199,500 Congress Ave,Austin,TX,78701\n"
    "Lakeside Property Management,,,12 Harbor Rd,Madison,WI,53703\n"
    "Summit Tower LLC,ops@summit.example.com,,9 Peak St,Denver,CO,80202\n"
)


def _run(kind, text, *, encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    run = imports.start_import(kind, data, "file.csv", actor=None, now=NOW)
    imports.check_import(run, now=NOW)
    return run


def _apply(run):
    imports.confirm_import(run, actor=None, now=NOW)
    imports.apply_import(run, now=NOW)
    db.session.commit()
    return run


def test_holders_pass_creates_holders_attached_to_no_customer(app):
    run = _apply(_run(ImportKind.HOLDERS, HOLDERS_CSV))
    assert run.status is ImportStatus.DONE
    assert (run.created_count, run.unchanged_count, run.error_rows) == (3, 0, 0)
    names = set(db.session.scalars(sa.select(Holder.name)))
    assert names == {"Northwind Builders Inc", "Lakeside Property Management", "Summit Tower LLC"}
    assert db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))) == 0
    northwind = db.session.scalar(sa.select(Holder).filter_by(name="Northwind Builders Inc"))
    assert (northwind.state, northwind.zip_code, northwind.phone) == ("TX", "78701", "(512) 555-0199")


def test_links_pass_links_customers_and_holders_with_flags(app, make):
    a, b = make.customer(), make.customer()
    _apply(_run(ImportKind.HOLDERS, HOLDERS_CSV))
    links = (
        "customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
        "primary_noncontributory\n"
        f"{a.id},Northwind Builders Inc,500 Congress Ave,Austin,TX,78701,yes,no,no\n"
        f"{a.id},LAKESIDE  property management,12 Harbor Rd.,Madison,wi,53703,yes,yes,yes\n"
        f"{b.id},Northwind Builders Inc,500 Congress Ave,Austin,TX,78701,,,\n"
    )
    run = _apply(_run(ImportKind.LINKS, links))
    assert (run.created_count, run.error_rows) == (3, 0)
    rows = db.session.execute(sa.select(CustomerHolder.customer_id, Holder.name, CustomerHolder.additional_insured,
                                        CustomerHolder.waiver_of_subrogation, CustomerHolder.primary_noncontributory)
                              .join(Holder).order_by(CustomerHolder.customer_id, Holder.name)).all()
    assert [tuple(r) for r in rows] == [
        (a.id, "Lakeside Property Management", True, True, True),
        (a.id, "Northwind Builders Inc", True, False, False),
        (b.id, "Northwind Builders Inc", False, False, False),
    ]


def test_reimporting_the_same_files_creates_nothing_new(app, make):
    a = make.customer()
    links = (
        "customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
        f"primary_noncontributory\n{a.id},Summit Tower LLC,9 Peak St,Denver,CO,80202,yes,no,no\n"
    )
    _apply(_run(ImportKind.HOLDERS, HOLDERS_CSV))
    _apply(_run(ImportKind.LINKS, links))
    counts = (db.session.scalar(sa.select(sa.func.count(Holder.id))),
              db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))))
    again = _run(ImportKind.HOLDERS, HOLDERS_CSV)
    assert (again.preview["new"], again.preview["existing"]) == (0, 3)
    _apply(again)
    assert (again.created_count, again.unchanged_count) == (0, 3)
    again_links = _apply(_run(ImportKind.LINKS, links))
    assert (again_links.created_count, again_links.unchanged_count) == (0, 1)
    assert (db.session.scalar(sa.select(sa.func.count(Holder.id))),
            db.session.scalar(sa.select(sa.func.count(CustomerHolder.id)))) == counts == (3, 1)


def test_preview_lists_row_errors_and_writes_nothing(app, make):
    text = (
        "name,email,phone,address,city,state,zip\n"
        "Good Co,,,1 Main St,Austin,TX,78701\n"
        ",,,2 Main St,Austin,TX,78701\n"                     # line 3: no name
        "Bad State Co,,,3 Main St,Austin,XX,78701\n"          # line 4
        "Bad Zip Co,,,4 Main St,Austin,TX,7870\n"             # line 5
        "good co,,,1 Main St.,Austin,tx,78701\n"              # line 6: duplicate of line 2
        "Bad Mail Co,not-an-email,,5 Main St,Austin,TX,78701\n"  # line 7
    )
    run = _run(ImportKind.HOLDERS, text)
    assert run.status is ImportStatus.PREVIEW
    assert (run.total_rows, run.valid_rows, run.error_rows) == (6, 1, 5)
    errors = {e["row"]: " ".join(e["messages"]) for e in run.errors}
    assert "name: This field is required." in errors[3]
    assert "state:" in errors[4] and "two-letter" in errors[4]
    assert "zip:" in errors[5] and "5-digit" in errors[5]
    assert "Duplicate of row 2" in errors[6]
    assert "email:" in errors[7]
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0


def test_links_preview_reports_unknown_customer_holder_and_flags(app, make):
    a = make.customer()
    _apply(_run(ImportKind.HOLDERS, HOLDERS_CSV))
    text = (
        "customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
        "primary_noncontributory\n"
        "999999,Summit Tower LLC,9 Peak St,Denver,CO,80202,yes,no,no\n"
        "99999999999999999999,Summit Tower LLC,9 Peak St,Denver,CO,80202,yes,no,no\n"
        f"{a.id},Nobody Known,1 Nowhere Rd,Austin,TX,78701,no,no,no\n"
        f"abc,Summit Tower LLC,9 Peak St,Denver,CO,80202,no,no,no\n"
        f"{a.id},Summit Tower LLC,9 Peak St,Denver,CO,80202,maybe,no,no\n"
        f"{a.id},Summit Tower LLC,9 Peak St,Denver,CO,80202,no,no,no\n"
        f"{a.id},Summit Tower LLC,9 Peak St,Denver,CO,80202,no,no,no\n"
    )
    run = _run(ImportKind.LINKS, text)
    errors = {e["row"]: " ".join(e["messages"]) for e in run.errors}
    assert "no customer with ID 999999" in errors[2]
    assert "no customer with ID 99999999999999999999" in errors[3]
    assert "import it first (pass 1)" in errors[4]
    assert "not a customer ID" in errors[5]
    assert "additional_insured: use yes or no" in errors[6]
    assert "Duplicate of row 7" in errors[8]
    assert run.valid_rows == 1
    assert db.session.scalar(sa.select(sa.func.count(CustomerHolder.id))) == 0


@pytest.mark.parametrize("data, phrase", [
    (HOLDERS_CSV.encode("utf-16"), "UTF-16"),
    ("name,email,phone,address,city,state,zip\nCaf\u00e9 M\u00fcller,,,1 Rue,Austin,TX,78701\n".encode("latin-1"),
     "not UTF-8"),
    (b"", "empty"),
    (b"%PDF-1.7\n\x00\x01binary", "not a CSV text file"),
    (b"name,city\nAcme,Austin\n", "missing the columns address, state, zip"),
    (b"name,email,phone,address,city,state,zip\n", "no rows"),
])
def test_unreadable_files_get_a_clear_message(app, data, phrase):
    with pytest.raises(ImportFileError, match=phrase):
        imports.start_import(ImportKind.HOLDERS, data, "x.csv", actor=None, now=NOW)
    assert db.session.scalar(sa.select(sa.func.count(ImportRun.id))) == 0


def test_links_file_uploaded_as_holders_says_so(app):
    data = b"customer_id,holder_name,address,city,state,zip\n1,A,1 Main,Austin,TX,78701\n"
    with pytest.raises(ImportFileError, match="missing the column name.*pass 2"):
        imports.parse_csv(data, ImportKind.HOLDERS)


def test_utf8_with_bom_and_header_spelling_variants_are_accepted(app):
    text = "\ufeffName,E-mail,Phone,Address,City,State,ZIP Code\nCaf\u00e9 M\u00fcller GmbH,,,1 Rue,Austin,TX,78701\n"
    run = _apply(_run(ImportKind.HOLDERS, text))
    assert run.created_count == 1
    assert db.session.scalar(sa.select(Holder.name)) == "Caf\u00e9 M\u00fcller GmbH"


def test_csv_output_neutralises_formulas():
    data = imports.csv_bytes(["a", "b"], [["=HYPERLINK(\"x\")", "+1"], ["-2", "@SUM(A1)"], ["plain", "3"]])
    text = data.decode("utf-8-sig")
    assert text.splitlines() == ["a,b", "\"'=HYPERLINK(\"\"x\"\")\",'+1", "'-2,'@SUM(A1)", "plain,3"]


def test_templates_parse_back_as_their_pass(app):
    from app.customers import record_imports

    for kind in (ImportKind.HOLDERS, ImportKind.LINKS):
        parsed = imports.parse_csv(imports.template_csv(kind), kind)
        assert parsed.header == imports.COLUMNS[kind]
        assert len(parsed.rows) == 2
    for kind, examples in ((ImportKind.CUSTOMERS, record_imports.EXAMPLE_CUSTOMERS),
                           (ImportKind.POLICIES, record_imports.EXAMPLE_POLICIES)):
        parsed = record_imports.parse(record_imports.template_csv(kind), kind)
        assert len(parsed.rows) == len(examples) > 0
        assert all(set(values) <= set(record_imports.COLUMNS[kind]) for _, values in parsed.rows)


def test_a_second_confirmation_from_a_stale_page_is_a_conflict(app):
    from app.enums import InvalidTransition

    run = _run(ImportKind.HOLDERS, HOLDERS_CSV)
    db.session.commit()
    assert run.status is ImportStatus.PREVIEW  # what this request saw
    table = ImportRun.__table__
    with db.engine.begin() as other:  # somebody else cancelled it meanwhile, in another request
        other.execute(sa.update(table).where(table.c.id == run.id)
                      .values(status=ImportStatus.CANCELLED.value, version=table.c.version + 1))
    assert run.status is ImportStatus.PREVIEW  # still stale in this session
    with pytest.raises(InvalidTransition):  # the engine's TransitionConflict: the version moved
        imports.confirm_import(run, actor=None, now=NOW)
    db.session.rollback()
    assert run.status is ImportStatus.CANCELLED
    assert db.session.scalar(sa.select(sa.func.count(Holder.id))) == 0
