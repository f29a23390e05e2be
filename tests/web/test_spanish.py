"""Spanish for customers and certificate holders (catalog: translations/es): the exemption link page,
the portal, error and login pages and every customer e-mail and SMS follow the customer's preferred
language, else the browser's Accept-Language; a visible switch changes it; staff pages stay English.

``assert_no_english`` is the catalog check: the visible text of a Spanish page (text nodes and the
labels a screen reader reads) must contain no English catalog entry that has a Spanish translation,
and no English word at all outside the data shown on the page (names, addresses, states)."""

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from app.enums import Channel, Language, PaymentMethod, RequestStatus, RequestType, Role
from app.extensions import db
from app.models import OutboxMessage
from app.payments import DECLINE_CARD

CATALOG = Path(__file__).resolve().parents[2] / "translations" / "es" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\([a-z_0-9]+\)[sd]|%%")
TAG = re.compile(r"<[^>]+>")
# Words that mark English prose; none is a Spanish word.
ENGLISH = {"the", "your", "you", "and", "with", "this", "please", "was", "were", "will", "our", "for", "is", "are",
           "of", "to", "be", "not", "has", "have", "been", "it", "from", "by", "at", "on", "or", "an", "we", "can",
           "request", "certificate", "submit", "sign", "holder", "fee", "state", "link", "file", "choose", "hello"}
# Readable attributes: what screen readers say, and the labels a phone layout prints from data-label.
READ_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt", "data-label", "data-too-large")

FORM = {
    "type": "coi_wos", "holder_name": "Lakeside School District", "holder_email": "facilities@lakeside.example.org",
    "holder_phone": "(512) 555-0199", "holder_address": "400 School Rd", "holder_city": "Round Rock",
    "holder_state": "TX", "holder_zip": "78664", "description": "Gym roof replacement",
    "project_name": "Gym roof", "project_location": "400 School Rd, Round Rock TX",
    "project_duration": "July 2026", "contract_details": "PO 7781", "instructions": "",
}


def _segments(text: str) -> set[str]:
    """The runs of words in a catalog string, with its tags and placeholders cut out."""
    found = set()
    for piece in PLACEHOLDER.split(TAG.sub("\x00", text)):
        for part in piece.split("\x00"):
            part = " ".join(part.split()).strip(" .,:;()")
            if re.search(r"[A-Za-z]{2}", part):
                found.add(part)
    return found


def _english_segments() -> set[str]:
    """Every run of English text in the catalog that the Spanish does not also contain ("portal", "PDF")."""
    with open(CATALOG, "rb") as f:
        catalog = read_po(f)
    english, spanish = set(), set()
    for message in catalog:
        if not message.id:
            continue
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            english |= _segments(text)
        for text in message.string if isinstance(message.string, tuple) else (message.string,):
            spanish |= _segments(text)
    return english - spanish


SEGMENTS = _english_segments()


class _Visible(HTMLParser):
    SKIP = {"script", "style"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0
        self._select_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.texts.append(value)
            if name == "value" and tag == "input" and ("type", "submit") in attrs and value:
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data)


def visible_texts(markup: str) -> list[str]:
    parser = _Visible()
    parser.feed(markup)
    return [" ".join(t.split()) for t in parser.texts]


def english_left(texts: list[str], data: tuple[str, ...] = ()) -> list[str]:
    """The visible texts still in English: an English catalog entry, or English words outside ``data``."""
    found = []
    for text in texts:
        bare = text.strip(" .,:;()—·*")
        if bare in SEGMENTS or any(len(s.split()) >= 4 and s in text for s in SEGMENTS):
            found.append(text)
            continue
        rest = text
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        words = set(re.findall(r"[a-z']+", rest.lower()))
        if words & ENGLISH:
            found.append(text)
    return found


STATE_NAMES = ("Oregon (OR)", "District of Columbia", "New Hampshire", "New Jersey", "New Mexico", "New York",
               "North Carolina", "North Dakota", "Rhode Island", "South Carolina", "South Dakota", "West Virginia")


def assert_no_english(markup: str, *data: str):
    left = english_left(visible_texts(markup), data + STATE_NAMES + ("CertDesk Demo Supply Co.", "CertDesk"))
    assert left == [], f"English left on a Spanish page: {left}"


def spanish(make, **kw):
    customer = make.customer(**kw)
    customer.language = Language.ES
    db.session.commit()
    return customer


@pytest.fixture
def spanish_user(make, auth):
    def login(**kw):
        customer = spanish(make, **kw)
        user = make.user(Role.CUSTOMER, customer=customer)
        auth.login(user)
        return customer, user

    return login


# -- the checker itself can fail ---------------------------------------------------------------------------

def test_the_checker_finds_english_left_on_a_page():
    assert english_left(visible_texts("<p>Submit certificate</p>")) == ["Submit certificate"]
    assert english_left(visible_texts('<input aria-label="State ID number 1">')) == ["State ID number 1"]
    assert english_left(visible_texts("<p>Something never put in the catalog for the customer.</p>"))
    assert english_left(visible_texts("<p>Enviar el certificado</p><p>Acme Roofing of Texas</p>"),
                        ("Acme Roofing of Texas",)) == []


def test_every_string_marked_in_the_code_has_its_spanish():
    """A string wrapped for translation but missing from the catalog (or left untranslated) fails here:
    run `make messages`, translate the new entries, `make install`."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = CATALOG.parents[3]
    with open(root / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = {(msgid if isinstance(msgid, str) else msgid[0])
             for _, _, msgid, _, _ in extract_from_dir(root, method_map, options_map, keywords=keywords)
             if msgid}
    with open(CATALOG, "rb") as f:
        catalog = read_po(f)
    missing = sorted(m for m in found if not catalog.get(m) or not all(
        catalog.get(m).string if isinstance(catalog.get(m).string, tuple) else (catalog.get(m).string,)))
    assert found and missing == [], f"not translated in {CATALOG.name}: {missing}"


# -- the exemption link page ----------------------------------------------------------------------------------

def test_link_page_is_spanish_for_a_spanish_customer(client, make):
    customer = spanish(make, name="Techos Hernández LLC")
    req, token = make.exemption_request(customer)
    response = client.get(f"/portal/r/{token}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="es">' in body
    assert "le solicita su certificado de exención del impuesto sobre las ventas" in body
    assert "Enviar el certificado" in body and "Motivo de la exención" in body
    # dates the Spanish way, and a way back to English
    assert re.search(r"válido hasta el \d{1,2} de [a-z]+ de 20\d\d, \d\d:\d\d UTC", body)
    assert f'href="/portal/r/{token}?lang=en"' in body
    assert_no_english(body, "Techos Hernández LLC")


def test_link_page_follows_accept_language_for_an_english_record(client, make):
    req, token = make.exemption_request(make.customer(name="Plain Customer Inc"))
    english = client.get(f"/portal/r/{token}").get_data(as_text=True)
    assert "Submit certificate" in english and '<html lang="en">' in english
    response = client.get(f"/portal/r/{token}", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert "Accept-Language" in response.headers["Vary"]  # no shared cache mixes the languages up
    body = response.get_data(as_text=True)
    assert "Enviar el certificado" in body and '<html lang="es">' in body
    assert_no_english(body, "Plain Customer Inc")


def test_the_switch_changes_the_language_and_the_choice_sticks(client, make):
    customer = spanish(make)
    req, token = make.exemption_request(customer)
    response = client.get(f"/portal/r/{token}?lang=en")
    assert "Submit certificate" in response.get_data(as_text=True)
    assert "lang=en" in response.headers["Set-Cookie"]
    # the cookie carries the choice to the form post (422 with English messages)
    again = client.post(f"/portal/r/{token}", data={}, content_type="multipart/form-data")
    assert again.status_code == 422
    assert "This field is required." in again.get_data(as_text=True)
    client.get(f"/portal/r/{token}?lang=es")
    body = client.post(f"/portal/r/{token}", data={}, content_type="multipart/form-data").get_data(as_text=True)
    assert "Este dato es obligatorio." in body


def test_link_form_errors_are_spanish(client, make):
    customer = spanish(make, name="Techos Hernández LLC")
    req, token = make.exemption_request(customer)
    data = make.exemption_form(purchase_type="single", po_number="", effective_date="2026-13-45",
                               **{"jurisdictions-1-state": "ZZ"})
    response = client.post(f"/portal/r/{token}", data=data, content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Revise algunos campos." in body
    assert "Adjunte el certificado firmado (PDF, PNG o JPEG)." in body
    assert "ZZ no es un código de estado de EE. UU." in body
    assert_no_english(body, "Techos Hernández LLC", "Acme Buyer Inc", "Jo Signer", "Controller", "Elm St",
                      "Dallas", "2026-13-45")


def test_upload_refusals_are_spanish(client, make):
    customer = spanish(make)
    req, token = make.exemption_request(customer)
    import io

    response = client.post(f"/portal/r/{token}", data={**make.exemption_form(),
                                                       "document": (io.BytesIO(b"MZ not a pdf"), "scan.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Este archivo no es un documento JPG, PDF, PNG (se revisó su contenido)." in response.get_data(as_text=True)


def test_done_and_unavailable_pages_are_spanish(client, make):
    customer = spanish(make)
    req, token = make.exemption_request(customer)
    response = client.post(f"/portal/r/{token}", data={**make.exemption_form(),
                                                       "document": (__import__("io").BytesIO(make.tiny_pdf()),
                                                                    "cert.pdf")},
                           content_type="multipart/form-data", headers={"Accept-Language": "es"})
    assert response.status_code == 303
    done = client.get(response.headers["Location"], headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Gracias, recibimos su certificado" in done
    assert_no_english(done)
    gone = client.get(f"/portal/r/{token}", headers={"Accept-Language": "es"})
    assert gone.status_code == 404
    assert "Este enlace no está disponible" in gone.get_data(as_text=True)
    assert_no_english(gone.get_data(as_text=True))


# -- login, errors, staff ----------------------------------------------------------------------------------

def test_login_and_error_pages_follow_accept_language(client):
    login = client.get("/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Iniciar sesión" in login
    missing = client.get("/portal/r/not-a-token-at-all", headers={"Accept-Language": "es"})
    assert missing.status_code == 404
    error = client.get("/no-such-page", headers={"Accept-Language": "es"})
    assert error.status_code == 404 and "No se encontró lo que buscaba." in error.get_data(as_text=True)
    assert_no_english(error.get_data(as_text=True))


def test_staff_pages_stay_english_whatever_the_browser_says(client, make, auth):
    customer = spanish(make, name="Techos Hernández LLC")
    make.exemption_request(customer)
    auth.login(make.user(Role.ADMIN))
    body = client.get("/exemptions/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="en">' in body and "Sign out" in body and "Cerrar sesión" not in body
    assert 'class="lang-switch"' not in body
    assert client.get("/exemptions/?lang=es").get_data(as_text=True).count("Cerrar sesión") == 0


# -- the portal --------------------------------------------------------------------------------------------

def test_portal_pages_are_spanish_for_a_spanish_customer(client, make, spanish_user):
    customer, user = spanish_user(name="Techos Hernández LLC")
    req = make.queue_request(customer, type="coi_wos", status="rejected", rejection_reason="Incomplete address",
                             fee_cents=2500, project_name="Gym roof", project_location="Round Rock",
                             project_duration="July 2026", contract_details="PO 7781")
    db.session.commit()
    data = ("Techos Hernández LLC", "Northwind Builders Inc", "certs@northwind.example.com", "(512) 555-0199",
            "500 Congress Ave", "Austin", "TX 78701", "Roofing work at the holder's sites.", "Incomplete address",
            "Gym roof", "Round Rock", "July 2026", "PO 7781", user.name)
    home = client.get("/portal/").get_data(as_text=True)
    assert "Mis solicitudes" in home and "Reenviar el comprobante de seguro" in home
    assert "rechazada" in home and "$25.00" in home
    assert_no_english(home, *data)
    detail = client.get(f"/portal/requests/{req.id}").get_data(as_text=True)
    assert f"Solicitud n.º {req.id}" in detail and "Certificado de seguro con renuncia de subrogación" in detail
    assert re.search(r"\d{1,2} de [a-z]+ de 20\d\d, \d\d:\d\d UTC", detail)
    assert_no_english(detail, *data)
    new = client.get("/portal/requests/new").get_data(as_text=True)
    assert "Nombre del titular" in new and "Titular del certificado" in new
    assert_no_english(new, *data, "(512) 555-0100", "June – August 2026")


def test_portal_request_errors_and_declined_payment_are_spanish(client, spanish_user):
    customer, user = spanish_user(payment_method=PaymentMethod.CARD, card=DECLINE_CARD)
    data = ("Lakeside School District", "facilities@lakeside.example.org", "400 School Rd", "Round Rock",
            "Gym roof replacement", "Gym roof", "July 2026", "PO 7781", "(512) 555-0199", "(512) 555-0100",
            customer.name, user.name)
    bad = client.post("/portal/requests/new", data={**FORM, "holder_zip": "", "holder_state": "Texas"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Código postal: este dato es obligatorio." in body
    assert "Escriba el código de dos letras de un estado de EE. UU. (o DC)." in body
    assert_no_english(body, *data, "Texas")
    declined = client.post("/portal/requests/new", data=FORM)
    body = declined.get_data(as_text=True)
    assert declined.status_code == 422
    assert "No se pudo procesar el pago." in body
    assert "Se rechazó el cobro de" in body and "terminada en 0002" in body
    assert_no_english(body, *data)
    # the e-mail and the SMS that follow are Spanish too
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    sms = [m for m in messages if m.channel is Channel.SMS]
    assert len(sms) == 1 and "se rechazó el cobro" in sms[0].body_text
    mail = [m for m in messages if m.channel is Channel.EMAIL]
    assert mail and all(m.subject == "No se pudo cobrar: actualice su método de pago" for m in mail)


def test_portal_confirmation_is_spanish(client, spanish_user):
    customer, user = spanish_user()
    response = client.post("/portal/requests/new", data={**FORM, "type": "coi"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Recibimos la solicitud n.º" in page
    received = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL)).all()
    assert received and all(m.subject.startswith("Recibimos su solicitud de certificado n.º") for m in received)


# -- every e-mail to customers and holders ----------------------------------------------------------------

NOW = datetime(2026, 12, 2, 14, 5, tzinfo=UTC)


def _contexts(customer):
    cert = SimpleNamespace(kind=RequestType.COI_WOS, certificate_number="CD-2026-000123", revision=1,
                           holder_name="Lakeside School District", filename="coi-CD-2026-000123.pdf", created_at=NOW,
                           id=7)
    req = SimpleNamespace(id=41, type=RequestType.COI_WOS, holder_name="Lakeside School District")
    payment = SimpleNamespace(card_last4="4242", amount_cents=2575)
    refund = SimpleNamespace(card_last4="4242")
    exemption = SimpleNamespace(states=["TX", "NY"], effective_date=date(2026, 1, 1),
                                earliest_expiration=date(2027, 12, 31), id=3)
    link = "https://certdesk.example.com/portal/r/abc"
    return {
        "certificate_issued": {"cert": cert, "customer": customer, "is_holder": False, "sent_by": ""},
        "certificate_issued (holder)": {"cert": cert, "customer": customer, "is_holder": True, "sent_by": ""},
        "coi_cancelled": {"req": req, "note": "Duplicate of #40.", "customer": customer, "refund": refund,
                          "refund_amount": "$25.75"},
        "coi_certificate_resent": {"cert": cert, "customer": customer},
        "coi_payment_failed": {"customer": customer, "payment": payment, "amount": "$25.75", "last4": "0002"},
        "coi_poi": {"customer": customer, "cert": cert, "name": "Dana Ruiz"},
        "coi_rejected": {"req": req, "reason": "Incomplete address", "note": "", "customer": customer,
                         "refund": refund, "refund_amount": "$25.75"},
        "coi_request_received": {"req": req, "customer": customer, "payment": payment, "fee": "$25.00"},
        "exemption_approved": {"certificate": exemption, "customer": customer},
        "exemption_rejected": {"certificate": exemption, "customer": customer, "notes": "Signature missing.",
                               "link": link, "expires_at": NOW},
        "exemption_reminder": {"request": None, "customer": customer, "days": 3, "expires_at": NOW, "link": link},
        "exemption_request": {"request": None, "customer": customer, "link": link, "expires_at": NOW},
        "exemption_request (renewal)": {"request": None, "customer": customer, "link": link, "expires_at": NOW,
                                        "renewal_of": exemption},
        "holder_certificate": {"customer": customer, "holder_name": "Lakeside School District",
                               "kind": RequestType.COI},
        "policy_cancelled": {"customer": customer, "holder_name": "Lakeside School District",
                             "policy": SimpleNamespace(policy_number="CD-2026-000123", cancelled_on=date(2026, 7, 15)),
                             "numbers": "CD-2026-000123"},
    }


CUSTOMER_TEMPLATES = sorted(_contexts(None))


def test_every_customer_template_is_covered():
    templates = {p.stem for p in (CATALOG.parents[3] / "templates" / "email").glob("*.txt")}
    staff_only = {"exemption_submitted", "notice", "user_invitation"}
    assert templates - staff_only <= {name.split(" ")[0] for name in CUSTOMER_TEMPLATES}


@pytest.mark.parametrize("name", CUSTOMER_TEMPLATES)
def test_each_customer_email_is_spanish_for_a_spanish_customer(app, make, name):
    from app.notify import queue_email

    customer = spanish(make, name="Techos Hernández LLC")
    template = name.split(" ")[0]
    message = queue_email("pat@example.com", template, subject="x", context=_contexts(customer)[name],
                          customer_id=customer.id)
    data = ("Techos Hernández LLC", "Lakeside School District", "CD-2026-000123", "Duplicate of #40.", "Dana Ruiz",
            "Incomplete address", "Signature missing.", "Pat Contact", "https://certdesk.example.com/portal/r/abc",
            "http://localhost/portal/", "coi-CD-2026-000123.pdf", "TX, NY")
    assert message.body_html.startswith("<!doctype html>\n<html lang=\"es\">")
    for body in (message.body_text, message.body_html):
        assert "Hola" in body
        assert_no_english(body, *data)
    assert "Enviado por CertDesk en nombre de" in message.body_html
    english = queue_email("pat@example.com", template, subject="x", context=_contexts(make.customer())[name],
                          customer_id=make.customer().id)
    assert "Hello" in english.body_text  # the same template, English for an English customer


def test_dates_and_money_in_spanish_emails(app, make):
    from app.notify import queue_email

    customer = spanish(make)
    ctx = _contexts(customer)
    reminder = queue_email("pat@example.com", "exemption_reminder", subject="x", context=ctx["exemption_reminder"],
                           customer_id=customer.id)
    assert "hasta el 2 de diciembre de 2026, 14:05 UTC (dentro de 3 días)" in reminder.body_text
    received = queue_email("pat@example.com", "coi_request_received", subject="x",
                           context=ctx["coi_request_received"], customer_id=customer.id)
    assert "total de $25.75" in received.body_text
    english = queue_email("pat@example.com", "exemption_reminder", subject="x",
                          context={**ctx["exemption_reminder"], "days": 1}, customer_id=make.customer().id)
    assert "until Dec 02, 2026 14:05 UTC (in 1 day)" in english.body_text


def test_exemption_flow_emails_follow_the_customer_language(app, make):
    """The real services: the request e-mail, its subject, and the staff notice that stays English."""
    from app.exemptions.services import send_request

    customer = spanish(make, name="Techos Hernández LLC")
    send_request(customer, "compras@techos.example.com", actor=None, now=NOW)
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address ==
                                                               "compras@techos.example.com"))
    assert message.subject == ("CertDesk Demo Supply Co. le solicita su certificado de exención del impuesto "
                               "sobre las ventas")
    assert "Abra este enlace para completar el certificado" in message.body_text


def test_staff_notice_stays_english_for_a_spanish_customer(app, client, make):
    make.user(Role.REVIEWER, email="rev@example.com")
    customer = spanish(make, name="Techos Hernández LLC")
    req, token = make.exemption_request(customer)
    import io

    response = client.post(f"/portal/r/{token}", data={**make.exemption_form(),
                                                       "document": (io.BytesIO(make.tiny_pdf()), "cert.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    notice = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "rev@example.com"))
    assert notice.subject.startswith("Exemption certificate to review")
    assert "submitted an exemption certificate" in notice.body_text


def test_rejection_email_of_a_request_is_spanish(app, make):
    from app.insurance import processing

    customer = spanish(make, name="Techos Hernández LLC")
    req = make.queue_request(customer, type="coi")
    processing.ensure_default_reasons()
    reason = processing.rejection_reasons()[0]
    processing.reject(req, reason.id, actor=make.user(Role.PROCESSOR), now=NOW)
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL))
    assert message.subject == f"No se emitió su solicitud de certificado n.º {req.id}"
    assert "No pudimos emitir el certificado que solicitó" in message.body_text
    assert req.status is RequestStatus.REJECTED


# -- customer users: invitation, password pages, sign-in errors; the card on file --------------------------

def test_invitation_email_and_password_pages_are_spanish(app, client, make):
    from app.auth import invitations
    from app.models.base import utcnow
    from app.notify import expanded_bodies

    customer = spanish(make, name="Techos Hernández LLC")
    invitations.invite_customer_user(customer, email="dana@techos.example.com", name="Dana Ruiz", actor=None,
                                     now=utcnow())
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "dana@techos.example.com"))
    assert message.subject == "CertDesk Demo Supply Co.: elija su contraseña para el portal de certificados"
    text, markup = expanded_bodies(message)
    data = ("Techos Hernández LLC", "Dana Ruiz", "dana@techos.example.com")
    assert "Abra este enlace para elegir su contraseña:" in text
    link = re.search(r"https?://\S+/invitations/[A-Za-z0-9_-]+", text).group(0)
    for body in (text, markup):
        assert_no_english(body, *data, link)
    path = "/" + link.split("/", 3)[3]
    page = client.get(path, headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Elija su contraseña" in page
    assert_no_english(page, *data)
    short = client.post(path, data={"password": "corta", "confirm": "corta"}, headers={"Accept-Language": "es"})
    assert short.status_code == 422 and "Use al menos" in short.get_data(as_text=True)
    assert_no_english(short.get_data(as_text=True), *data)


def test_sign_in_errors_are_spanish(client, make):
    make.user(Role.CUSTOMER, email="dana@techos.example.com")
    page = client.post("/login", data={"email": "dana@techos.example.com", "password": "wrong-password"},
                       headers={"Accept-Language": "es"})
    body = page.get_data(as_text=True)
    assert "El correo electrónico o la contraseña no son correctos." in body and "Contraseña" in body
    assert_no_english(body, "dana@techos.example.com")


def test_card_page_and_its_errors_are_spanish(client, spanish_user):
    customer, user = spanish_user(payment_method=PaymentMethod.CARD, name="Techos Hernández LLC")
    data = ("Techos Hernández LLC", user.name, "4242 4242 4242 4242", "Visa", "CARD")
    page = client.get("/portal/card").get_data(as_text=True)
    assert "Tarjeta registrada" in page and "terminada en 4242" in page
    assert_no_english(page, *data)
    refused = client.post("/portal/card", data={"number": "1234", "exp_month": "13", "exp_year": "", "cvc": ""})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "No se guardó la tarjeta." in body
    assert "Escriba el mes de vencimiento (del 1 al 12)." in body
    assert_no_english(body, *data)
    page = client.get("/account/password").get_data(as_text=True)
    assert "Cambie su contraseña" in page
    assert_no_english(page, *data)


def test_the_pdf_stays_english_while_its_cover_email_is_spanish(client, spanish_user, run_jobs):
    """Holders require the certificate in English; the e-mail carrying it follows the customer."""
    import io

    from pypdf import PdfReader

    from app.models import IssuedCertificate
    from app.storage import get_store

    customer, user = spanish_user(name="Techos Hernández LLC")
    response = client.post("/portal/poi", data={"email": "prestamos@banco.example.com", "name": "Mesa de préstamos"})
    assert response.status_code == 303
    run_jobs()
    cert = db.session.scalar(sa.select(IssuedCertificate))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(get_store().read(cert.document_key))).pages)
    assert "PROOF OF INSURANCE" in text and "AUTHORIZED REPRESENTATIVE" in text
    assert "comprobante" not in text.lower()
    mail = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.to_address == "prestamos@banco.example.com"))
    assert mail.subject == "Comprobante de seguro: Techos Hernández LLC"
    assert "Adjuntamos el comprobante de seguro vigente de Techos Hernández LLC" in mail.body_text
    assert mail.attachments[0]["key"] == cert.document_key


def test_verify_pages_follow_accept_language(app, client, make):
    """A holder checking a certificate reads the verify page in its browser's language; the PDF it checks
    stays English."""
    from app.insurance.documents import issue_certificate
    from app.insurance.layout import HolderInfo

    customer = spanish(make, name="Techos Hernández LLC")
    holder = HolderInfo(name="Northwind Builders Inc", address="500 Congress Ave", city="Austin", state="TX",
                        zip_code="78701", email="certs@northwind.example.com")
    first = issue_certificate(customer, kind=RequestType.COI, holder=holder, actor=None, now=NOW)
    issue_certificate(customer, kind=RequestType.COI, holder=holder, actor=None, now=NOW.replace(day=4))
    db.session.commit()
    es = {"Accept-Language": "es"}
    page = client.get(f"/verify/{first.verification_code}", headers=es).get_data(as_text=True)
    assert "Reemplazado por la revisión 2 el 4 de diciembre de 2026." in page and "Titular del certificado" in page
    data = ("Techos Hernández LLC", "Northwind Builders Inc", first.certificate_number)
    assert_no_english(page, *data)
    english = client.get(f"/verify/{first.verification_code}").get_data(as_text=True)
    assert "Superseded by revision 2 on 12/04/2026." in english
    upload = client.get("/verify", headers=es).get_data(as_text=True)
    assert "Verificar un certificado" in upload
    assert_no_english(upload)


def test_a_returned_submission_reaches_a_spanish_customer_in_spanish(app, client, make):
    """Rejected by a reviewer (staff, English): the e-mail and the pre-filled link page are Spanish."""
    import io

    from app.exemptions.services import reject_certificate
    from app.models import ExemptionCertificate
    from app.models.base import utcnow
    from app.notify import expanded_bodies

    customer = spanish(make, name="Techos Hernández LLC")
    req, token = make.exemption_request(customer, email="compras@techos.example.com")
    response = client.post(f"/portal/r/{token}", data={**make.exemption_form(),
                                                       "document": (io.BytesIO(make.tiny_pdf()), "cert.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    cert = db.session.scalar(sa.select(ExemptionCertificate))
    reject_certificate(cert, reviewer=make.user(Role.REVIEWER), now=utcnow(),
                       notes="Falta la firma en la página 2.")
    db.session.commit()
    mail = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.to_address == "compras@techos.example.com")
                              .order_by(OutboxMessage.id.desc())).first()
    assert mail.subject == "Su certificado de exención necesita cambios (CertDesk Demo Supply Co.)"
    text, _ = expanded_bodies(mail)
    assert "Comentarios de la persona que lo revisó:" in text and "Falta la firma en la página 2." in text
    link = re.search(r"https?://\S+/portal/r/\S+", text).group(0)
    page = client.get("/" + link.split("/", 3)[3]).get_data(as_text=True)
    assert "Le devolvimos su envío anterior para que haga cambios." in page
    assert 'value="TX-12345678"' in page  # pre-filled with what was sent
    assert_no_english(page, "Techos Hernández LLC", "Falta la firma en la página 2.", "Acme Buyer Inc", "Jo Signer",
                      "Controller", "Elm St", "Dallas")
