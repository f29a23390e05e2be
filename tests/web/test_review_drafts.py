"""The certificate review form keeps what a processor typed: a reload, a lost connection or a colleague
opening the request shows the draft, not a fresh prefill; submitting removes it; bad drafts are refused
whole with a message and store nothing."""

import pytest
import sqlalchemy as sa

from app.enums import RequestStatus, Role
from app.extensions import db
from app.models import CertificateRequest, ReviewDraft


@pytest.fixture
def processor(make, auth):
    user = make.user(Role.PROCESSOR, name="Pia Processor")
    auth.login(user)
    return user


def automated(htmx, make, **kw):
    req = make.queue_request(customer=make.customer(name="Juniper Carpentry"), **kw)
    db.session.commit()
    assert htmx.post(f"/dashboard/queue/{req.id}/automate", data={"version": "1"}).status_code == 200
    return req, db.session.get(CertificateRequest, req.id).version


def drafts() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ReviewDraft))


def test_a_reload_shows_the_review_form_as_typed(client, htmx, processor, make):
    req, version = automated(htmx, make, holder_name="Lakeside Property Group")
    saved = htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={
        "version": str(version), "holder_name": "Harbor Holdings LLC",
        "cov.general_liability.limit.each_occurrence": "2,500,000",
        "description": "Finish carpentry at 12 Pier Rd.\nSecond line kept.", "override_note": ""})
    assert saved.status_code == 200 and "Draft saved" in saved.text and "by Pia Processor" in saved.text

    page = client.get(f"/dashboard/queue/{req.id}")  # a plain reload
    assert page.status_code == 200
    assert f'id="request-{req.id}-review"' in page.text
    assert 'value="Harbor Holdings LLC"' in page.text and 'value="2,500,000"' in page.text
    assert "Finish carpentry at 12 Pier Rd.\nSecond line kept.</textarea>" in page.text
    assert "Draft saved" in page.text and "Start over from the policies" in page.text
    assert ">Attempt automation</button>" not in page.text  # prefilling again would throw the draft away


def test_submitting_removes_the_draft(client, htmx, processor, make):
    req, version = automated(htmx, make)
    htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "Harbor Holdings LLC"})
    assert drafts() == 1
    ok = htmx.post(f"/dashboard/queue/{req.id}/submit", data={"version": str(version),
                                                              "holder_name": "Harbor Holdings LLC"})
    assert ok.status_code == 200 and "Generating the certificate…" in ok.text
    assert drafts() == 0
    assert f'id="request-{req.id}-review"' not in client.get(f"/dashboard/queue/{req.id}").text


def test_start_over_prefills_from_the_policies_again(htmx, processor, make):
    req, version = automated(htmx, make, holder_name="Lakeside Property Group")
    htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "Typed Over Co"})
    fresh = htmx.post(f"/dashboard/queue/{req.id}/review-draft/discard", data={"version": str(version)})
    assert fresh.status_code == 200 and f'id="request-{req.id}-review"' in fresh.text
    assert 'value="Lakeside Property Group"' in fresh.text and "Typed Over Co" not in fresh.text
    assert drafts() == 0


@pytest.mark.parametrize("data, message", [
    ({"holder_name": "Ok", "is_admin": "1"}, "a field the review form does not have"),
    ({"description": "x" * 5001}, "description is longer than 5,000 characters (5,001)"),
    ({"holder_name": "H" * 201}, "holder name is longer than 200 characters"),
])
def test_a_bad_draft_is_refused_whole_and_stores_nothing(htmx, processor, make, data, message):
    req, _ = automated(htmx, make)
    refused = htmx.post(f"/dashboard/queue/{req.id}/review-draft", data=data)
    assert refused.status_code == 422 and message in refused.text and "The draft was not saved" in refused.text
    assert drafts() == 0


def test_no_draft_once_the_request_is_closed(client, htmx, processor, make):
    req, version = automated(htmx, make)
    htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "Harbor Holdings LLC"})
    db.session.get(CertificateRequest, req.id).status = RequestStatus.CANCELLED
    db.session.commit()
    assert "Harbor Holdings LLC" not in client.get(f"/dashboard/queue/{req.id}").text
    late = htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "Later Co"})
    assert late.status_code == 422 and "no longer waiting for a reviewed certificate" in late.text


def test_a_description_over_the_limit_is_refused_not_cut(htmx, processor, make):
    req, version = automated(htmx, make)
    refused = htmx.post(f"/dashboard/queue/{req.id}/submit", data={
        "version": str(version), "description": "y" * 5001})
    assert refused.status_code == 422 and "at most 5,000 characters (5,001 typed)" in refused.text
    assert db.session.get(CertificateRequest, req.id).issue_requested_at is None


def test_without_javascript_save_draft_redirects_to_the_page(client, processor, make, htmx):
    req, _ = automated(htmx, make)
    saved = client.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "No Script LLC"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/dashboard/queue/{req.id}")
    assert 'value="No Script LLC"' in client.get(f"/dashboard/queue/{req.id}").text


def test_viewers_cannot_save_drafts(client, auth, make, htmx):
    auth.login(make.user(Role.ADVISOR))
    req = make.queue_request()
    db.session.commit()
    assert htmx.post(f"/dashboard/queue/{req.id}/review-draft", data={"holder_name": "X"}).status_code == 403
    assert drafts() == 0
