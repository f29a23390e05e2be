"""Webhook endpoints through the admin pages and the JSON API (contract: POST/GET/PATCH/DELETE
/api/v1/webhook-endpoints), bad input refused with nothing stored, and the metrics numbers against a
seeded set with known answers."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.cli import create_api_token
from app.enums import AutomationDecision, RequestSource, RequestStatus, RequestType, Role
from app.exemptions import services
from app.extensions import db
from app.models import CertificateRequest, WebhookDelivery, WebhookEndpoint


@pytest.fixture
def bearer(make):
    token = create_api_token(make.user(Role.ADMIN))
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def allow_local(app):
    app.config["WEBHOOKS_ALLOW_HTTP"] = True
    app.config["WEBHOOKS_ALLOWED_HOSTS"] = "127.0.0.1:8765"


def test_api_endpoint_lifecycle(client, bearer, allow_local):
    created = client.post("/api/v1/webhook-endpoints", headers=bearer, json={
        "url": "http://127.0.0.1:8765/hook", "event_types": ["exemption_request.sent"], "description": "ERP"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["exemption_request.sent"]
    shown = client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer).get_json()
    assert "secret" not in shown and shown["url"] == "http://127.0.0.1:8765/hook"
    listed = client.get("/api/v1/webhook-endpoints", headers=bearer).get_json()["endpoints"]
    assert [e["id"] for e in listed] == [body["id"]]

    patched = client.patch(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer,
                           json={"enabled": False, "rotate_secret": True}).get_json()
    assert patched["enabled"] is False and patched["secret"] != body["secret"]
    endpoint = db.session.get(WebhookEndpoint, body["id"])
    assert endpoint.previous_secret == body["secret"]  # the old secret still signs for a while

    assert client.delete(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer).status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=bearer).status_code == 404
    types = client.get("/api/v1/webhook-event-types", headers=bearer).get_json()
    assert {"type": "exemption_certificate.approved",
            "description": "A reviewer approved a certificate; it is active."} in types["event_types"]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"url": "not a url"}, "url", "full address"),
    ({"url": "http://receiver.example.com/hook"}, "url", "Use https://"),
    ({"url": "https://10.0.0.1/hook"}, "url", "private, loopback"),
    ({"url": "https://127.0.0.1:8765/hook", "event_types": ["policy.exploded"]}, "event_types", "Unknown event type"),
    ({"url": "https://127.0.0.1:8765/hook", "surprise": 1}, "surprise", "Unknown field"),
])
def test_bad_endpoints_are_refused_and_nothing_is_stored(app, client, bearer, body, field, message):
    app.config["WEBHOOKS_ALLOWED_HOSTS"] = "127.0.0.1:8765"
    response = client.post("/api/v1/webhook-endpoints", headers=bearer, json=body)
    assert response.status_code == 422 and message in response.get_json()["fields"][field]
    assert db.session.scalar(sa.select(sa.func.count(WebhookEndpoint.id))) == 0


def test_admin_pages_show_the_secret_once_the_log_and_replay(client, auth, make, allow_local):
    admin = make.user(Role.ADMIN)
    auth.login(admin)
    page = client.post("/admin/webhooks", data={"url": "http://127.0.0.1:8765/hook",
                                                "event_types": ["exemption_request.sent"]})
    text = page.get_data(as_text=True)
    endpoint = db.session.scalar(sa.select(WebhookEndpoint))
    assert page.status_code == 200 and endpoint.secret in text and "shown this once" in text
    assert endpoint.secret not in client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)

    services.send_request(make.customer(), "buyer@log.example.com", actor=admin, now=datetime.now(UTC))
    db.session.commit()
    log = client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "exemption_request.sent" in log and "pending" in log
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    assert client.post(f"/admin/webhooks/{endpoint.id}/deliveries/{delivery.id}/replay").status_code == 303
    other = WebhookEndpoint(url="http://127.0.0.1:8765/other", secret="whsec_x", event_types=[],
                            created_at=datetime.now(UTC))
    db.session.add(other)
    db.session.commit()
    # another endpoint's delivery is not replayed through this one
    assert client.post(f"/admin/webhooks/{other.id}/deliveries/{delivery.id}/replay").status_code == 404
    refused = client.post("/admin/webhooks", data={"url": "https://10.1.2.3/x"})
    assert refused.status_code == 422 and "private, loopback" in refused.get_data(as_text=True)


def test_metrics_against_a_seeded_set(client, bearer, make, auth):
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    customer = make.customer()
    reviewer = make.user(Role.REVIEWER)
    reqs = [services.send_request(customer, f"b{i}@metrics.example.com", actor=reviewer, now=t0)[0] for i in range(4)]
    for r in reqs[:3]:
        services.open_link(r, now=t0 + timedelta(hours=1))
    from app.uploads import PDF, CheckedUpload
    from tests.factories import tiny_pdf
    from tests.unit.test_exemption_rules import _data

    upload = CheckedUpload(data=tiny_pdf(), content_type=PDF, filename="c.pdf", page_count=1)
    c1 = services.submit_certificate(reqs[0], _data([("TX", "1", None)]), upload, now=t0 + timedelta(hours=2))
    services.submit_certificate(reqs[1], _data([("TX", "1", None)]), upload, now=t0 + timedelta(hours=10))
    services.approve_certificate(c1, reviewer=reviewer, now=t0 + timedelta(hours=11))
    for status, manual, hours in ((RequestStatus.COMPLETED, False, 1), (RequestStatus.COMPLETED, True, 5),
                                  (RequestStatus.REJECTED, True, None), (RequestStatus.NEW, True, None)):
        db.session.add(CertificateRequest(
            customer_id=customer.id, type=RequestType.COI, source=RequestSource.API, status=status,
            holder_name="H", created_at=t0,
            decision=AutomationDecision.MANUAL if manual else AutomationDecision.AUTO, updated_at=t0,
            completed_at=t0 + timedelta(hours=hours) if hours else None,
            rejection_reason="Duplicate request" if status is RequestStatus.REJECTED else ""))
    db.session.commit()

    body = client.get("/api/v1/metrics?from=2026-03-01&to=2026-03-31", headers=bearer).get_json()
    ex, coi = body["exemptions"], body["certificates_of_insurance"]
    assert (ex["sent"], ex["opened"], ex["completed"], ex["approved"]) == (4, 3, 2, 1)
    assert ex["open_rate"] == 0.75 and ex["completion_rate"] == 0.5 and ex["approval_rate"] == 0.5
    assert ex["sent_to_completed"] == {"count": 2, "median_hours": 2.0, "p90_hours": 10.0}
    assert ex["per_state"] == [{"state": "TX", "completed": 2, "approved": 1, "approval_rate": 0.5}]
    assert (coi["requested"], coi["issued"], coi["issued_automatically"], coi["issued_by_staff"]) == (4, 2, 1, 1)
    assert coi["automatic_share"] == 0.5
    assert coi["time_to_issue"] == {"count": 2, "median_hours": 1.0, "p90_hours": 5.0}
    assert coi["rejections_by_reason"] == [{"reason": "Duplicate request", "count": 1}]
    empty = client.get("/api/v1/metrics?from=2025-01-01&to=2025-01-31", headers=bearer).get_json()
    assert empty["exemptions"]["sent"] == 0 and empty["exemptions"]["open_rate"] is None
    bad = client.get("/api/v1/metrics?from=2026-03-31&to=2026-03-01", headers=bearer)
    assert bad.status_code == 422 and "on or after" in bad.get_json()["fields"]["to"]

    auth.login(reviewer)
    page = client.get("/dashboard/metrics?from=2026-03-01&to=2026-03-31").get_data(as_text=True)
    assert "3 (75.0 %)" in page and "1 (50.0 % of issued)" in page and "Duplicate request: 1" in page
