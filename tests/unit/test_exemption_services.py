"""Exemption services without the web: transition tables, tokens, pure reminder rule, data checks,
server-side preview of the real forms."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.enums import ExemptionCertificateStatus as CS
from app.enums import ExemptionFormType, ExemptionReason, InvalidTransition, PurchaseType
from app.enums import ExemptionRequestStatus as RS
from app.exemptions import services
from app.extensions import db
from app.lifecycle import EXEMPTION_CERTIFICATE_TRANSITIONS, EXEMPTION_REQUEST_TRANSITIONS
from app.models import Activity, ExemptionRequest
from tests.paths import EXEMPTION_FORMS, exemption_forms

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
FORMS = EXEMPTION_FORMS

REQUEST_ALLOWED = {
    (RS.SENT, RS.SENT), (RS.SENT, RS.OPENED), (RS.SENT, RS.COMPLETED), (RS.SENT, RS.EXPIRED),
    (RS.SENT, RS.CANCELLED), (RS.OPENED, RS.SENT), (RS.OPENED, RS.COMPLETED), (RS.OPENED, RS.EXPIRED),
    (RS.OPENED, RS.CANCELLED), (RS.EXPIRED, RS.SENT), (RS.EXPIRED, RS.CANCELLED),
}
CERT_ALLOWED = {(CS.PENDING_REVIEW, CS.ACTIVE), (CS.PENDING_REVIEW, CS.REJECTED), (CS.ACTIVE, CS.EXPIRED)}


@pytest.mark.parametrize("a", list(RS))
@pytest.mark.parametrize("b", list(RS))
def test_request_transition_matrix(a, b):
    from app.enums import can_transition

    assert can_transition(EXEMPTION_REQUEST_TRANSITIONS, a, b) == ((a, b) in REQUEST_ALLOWED)


@pytest.mark.parametrize("a", list(CS))
@pytest.mark.parametrize("b", list(CS))
def test_certificate_transition_matrix(a, b):
    from app.enums import can_transition

    assert can_transition(EXEMPTION_CERTIFICATE_TRANSITIONS, a, b) == ((a, b) in CERT_ALLOWED)


def test_send_stores_only_the_hash_and_records_activity(app, make):
    customer = make.customer()
    req, token = services.send_request(customer, " Buyer@Example.COM ", actor=None, now=NOW)
    db.session.commit()
    assert req.token_hash == services.hash_link_token(token) and token not in req.token_hash
    assert len(token) >= 40
    assert req.email == "Buyer@example.com"
    assert req.expires_at == NOW + timedelta(days=30)
    assert services.find_by_token(token) == req
    assert db.session.scalar(sa.select(Activity.action).where(Activity.subject_id == req.id)) == "sent"


def dump_database() -> str:
    """Every value of every row of every table, as text: what a database dump would show."""
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_token_is_derived_from_the_key_and_a_nonce_and_stored_nowhere(app, make):
    from app.models import OutboxMessage
    from app.notify import build_email

    customer = make.customer()
    req, token = services.send_request(customer, "buyer@example.com", actor=None, now=NOW)
    services.remind_request(req, 7, now=NOW + timedelta(days=23))
    db.session.commit()
    assert token == services.link_token(req.id, req.link_nonce) == services.request_token(req)
    assert len(req.link_nonce) == 32

    dump = dump_database()
    assert token not in dump and token[:20] not in dump
    assert services.link_url(token) not in dump
    assert req.token_hash in dump  # the lookup hash is there, the token is not

    # The e-mails hold a placeholder; the link appears only in the e-mail built for delivery.
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert len(messages) == 2
    for message in messages:
        assert token not in message.body_text + message.body_html
        email = build_email(message)
        assert services.link_url(token) in email.get_body(preferencelist=("plain",)).get_content()
        assert f'href="{services.link_url(token)}"' in email.get_body(preferencelist=("html",)).get_content()

    # Without SECRET_KEY the stored nonce gives nothing: another key derives a token that opens nothing.
    app.config["SECRET_KEY"] = "another-key"
    forged = services.link_token(req.id, req.link_nonce)
    assert forged != token and services.find_by_token(forged) is None


def test_resend_draws_a_new_nonce_and_the_old_token_stops_matching(app, make):
    req, token = make.exemption_request(now=NOW)
    old_nonce = req.link_nonce
    new_token = services.resend_request(req, actor=None, now=NOW + timedelta(days=1))
    db.session.commit()
    assert req.link_nonce != old_nonce and new_token != token
    assert services.find_by_token(token) is None
    assert services.find_by_token(new_token) == req
    assert services.link_token(req.id, old_nonce) == token  # still derivable, but its hash is gone


def test_transition_refuses_what_the_table_does_not_allow(app, make):
    req, _ = make.exemption_request(now=NOW)
    services.cancel_request(req, actor=None, now=NOW)
    with pytest.raises(InvalidTransition):
        services.transition(req, RS.OPENED, actor=None, now=NOW)
    assert req.cancelled_at == NOW


def test_link_time_is_checked_on_use(app, make):
    req, token = make.exemption_request(now=NOW)
    assert services.resolve_link(token, now=NOW + timedelta(days=29)) == req
    with pytest.raises(services.LinkUnavailable):
        services.resolve_link(token, now=NOW + timedelta(days=30))
    assert req.status is RS.EXPIRED
    with pytest.raises(services.LinkUnavailable):
        services.resolve_link("", now=NOW)


def test_link_days_are_configurable(app, make):
    app.config["EXEMPTION_LINK_DAYS"] = 3
    req, _ = make.exemption_request(now=NOW)
    assert req.expires_at == NOW + timedelta(days=3)


def test_due_reminder_rule():
    req = ExemptionRequest(status=RS.SENT, expires_at=NOW + timedelta(days=10), reminders_sent=[])
    assert services.due_reminder(req, NOW, (7, 1)) is None
    assert services.due_reminder(req, NOW + timedelta(days=3), (7, 1)) == 7
    req.reminders_sent = [7]
    assert services.due_reminder(req, NOW + timedelta(days=4), (7, 1)) is None
    assert services.due_reminder(req, NOW + timedelta(days=9), (7, 1)) == 1
    req.reminders_sent = [7, 1]
    assert services.due_reminder(req, NOW + timedelta(days=9, hours=12), (7, 1)) is None
    req.status = RS.COMPLETED
    req.reminders_sent = []
    assert services.due_reminder(req, NOW + timedelta(days=9), (7, 1)) is None


def data(**kw):
    base = dict(reason=ExemptionReason.RESALE, form_type=ExemptionFormType.STREAMLINED,
                purchase_type=PurchaseType.BLANKET, tax_id_number="1", effective_date=date(2026, 1, 1),
                purchaser_name="P", purchaser_address="A", signer_name="S", signed_on=date(2026, 1, 1),
                jurisdictions=[("TX", "", None)])
    base.update(kw)
    return services.CertificateData(**base)


@pytest.mark.parametrize("kw, field", [
    ({"jurisdictions": []}, "jurisdictions"),
    ({"jurisdictions": [("TX", "", None), ("TX", "", None)]}, "jurisdictions"),
    ({"jurisdictions": [("PR", "", None)]}, "jurisdictions"),
    ({"jurisdictions": [("TX", "", date(2025, 1, 1))]}, "jurisdictions"),
    ({"expiration_date": date(2025, 12, 31)}, "expiration_date"),
    ({"purchase_type": PurchaseType.SINGLE}, "po_number"),
    ({"reason": ExemptionReason.OTHER}, "reason_other"),
])
def test_certificate_data_checks(kw, field):
    with pytest.raises(services.InvalidData) as exc:
        services.check_certificate_data(data(**kw))
    assert field in exc.value.errors


def test_expiring_soon_and_earliest_expiration(app, make):
    cert = make.exemption_certificate(states=(("TX", "", date(2026, 6, 10)), ("OK", "", None)),
                                      expiration=date(2026, 12, 31))
    assert cert.earliest_expiration == date(2026, 6, 10)
    assert services.is_expiring_soon(cert, date(2026, 5, 11), days=30)
    assert not services.is_expiring_soon(cert, date(2026, 5, 10), days=30)


def test_jurisdiction_without_any_date_never_expires_the_certificate(app, make):
    cert = make.exemption_certificate(states=(("TX", "", date(2026, 1, 31)), ("OK", "", None)))
    assert not services.expire_certificate_if_due(cert, today=date(2030, 1, 1), now=NOW)
    assert cert.status is CS.ACTIVE


@pytest.mark.parametrize("name", [p.name for p in exemption_forms()])
def test_every_real_form_renders_to_png_on_the_server(name):
    from app.exemptions.preview import render_page_png

    png = render_page_png((FORMS / name).read_bytes(), "application/pdf", 1, 0.75)
    assert png.startswith(b"\x89PNG")
    with pytest.raises(IndexError):
        render_page_png((FORMS / name).read_bytes(), "application/pdf", 99, 1.0)


def test_image_preview_is_re_encoded(make):
    import io

    from PIL import Image

    from app.exemptions.preview import render_page_png

    buf = io.BytesIO()
    Image.new("RGB", (50, 40), "red").save(buf, format="JPEG")
    png = render_page_png(buf.getvalue(), "image/jpeg", 1, 1.0)
    assert png.startswith(b"\x89PNG")


def test_pages_rendered_from_many_threads_at_once_do_not_crash():
    """PDFium is not thread-safe; the edit page loads every page image at once (threaded server).
    Without the lock in preview.py this crashes the process."""
    from concurrent.futures import ThreadPoolExecutor

    from app.exemptions.preview import render_page_png

    data = (FORMS / "mtc_uniform_sales_use_resale_cert.pdf").read_bytes()
    with ThreadPoolExecutor(max_workers=6) as pool:
        pngs = list(pool.map(lambda n: render_page_png(data, "application/pdf", n % 7 + 1, 0.75), range(21)))
    assert all(p.startswith(b"\x89PNG") for p in pngs)
    assert len({p for p in pngs}) == 7
