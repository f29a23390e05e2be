"""Finding 6: the seventeen inputs the audit saw answer 500 each answer a 4xx or a normal page now,
and the one id / integer parser behind them refuses what int() and str.isdigit() let through."""

import io

import pytest
import sqlalchemy as sa

from app.enums import Role
from app.extensions import db
from app.models import User
from app.validation import MAX_ID, parse_id, parse_int, parse_page


@pytest.mark.parametrize("value, expected", [
    ("42", 42), (" 7 ", 7), ("0", None), ("-1", None), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None),
    ("²", None), ("١٢", None), ("99999999999999999999", None), ("1e3", None), ("1.0", None), ("", None),
    (None, None), ("a\x00b", None), (5, 5), (True, None),
])
def test_parse_id(value, expected):
    assert parse_id(value) == expected


def test_parse_int_and_page():
    assert parse_int("-5") == -5 and parse_int("²", default=3) == 3
    assert parse_int("2026", low=2000, high=2200) == 2026 and parse_int("2300", low=2000, high=2200) is None
    assert parse_page("9" * 25) == 1 and parse_page("0") == 1 and parse_page("12") == 12
    assert parse_page("999999999") == 100_000


@pytest.fixture
def admin(client, auth, make):
    user = make.user(Role.ADMIN)
    auth.login(user)
    return user


@pytest.mark.parametrize("url", [
    "/customers/?q=99999999999999999999", "/customers/?q=%C2%B2", "/customers/?q=a%00b",
    "/customers/?page=99999999999999999999", "/customers/2147483648", "/dashboard/queue?customer=%C2%B2",
    "/admin/fees/report?year=%C2%B2", "/customers/sent-certificates?page=99999999999999999999",
    "/admin/outbox?page=99999999999999999999", "/exemptions/requests/2147483648",
])
def test_audited_get_inputs_answer_without_500(client, admin, url):
    response = client.get(url)
    assert response.status_code in (200, 404), (url, response.status_code)


def test_fees_report_ignores_a_non_ascii_year(client, admin):
    page = client.get("/admin/fees/report?year=%C2%B2")
    assert page.status_code == 200


def test_queue_actions_with_non_ascii_numbers_are_refused(htmx, admin, make):
    req = make.queue_request()
    db.session.commit()
    version = htmx.post(f"/dashboard/queue/{req.id}/relabel", data={"version": "²", "type": "wos"})
    assert version.status_code == 422 and "did not say which version" in version.text
    reason = htmx.post(f"/dashboard/queue/{req.id}/reject", data={"version": "1", "reason_id": "²"})
    assert reason.status_code == 422 and "Pick a rejection reason" in reason.text


@pytest.mark.parametrize("data, message", [
    ({"customer_id": "2147483648"}, "No customer with id 2147483648."),
    ({"customer_id": "99999999999999999999"}, "No customer with id"),
])
def test_new_user_with_an_out_of_range_customer_id_is_refused(client, admin, data, message):
    before = db.session.scalar(sa.select(sa.func.count(User.id)))
    response = client.post("/admin/users", data={"email": "c@example.com", "role": "customer",
                                                "password": "long-enough-pw", **data})
    assert response.status_code == 422 and message in response.text
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == before


def test_new_user_with_a_nul_in_the_name_is_saved_without_it(client, admin):
    response = client.post("/admin/users", data={"email": "n@example.com", "name": "Nu\x00ll", "role": "reviewer",
                                                "password": "long-enough-pw"})
    assert response.status_code == 303
    assert db.session.scalar(sa.select(User.name).where(User.email == "n@example.com")) == "Null"


def test_links_import_with_a_non_ascii_customer_id_says_so(client, auth, make, run_jobs):
    auth.login(make.user(Role.REVIEWER))
    rows = ("customer_id,holder_name,address,city,state,zip,additional_insured,waiver_of_subrogation,"
            "primary_noncontributory\n²,Northwind Builders Inc,500 Congress Ave,Austin,TX,78701,y,y,n\n")
    response = client.post("/customers/holders/import/links", data={"file": (io.BytesIO(rows.encode()), "l.csv")},
                           content_type="multipart/form-data")
    assert response.status_code < 500
    run_jobs()
    from app.models import ImportRun

    run = db.session.scalar(sa.select(ImportRun).order_by(ImportRun.id.desc()))
    page = client.get(f"/customers/holders/import/runs/{run.id}").text
    assert "is not a customer ID (a number)" in page


def test_login_with_a_nul_in_the_email_is_no_500(client):
    response = client.post("/login", data={"email": "x\x00@example.com", "password": "whatever-pw"})
    assert response.status_code == 422 and "Wrong e-mail or password." in response.text
