"""Prefill the link form from a certificate the customer already filled in electronically.

Fillable state forms (Texas 01-339, the multistate MTC form, New York ST-120, Michigan 3372, District of
Columbia OTR-368, ...) carry their answers as PDF form fields. ``read_prefill`` reads those fields with
pypdf (the PDF library the upload checks already use; no OCR) and maps the ones it recognises onto the
link form's fields. Nothing is stored: the result only fills the form for the customer to confirm.

Each known form is described once, as data (``FORMS``): how to recognise it (a field only it has), the
state(s) it is for, and which of its fields holds which of ours.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext

from app.enums import ExemptionFormType, ExemptionReason, PurchaseType

DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%m-%d-%Y", "%B %d, %Y", "%b %d, %Y", "%d.%m.%Y")
MTC_STATE_FIELD = re.compile(r"^State Registration Sellers Permit or ID Number of Purchaser([A-Z]{2})\d*$")


class PrefillError(ValueError):
    """The document cannot be read for prefilling; the message is safe to show."""


@dataclass(frozen=True)
class KnownForm:
    name: str
    marker: str  # a field name only this form has
    state: str | None
    form_type: ExemptionFormType
    purchaser: tuple[str, ...] = ()
    address: tuple[str, ...] = ()
    state_id: tuple[str, ...] = ()
    signer: tuple[str, ...] = ()
    title: tuple[str, ...] = ()
    signed: tuple[str, ...] = ()
    single_use: tuple[str, ...] = ()
    po: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


FORMS = (
    KnownForm("Texas 01-339", "RFCnumber", "TX", ExemptionFormType.STATE_SPECIFIC,
              purchaser=("Purchaser",), address=("Purchaser address", "Purchaser city, state, ZIP"),
              state_id=("Permit number",), title=("Purchaser title",), signed=("Purchaser sig date",)),
    KnownForm("New York ST-120", "coa number 1", "NY", ExemptionFormType.STATE_SPECIFIC,
              purchaser=("purchaser's name",),
              address=("purchaser's address", "purchaser city", "purchaser state", "purchaser zip code"),
              state_id=("coa number 1", "coa number 2"), signer=("print signer's name",), signed=("date signed",),
              single_use=("single-use certificate",)),
    KnownForm("Multistate uniform (MTC)", "Name of Firm Buyer", None, ExemptionFormType.UNIFORM_MULTISTATE,
              purchaser=("Name of Firm Buyer",), address=("Address_2", "1", "2", "3"),
              title=("Title",), signed=("Date",)),
    KnownForm("Michigan 3372", "Sales_registration_no", "MI", ExemptionFormType.STATE_SPECIFIC,
              purchaser=("purchaser",), address=("business.address", "business.address.2", "city"),
              state_id=("Sales_registration_no",), signer=("Name_typed",), signed=("date.signed", "date"),
              po=("order.no",)),
    KnownForm("District of Columbia OTR-368", "DC CERT OF REGISTRATION #", "DC", ExemptionFormType.STATE_SPECIFIC,
              purchaser=("PURCHASER",), address=("PURCHASER'S ADDRESS", "CITY, STATE, ZIP 2"),
              state_id=("DC CERT OF REGISTRATION #",), title=("TITLE",), signed=("DATE",)),
)


def _text(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith("/"):  # a check box / radio state name
        return "" if text in ("/Off", "/0", "/no", "/No") else text
    # Forms pad values with spaces and sometimes print labels into the same field ("PHONE:", "EMAIL:").
    text = re.split(r"\s{3,}(?:PHONE|EMAIL):", text)[0]
    return " ".join(text.split())


def _first(values: dict[str, str], names: tuple[str, ...]) -> str:
    return next((values[n] for n in names if values.get(n)), "")


def _joined(values: dict[str, str], names: tuple[str, ...], sep: str = ", ") -> str:
    return sep.join(values[n] for n in names if values.get(n))


def parse_date(text: str) -> date | None:
    text = text.strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def read_fields(data: bytes) -> tuple[set[str], dict[str, str]]:
    """(every form field's name, the fields with a value by name). Raises PrefillError for a locked or
    unreadable PDF."""
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise PrefillError(gettext("The document is password-protected, so its fields cannot be read. Fill in "
                                       "the form yourself, or choose a copy without a password."))
        fields = reader.get_fields() or {}
    except PrefillError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PrefillError(gettext("The document is damaged or not a PDF, so its fields cannot be read.")) from exc
    values = {}
    for name, spec in fields.items():
        text = _text(spec.get("/V") if hasattr(spec, "get") else None)
        if text:
            values[str(name)] = text
    return {str(n) for n in fields}, values


def identify(names: set[str]) -> KnownForm | None:
    return next((f for f in FORMS if f.marker in names), None)


def read_prefill(data: bytes) -> tuple[str | None, dict]:
    """(the form recognised, the link form's fields it fills). An unknown or empty form gives (None, {})."""
    names, values = read_fields(data)
    form = identify(names)
    if form is None:
        return None, {}
    prefill: dict = {"form_type": str(form.form_type), "reason": str(ExemptionReason.RESALE)}
    if purchaser := _first(values, form.purchaser):
        prefill["purchaser_name"] = purchaser
    if address := _joined(values, form.address):
        prefill["purchaser_address"] = address
    if signer := _first(values, form.signer):
        prefill["signer_name"] = signer
    if title := _first(values, form.title):
        prefill["signer_title"] = title
    if (signed := parse_date(_first(values, form.signed))) is not None:
        prefill["signed_on"] = signed.isoformat()
    if _first(values, form.single_use):
        prefill["purchase_type"] = str(PurchaseType.SINGLE)
    if po := _first(values, form.po):
        prefill["po_number"] = po
        prefill["purchase_type"] = str(PurchaseType.SINGLE)
    jurisdictions = []
    if form.state:
        jurisdictions.append({"state": form.state, "state_id_number": _joined(values, form.state_id, " "),
                              "expiration_date": ""})
    else:
        for name, value in sorted(values.items()):
            if match := MTC_STATE_FIELD.match(name):
                jurisdictions.append({"state": match.group(1), "state_id_number": value, "expiration_date": ""})
    if jurisdictions:
        prefill["jurisdictions"] = jurisdictions
    typed = {k for k in prefill if k not in ("form_type", "reason", "jurisdictions")}
    if not typed and not any(j["state_id_number"] for j in jurisdictions):
        return form.name, {}  # only the seller's half (or nothing) is filled in
    return form.name, prefill
