"""The certificate-request form (portal and staff share it). WTForms renders it; the rules live in
``app.insurance.intake.validate_fields`` (one place), whose errors are attached to these fields."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import Form, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from app.enums import RequestType
from app.i18n import lazy_label
from app.insurance.intake import LABELS, MAX_LENGTHS, PROJECT_FIELDS, REQUESTABLE_TYPES
from app.insurance.intake_errors import RequestInvalid
from app.validation import STATE_CHOICES

REQUIRED = _l("This field is required.")


def _text(name, required=False, **kw):
    validators = [InputRequired(REQUIRED)] if required else []
    render_kw = {"maxlength": MAX_LENGTHS[name], "autocomplete": "off", **kw}
    return StringField(LABELS[name], validators=validators, render_kw=render_kw)


class CertificateRequestForm(Form):
    type = RadioField(_l("Certificate"), choices=[SelectChoice(t.value, lazy_label(t)) for t in REQUESTABLE_TYPES],
                      default=RequestType.COI.value, validators=[InputRequired(REQUIRED)])
    holder_name = _text("holder_name", True)
    holder_email = _text("holder_email", True, type="email")
    holder_phone = _text("holder_phone", True, type="tel", placeholder="(512) 555-0100")
    holder_address = _text("holder_address", True)
    holder_city = _text("holder_city", True)
    holder_state = _text("holder_state", True, placeholder="TX", list="us-states", size=2)
    holder_zip = _text("holder_zip", True, placeholder="78701", inputmode="numeric")
    description = TextAreaField(LABELS["description"], render_kw={"rows": 3, "maxlength": 5000})
    # Required for a certificate with WOS only; the form shows them only then (the service checks).
    project_name = _text("project_name", True)
    project_location = _text("project_location", True)
    project_duration = _text("project_duration", True, placeholder=_l("e.g. June – August 2026"))
    contract_details = TextAreaField(LABELS["contract_details"], validators=[InputRequired(REQUIRED)],
                                     render_kw={"rows": 2, "maxlength": 5000})
    instructions = TextAreaField(LABELS["instructions"], render_kw={"rows": 2, "maxlength": 5000})
    idempotency_key = HiddenField()

    states = STATE_CHOICES

    def values(self) -> dict:
        """The typed values; the WOS project fields only for a certificate with WOS (the form hides
        them otherwise, so whatever was typed there before switching to a plain COI is dropped)."""
        wos = (self.type.data or "").strip().lower() == RequestType.COI_WOS.value
        return {name: (self[name].data or "") if wos or name not in PROJECT_FIELDS else "" for name in LABELS}

    def apply_errors(self, exc: RequestInvalid) -> None:
        for name, message in exc.errors.items():
            if name in self._fields:
                self[name].errors = [message]
        self.form_errors = [m for n, m in exc.errors.items() if n not in self._fields]


class ResendPoiForm(Form):
    email = StringField(_l("Send to e-mail"), validators=[InputRequired(REQUIRED)],
                        render_kw={"type": "email", "maxlength": 254})
    name = StringField(_l("Recipient name (optional)"), render_kw={"maxlength": 200})

    def apply_errors(self, exc: RequestInvalid) -> None:
        for name, message in exc.errors.items():
            if name in self._fields:
                self[name].errors = [message]
