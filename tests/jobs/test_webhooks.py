"""Webhooks against a real HTTP receiver started by the test: events arrive signed per the Standard
Webhooks specification (verified with the ``standardwebhooks`` library), failures are retried and
logged, nothing is lost when Redis drops the jobs, and addresses inside the network are refused."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app import webhooks
from app.enums import Role, WebhookDeliveryStatus
from app.exemptions import services
from app.extensions import db, jobs
from app.models import WebhookDelivery
from app.models.base import utcnow

HOLDER = {"holder_name": "Metro Transit", "holder_email": "risk@metro.example.gov", "holder_phone": "512-555-0110",
          "holder_address": "1 Transit Way", "holder_city": "Austin", "holder_state": "TX", "holder_zip": "78701"}


class Receiver:
    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"thanks" if status == 200 else b"try later")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/certdesk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.calls]


@pytest.fixture
def receiver(app):
    r = Receiver()
    app.config["WEBHOOKS_ALLOW_HTTP"] = True
    app.config["WEBHOOKS_ALLOWED_HOSTS"] = f"127.0.0.1:{r.port}"
    yield r
    r.server.shutdown()


@pytest.fixture
def admin(make):
    return make.user(Role.ADMIN)


def test_exemption_request_sent_arrives_signed_and_verifies(app, make, admin, receiver, run_jobs):
    endpoint = webhooks.create_endpoint(receiver.url, ["exemption_request.sent"], actor=admin, now=utcnow())
    db.session.commit()
    customer = make.customer(name="Signed Co")
    req, _ = services.send_request(customer, "buyer@signed.example.com", actor=admin, now=utcnow())
    db.session.commit()
    run_jobs()

    [(headers, body)] = receiver.calls
    payload = Webhook(endpoint.secret).verify(body, headers)  # raises if the signature is wrong
    assert payload["type"] == "exemption_request.sent" and payload["id"] == headers["webhook-id"]
    assert payload["data"]["id"] == req.id and payload["data"]["status"] == "sent"
    assert payload["data"]["email"] == "buyer@signed.example.com"
    assert payload["url"].endswith(f"/api/v1/exemption-requests/{req.id}")
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(body.replace(b"signed.example.com", b"evil.example.com"), headers)
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    assert delivery.status is WebhookDeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.response_excerpt == "thanks"


def test_certificate_request_created_and_subscription_filter(app, make, admin, receiver, run_jobs):
    from app.enums import RequestSource, RequestType
    from app.insurance import intake

    webhooks.create_endpoint(receiver.url, ["certificate_request.created"], actor=admin, now=utcnow())
    db.session.commit()
    customer = make.customer(name="Holder Co")
    services.send_request(customer, "x@holder.example.com", actor=admin, now=utcnow())  # not subscribed
    intake.submit_certificate_request(customer, type=RequestType.COI, source=RequestSource.API, fields=HOLDER,
        actor=admin, now=utcnow())
    db.session.commit()
    run_jobs()
    types = [e["type"] for e in receiver.events()]
    assert types == ["certificate_request.created"]
    assert receiver.events()[0]["data"]["holder"]["name"] == "Metro Transit"


def test_receiver_failing_twice_gets_three_attempts_and_one_success(app, make, admin, receiver):
    endpoint = webhooks.create_endpoint(receiver.url, [], actor=admin, now=utcnow())
    db.session.commit()
    t0 = datetime.now(UTC)
    services.send_request(make.customer(), "buyer@retry.example.com", actor=admin, now=t0)
    db.session.commit()
    receiver.answers = [500, 500, 200]
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    for offset in (0, 10, 70):
        webhooks.deliver(delivery, now=t0 + timedelta(seconds=offset))
        db.session.commit()
    webhooks.deliver(delivery, now=t0 + timedelta(seconds=500))  # already delivered: nothing more is sent
    assert delivery.status is WebhookDeliveryStatus.SUCCEEDED and delivery.attempts == 3
    assert len(receiver.calls) == 3
    assert len({h["webhook-id"] for h, _ in receiver.calls}) == 1  # one event id: receivers deduplicate
    for headers, body in receiver.calls:
        Webhook(endpoint.secret).verify(body, headers)


def test_jobs_lost_with_redis_are_delivered_by_the_sweep(app, make, admin, receiver, run_jobs):
    from app.sweeper import run_sweep

    webhooks.create_endpoint(receiver.url, [], actor=admin, now=utcnow())
    db.session.commit()
    now = datetime.now(UTC)
    services.send_request(make.customer(), "buyer@lost.example.com", actor=admin, now=now)
    db.session.commit()
    for queue in jobs.all_queues():  # Redis restarted empty: every queued job is gone
        queue.empty()
    run_jobs()
    assert receiver.calls == []
    assert run_sweep(now + timedelta(minutes=2))["webhook_deliveries"] == 1
    run_jobs()
    assert [e["type"] for e in receiver.events()] == ["exemption_request.sent"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook",          # loopback, not listed
    "https://10.0.0.1/hook",            # private
    "https://169.254.169.254/latest",   # link-local (cloud metadata)
    "https://localhost/hook",           # a name that resolves to loopback
])
def test_refused_addresses_at_save_and_at_delivery(app, make, admin, receiver, url):
    app.config["WEBHOOKS_ALLOW_HTTP"] = True
    with pytest.raises(webhooks.WebhookError) as exc:
        webhooks.create_endpoint(url, [], actor=admin, now=utcnow())
    assert "private, loopback, link-local or reserved" in exc.value.errors["url"]
    db.session.rollback()

    endpoint = webhooks.create_endpoint(receiver.url, [], actor=admin, now=utcnow())
    db.session.commit()
    endpoint.url = url  # e.g. DNS changed after the endpoint was saved
    services.send_request(make.customer(), "buyer@ssrf.example.com", actor=admin, now=utcnow())
    db.session.commit()
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    webhooks.deliver(delivery, now=utcnow())
    assert delivery.status is WebhookDeliveryStatus.PENDING and delivery.attempts == 1
    assert "private, loopback, link-local or reserved" in delivery.last_error
    assert receiver.calls == []


def test_generation_completed_event(app, make, admin, receiver, run_jobs):
    from app.customers import generation
    from app.enums import GenerationMode
    from tests.jobs.test_generation_jobs import _many

    webhooks.create_endpoint(receiver.url, ["generation.completed"], actor=admin, now=utcnow())
    db.session.commit()
    customer, staff, _ = _many(make, 3)
    run = generation.start_generation(customer, holder_ids=None, mode=GenerationMode.MERGED, actor=staff,
                                      now=utcnow())
    db.session.commit()
    run_jobs()
    [event] = receiver.events()
    assert event["type"] == "generation.completed" and event["data"]["id"] == run.id
    assert event["data"]["status"] == "done" and event["data"]["total"] == 3


def test_policy_cancelled_event(app, make, admin, receiver, run_jobs):
    from app.customers import policies as pol
    from tests.unit.test_customer_records import gl

    webhooks.create_endpoint(receiver.url, ["policy.cancelled"], actor=admin, now=utcnow())
    insurer = make.insurer("Cancel Mutual")
    customer = make.customer(with_policies=False)
    db.session.commit()
    policy = pol.create_policy(customer, gl(insurer), actor=admin, now=utcnow())
    db.session.commit()
    pol.cancel_policy(policy, "2026-07-01", actor=admin, now=utcnow())
    db.session.commit()
    run_jobs()
    [event] = receiver.events()
    assert event["type"] == "policy.cancelled" and event["data"]["status"] == "cancelled"
    assert event["data"]["cancelled_on"] == "2026-07-01" and event["url"].endswith(f"/api/v1/policies/{policy.id}")


def test_expiring_soon_event_once_per_certificate(app, make, admin, receiver, run_jobs):
    from datetime import date

    from app.sweeper import run_sweep

    webhooks.create_endpoint(receiver.url, ["exemption_certificate.expiring_soon"], actor=admin, now=utcnow())
    cert = make.exemption_certificate(states=(("TX", "1", date(2026, 6, 30)),))
    far = make.exemption_certificate(states=(("TX", "1", date(2027, 6, 30)),))
    db.session.commit()
    assert run_sweep(datetime(2026, 5, 30, 12, tzinfo=UTC))["exemption_expiring_soon"] == 0  # 31 days out
    assert run_sweep(datetime(2026, 6, 1, 12, tzinfo=UTC))["exemption_expiring_soon"] == 1
    assert run_sweep(datetime(2026, 6, 2, 12, tzinfo=UTC))["exemption_expiring_soon"] == 0  # once
    run_jobs()
    [event] = receiver.events()
    assert event["type"] == "exemption_certificate.expiring_soon" and event["data"]["id"] == cert.id
    assert far.expiring_soon_at is None


def test_certificate_issued_after_an_automatic_coi(app, make, admin, receiver, run_jobs):
    from app.enums import RequestSource, RequestType
    from app.insurance import intake

    endpoint = webhooks.create_endpoint(receiver.url, ["certificate.issued"], actor=admin, now=utcnow())
    db.session.commit()
    customer = make.customer(name="Auto Issue Co")
    intake.submit_certificate_request(customer, type=RequestType.COI, source=RequestSource.API, fields=HOLDER,
        actor=admin, now=utcnow())
    db.session.commit()
    run_jobs()
    run_jobs()
    issued = [(h, b) for h, b in receiver.calls if json.loads(b)["type"] == "certificate.issued"]
    assert len(issued) == 1, [e["type"] for e in receiver.events()]
    headers, body = issued[0]
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["data"]["holder_name"] == "Metro Transit" and payload["data"]["revision"] == 1
    assert payload["data"]["certificate_number"]
    assert payload["url"].endswith(f"/api/v1/certificates/{payload['data']['id']}")


class Misbehaving(BaseHTTPRequestHandler):
    """A receiver that redirects, floods or hangs, by path."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()
        elif self.path == "/flood":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100):  # up to 100 MB, unless the client stops reading
                    self.wfile.write(b"x" * (1 << 20))
            except OSError:
                pass
        else:  # /hang
            import time

            time.sleep(5)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/redirect", None, "The receiver answered 302."),
    ("/flood", 200, ""),
    ("/hang", None, "TimeoutError"),
])
def test_a_misbehaving_receiver_never_holds_a_worker(app, make, admin, monkeypatch, path, status, error):
    import time

    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    app.config["WEBHOOKS_ALLOW_HTTP"] = True
    app.config["WEBHOOKS_ALLOWED_HOSTS"] = f"127.0.0.1:{port}"
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 1)
    webhooks.create_endpoint(f"http://127.0.0.1:{port}{path}", [], actor=admin, now=utcnow())
    services.send_request(make.customer(), "buyer@odd.example.com", actor=admin, now=utcnow())
    db.session.commit()
    delivery = db.session.scalar(sa.select(WebhookDelivery))
    started = time.monotonic()
    webhooks.deliver(delivery, now=utcnow())
    assert time.monotonic() - started < 4  # bounded by the timeout, never by the receiver
    if status == 200:  # a 100 MB answer: success, and only an excerpt kept
        assert delivery.status is WebhookDeliveryStatus.SUCCEEDED and len(delivery.response_excerpt) <= 1000
    else:  # a redirect is not followed; a hang times out; both are retried later
        assert delivery.status is WebhookDeliveryStatus.PENDING and delivery.last_status_code == (
            302 if path == "/redirect" else None)
        assert error in delivery.last_error
    server.shutdown()
