"""The agency (producer) printed on every certificate: stored as the ``agency`` setting, edited by admins.

Its own module so that the certificate data (``certificate_data.py``) and the issuing and delivery code
(``documents.py``) both read it without importing each other.
"""

from __future__ import annotations

from app.extensions import db
from app.models import Setting

AGENCY_KEY = "agency"
AGENCY_FIELDS = ("name", "contact_name", "phone", "fax", "email", "address", "city", "state", "zip_code",
                 "authorized_representative")
AGENCY_DEFAULTS = {
    "name": "CertDesk Insurance Services", "contact_name": "Certificates desk", "phone": "", "fax": "", "email": "",
    "address": "", "city": "", "state": "", "zip_code": "", "authorized_representative": "",
}


def get_agency() -> dict:
    """The producer printed on certificates (Setting ``agency``), with defaults for missing fields.

    Works without an app context too (then only the defaults), so the renderer can run in the
    benchmark and in worker processes.
    """
    values = dict(AGENCY_DEFAULTS)
    try:
        setting = db.session.get(Setting, AGENCY_KEY)
    except RuntimeError:  # no application context
        setting = None
    if setting is not None and isinstance(setting.value, dict):
        values.update({k: str(v or "") for k, v in setting.value.items() if k in AGENCY_FIELDS})
    return values


def save_agency(values: dict) -> None:
    """Store the producer details (only the known fields, stripped); flushes, does not commit."""
    clean = {k: str(values.get(k) or "").strip()[:200] for k in AGENCY_FIELDS}
    setting = db.session.get(Setting, AGENCY_KEY)
    if setting is None:
        db.session.add(Setting(key=AGENCY_KEY, value=clean))
    else:
        setting.value = clean
    db.session.flush()
