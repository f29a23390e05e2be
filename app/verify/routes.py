"""Verify pages: thin views over ``app.insurance.issuing`` (lookup by code or by SHA-256, state now)."""

import hashlib

from flask import abort, current_app, render_template, request
from flask_babel import gettext

from app.auth.access import public
from app.extensions import limiter
from app.i18n import format_day, label_of
from app.insurance import issuing
from app.models.base import utcnow
from app.uploads import PDF, UploadRejected, check_upload
from app.verify import bp


def _rate() -> str:
    return current_app.config.get("VERIFY_RATE_LIMIT", "30 per minute")


def state_text(state) -> str:
    """The state sentence in the reader's language (the API keeps ``state.message``, in English)."""
    when = format_day(state.on, "%m/%d/%Y") if state.on else ""
    if state.status == "superseded":
        if state.revision is not None:
            return gettext("Superseded by revision %(revision)s on %(when)s.", revision=state.revision, when=when)
        return gettext("Superseded by a later revision.")
    if state.status == "cancelled":
        return gettext("A policy on it was cancelled on %(when)s.", when=when)
    if state.status == "expired":
        return gettext("Expired: a policy on it ended on %(when)s.", when=when)
    return gettext("Current.")


def facts(cert) -> dict:
    """The only things a verify page shows: what the certificate prints on its face, and its state now."""
    data = cert.data or {}
    state = issuing.state_of(cert, utcnow().date())
    return {
        "holder": cert.holder_name, "insured": (data.get("insured") or {}).get("name") or cert.customer.name,
        "number": cert.certificate_number, "revision": cert.revision, "issued_on": cert.created_at,
        "kind": label_of(cert.kind), "state": state, "state_text": state_text(state), "code": cert.verification_code,
    }


@bp.route("/verify", methods=["GET", "POST"])
@public
@limiter.limit(_rate)
def verify_upload():
    """Upload a PDF: say whether it is byte for byte a certificate CertDesk issued, and which."""
    if request.method == "GET":
        return render_template("verify/upload.html")
    upload = request.files.get("file")
    data = upload.read() if upload is not None else b""
    try:
        check_upload(data, upload.filename if upload is not None else "", allowed=frozenset({PDF}))
    except UploadRejected as exc:
        return render_template("verify/upload.html", error=str(exc)), 422
    digest = hashlib.sha256(data).hexdigest()
    matches = issuing.find_by_sha256(digest)
    return render_template("verify/upload.html", checked=True, digest=digest,
                           matches=[facts(c) for c in matches])


@bp.route("/verify/<string(maxlength=40):code>")
@public
@limiter.limit(_rate)
def verify_code(code: str):
    cert = issuing.find_by_code(code)
    if cert is None:
        abort(404)
    return render_template("verify/certificate.html", f=facts(cert))
