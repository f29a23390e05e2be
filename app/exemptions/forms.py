"""Forms of the exemption pages: the customer's certificate form (also used by reviewers to edit),
request / resend / reject forms. Dates are typed text (``<input type=date>``) parsed by us, so a bad
value is kept as typed and answered with a message next to the field."""

from __future__ import annotations

from datetime import date

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.enums import ExemptionFormType, ExemptionReason, PurchaseType
from app.exemptions.services import CertificateData, InvalidData
from app.i18n import lazy_label
from app.validation import STATE_CHOICES, US_STATES

JURISDICTION_ROWS = 5
REQUIRED = _l("This field is required.")


def _no_nul(value):
    return value.replace("\x00", "") if isinstance(value, str) else value


_WTFORMS_CATALOGS: dict[str, object] = {}


class _KeptTranslations:
    """WTForms' own messages in the request's language, from catalogs loaded once per process and language
    (Flask-WTF loads the catalog file again on every request that builds a form)."""

    @staticmethod
    def _catalog():
        from babel import support
        from flask_babel import get_locale
        from wtforms.i18n import messages_path

        locale = get_locale()
        catalog = _WTFORMS_CATALOGS.get(str(locale))
        if catalog is None:
            catalog = _WTFORMS_CATALOGS[str(locale)] = support.Translations.load(messages_path(), [locale],
                                                                                 domain="wtforms")
        return catalog

    def gettext(self, string):
        return self._catalog().ugettext(string)

    def ngettext(self, singular, plural, n):
        return self._catalog().ungettext(singular, plural, n)


KEPT_TRANSLATIONS = _KeptTranslations()


class CleanMeta:
    """Form ``Meta`` mixin: every text field drops NUL characters (PostgreSQL cannot store them, and
    no person types one), so garbage gets a normal answer instead of a database error."""

    def get_translations(self, form):
        translations = super().get_translations(form)
        from flask_wtf.i18n import translations as per_request

        return KEPT_TRANSLATIONS if translations is per_request else translations

    def bind_field(self, form, unbound_field, options):
        if issubclass(unbound_field.field_class, StringField):
            filters = (*unbound_field.kwargs.get("filters", ()), _no_nul)
            return unbound_field.bind(form=form, filters=filters, **options)
        return super().bind_field(form, unbound_field, options)


class CleanForm(FlaskForm):
    class Meta(CleanMeta):
        pass


def _parse_date(field, *, required: bool) -> date | None:
    text = (field.data or "").strip()
    if not text:
        if required:
            field.errors.append(REQUIRED)
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        field.errors.append(gettext("Use a date in the form YYYY-MM-DD."))
        return None


class JurisdictionForm(Form):
    class Meta(CleanMeta):
        pass

    state = SelectField(_l("State"), choices=[SelectChoice("", "—")]
                        + [SelectChoice(c, f"{n} ({c})") for c, n in STATE_CHOICES],
                        validate_choice=False)
    state_id_number = StringField(_l("State ID number"), validators=[Optional(), Length(max=60)])
    expiration_date = StringField(_l("Expires"), render_kw={"type": "date"})


class CertificateForm(CleanForm):
    reason = SelectField(_l("Exemption reason"), choices=[SelectChoice("", _l("Choose the reason…"))]
                         + [SelectChoice(r.value, lazy_label(r)) for r in ExemptionReason],
                         validators=[DataRequired(REQUIRED)])
    reason_other = StringField(_l("Other reason"), validators=[Optional(), Length(max=200)])
    jurisdictions = FieldList(FormField(JurisdictionForm), min_entries=JURISDICTION_ROWS, max_entries=60)
    purchase_type = RadioField(_l("Purchase"), choices=[
        SelectChoice(PurchaseType.BLANKET.value, _l("Blanket (all purchases)")),
        SelectChoice(PurchaseType.SINGLE.value, _l("Single purchase"))],
        default=PurchaseType.BLANKET.value, validators=[DataRequired(REQUIRED)])
    po_number = StringField(_l("PO / invoice number"), validators=[Optional(), Length(max=60)])
    form_type = SelectField(_l("Certificate form"), choices=[SelectChoice("", _l("Choose the form…"))]
                            + [SelectChoice(f.value, lazy_label(f)) for f in ExemptionFormType],
                            validators=[DataRequired(REQUIRED)])
    tax_id_number = StringField(_l("Certificate / tax ID number"), validators=[DataRequired(REQUIRED), Length(max=60)])
    effective_date = StringField(_l("Effective date"), validators=[DataRequired(REQUIRED)], render_kw={"type": "date"})
    expiration_date = StringField(_l("Expiration date (optional)"), render_kw={"type": "date"})
    purchaser_name = StringField(_l("Purchaser name"), validators=[DataRequired(REQUIRED), Length(max=200)])
    purchaser_address = TextAreaField(_l("Purchaser address"), validators=[DataRequired(REQUIRED), Length(max=400)],
                                      render_kw={"rows": 3})
    signer_name = StringField(_l("Signer name"), validators=[DataRequired(REQUIRED), Length(max=120)])
    signer_title = StringField(_l("Signer title"), validators=[Optional(), Length(max=120)])
    signed_on = StringField(_l("Date signed"), validators=[DataRequired(REQUIRED)], render_kw={"type": "date"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form_errors_extra: dict[str, str] = {}

    def fill_from(self, data: dict) -> None:
        """Pre-fill from a prefill dict (CertificateData.as_prefill) on GET."""
        for name in ("reason", "reason_other", "form_type", "purchase_type", "po_number", "tax_id_number",
                     "effective_date", "expiration_date", "purchaser_name", "purchaser_address", "signer_name",
                     "signer_title", "signed_on"):
            if name in data and data[name] is not None:
                getattr(self, name).data = data[name]
        rows = data.get("jurisdictions") or []
        while len(self.jurisdictions) < max(len(rows) + 1, JURISDICTION_ROWS):
            self.jurisdictions.append_entry()
        for entry, row in zip(self.jurisdictions, rows, strict=False):
            entry.form.state.data = row.get("state", "")
            entry.form.state_id_number.data = row.get("state_id_number", "")
            entry.form.expiration_date.data = row.get("expiration_date", "")

    def fill_blanks(self, data: dict) -> int:
        """Copy a prefill (app/exemptions/prefill.py) into the fields the customer left empty: what they
        typed always wins, except the form type, purchase type and reason, which the recognised form itself
        states. Returns how many fields were filled."""
        filled = 0
        for name in ("po_number", "tax_id_number", "effective_date", "expiration_date", "purchaser_name",
                     "purchaser_address", "signer_name", "signer_title", "signed_on"):
            field = getattr(self, name)
            if data.get(name) and not (field.data or "").strip():
                field.data = data[name]
                filled += 1
        for name in ("form_type", "purchase_type", "reason"):
            if data.get(name) and getattr(self, name).data != data[name]:
                getattr(self, name).data = data[name]
                filled += 1
        rows = {(e.form.state.data or "").strip().upper(): e for e in self.jurisdictions if e.form.state.data}
        for row in data.get("jurisdictions") or []:
            entry = rows.get(row["state"])
            if entry is None:
                entry = next((e for e in self.jurisdictions if not (e.form.state.data or "").strip()), None)
                if entry is None:
                    entry = self.jurisdictions.append_entry()
                entry.form.state.data = row["state"]
                filled += 1
            if row.get("state_id_number") and not (entry.form.state_id_number.data or "").strip():
                entry.form.state_id_number.data = row["state_id_number"]
                filled += 1
        return filled

    def to_data(self) -> CertificateData | None:
        """Validate and convert; errors land on the fields (or in ``form_errors_extra``)."""
        ok = self.validate()
        effective = _parse_date(self.effective_date, required=True) if self.effective_date.data else None
        expiration = _parse_date(self.expiration_date, required=False)
        signed = _parse_date(self.signed_on, required=True) if self.signed_on.data else None
        rows: list[tuple[str, str, date | None]] = []
        for entry in self.jurisdictions:
            sub = entry.form
            code = (sub.state.data or "").strip().upper()
            typed_other = (sub.state_id_number.data or "").strip() or (sub.expiration_date.data or "").strip()
            if not code:
                if typed_other:
                    sub.state.errors = [*sub.state.errors, gettext("Choose the state for this row.")]
                continue
            if code not in US_STATES:
                sub.state.errors = [*sub.state.errors, gettext("%(code)s is not a US state code.", code=code[:10])]
                continue
            rows.append((code, (sub.state_id_number.data or "").strip(), _parse_date(sub.expiration_date,
                                                                                     required=False)))
        row_errors = any(e.form.state.errors or e.form.expiration_date.errors for e in self.jurisdictions)
        if not rows and not row_errors:
            # Said at once, with the other missing fields, not only after they are fixed.
            self.form_errors_extra["jurisdictions"] = gettext("Add at least one state.")
            row_errors = True
        has_errors = (not ok or any(f.errors for f in self._fields.values() if f.name != "jurisdictions")
                      or row_errors)
        if has_errors:
            return None
        data = CertificateData(
            reason=ExemptionReason(self.reason.data), form_type=ExemptionFormType(self.form_type.data),
            purchase_type=PurchaseType(self.purchase_type.data), tax_id_number=self.tax_id_number.data,
            effective_date=effective, purchaser_name=self.purchaser_name.data,
            purchaser_address=self.purchaser_address.data, signer_name=self.signer_name.data, signed_on=signed,
            jurisdictions=rows, reason_other=self.reason_other.data or "", po_number=self.po_number.data or "",
            expiration_date=expiration, signer_title=self.signer_title.data or "",
        )
        from app.exemptions.services import check_certificate_data

        try:
            check_certificate_data(data)
        except InvalidData as exc:
            self.apply_errors(exc.errors)
            return None
        return data

    def apply_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            field = getattr(self, name, None)
            if field is not None and name != "jurisdictions":
                field.errors = [*field.errors, message]
            else:
                self.form_errors_extra[name] = message


DOCUMENT_LABEL = _l("Signed certificate document (PDF, PNG or JPEG)")


class LinkForm(CertificateForm):
    document = FileField(DOCUMENT_LABEL)
    # A document accepted on an earlier attempt whose other fields had errors (signed reference).
    kept_document = HiddenField()


class BlankLinkForm(CleanForm):
    """A blank link form's per-request part: CSRF token, kept-document reference and document field. Its
    certificate fields are the same for every link and are rendered once (app/portal/links.py), so the
    ~35 fields of a :class:`LinkForm` are not built on every opening of a link."""

    document = FileField(DOCUMENT_LABEL)
    kept_document = HiddenField()
    form_errors_extra: dict[str, str] = {}  # noqa: RUF012 - read only, like LinkForm's (empty) one


class EditForm(CertificateForm):
    version = HiddenField()
    notes = TextAreaField("Notes (kept on the timeline)", validators=[Optional(), Length(max=5000)],
                          render_kw={"rows": 3})


class RequestForm(CleanForm):
    customer_id = IntegerField("Customer", validators=[DataRequired("Choose a customer.")])
    email = StringField("Send the link to (e-mail)",
                        validators=[Optional(), Length(max=254)], render_kw={"type": "email"})


class ResendForm(CleanForm):
    email = StringField("Send to (leave as is, or change the e-mail)", validators=[Optional(), Length(max=254)],
                        render_kw={"type": "email"})


class RejectForm(CleanForm):
    version = HiddenField()
    notes = TextAreaField("Why it is rejected (e-mailed to the customer)", validators=[DataRequired(
        "Tell the customer why the certificate is rejected."), Length(max=5000)], render_kw={"rows": 4})
    send_new_link = BooleanField("Send a new link, pre-filled with what they sent", default=True)


class ApproveForm(CleanForm):
    version = HiddenField()
    notes = TextAreaField("Review note (required to approve past a failed check; kept in the timeline)",
                          validators=[Optional(), Length(max=5000)], render_kw={"rows": 2})
