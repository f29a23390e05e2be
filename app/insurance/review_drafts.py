"""The certificate review form's draft: what a processor typed, kept as it is typed (see ``ReviewDraft``).

A draft is only worth keeping while the review form can be shown: the request is open, not being issued,
and automation is available for its customer. Submitting the certificate removes it.
"""

from __future__ import annotations

import re
from datetime import datetime

from app.extensions import db
from app.insurance.processing import ActionRefused, automation_available
from app.models import CertificateRequest, ReviewDraft, User

# The review form's own field names (``_request_certificate_form.html``); anything else is not a draft.
FIELD = re.compile(r"(holder_(name|address|city|state|zip_code|email)|description|override_note|send_to_holder"
                   r"|cov\.[a-z_]{1,40}\.(policy_id|policy_number|insurer|naic|marks|addl_insd|subr_wvd"
                   r"|limit\.[a-z0-9_]{1,40}))")
MAX_FIELDS = 300
MAX_LENGTH = {"description": 5000, "override_note": 1000}
DEFAULT_MAX_LENGTH = 200


def keeps_draft(req: CertificateRequest) -> bool:
    """Whether the request's review form can be shown, so a draft of it means something."""
    return req.is_open and not req.is_issuing and automation_available(req)[0]


def draft_for(req: CertificateRequest) -> ReviewDraft | None:
    """The draft to show on the request page (None when there is none or the form cannot be shown)."""
    if not keeps_draft(req):
        return None
    return db.session.get(ReviewDraft, req.id)


def clean_fields(form) -> dict[str, str]:
    """The review form's values, refused whole (ActionRefused) if any is not one of the form's fields or is
    longer than that field takes: a draft is saved as typed or not at all, never shortened."""
    out: dict[str, str] = {}
    for name in form:
        if name in ("csrf_token", "version"):
            continue
        if not FIELD.fullmatch(name) or len(out) >= MAX_FIELDS:
            raise ActionRefused("The draft was not saved: the form sent a field the review form does not have. "
                                "Reload the page.")
        value = str(form.get(name, ""))
        limit = MAX_LENGTH.get(name, DEFAULT_MAX_LENGTH)
        if len(value) > limit:
            raise ActionRefused(f"The draft was not saved: {name.replace('_', ' ')} is longer than {limit:,} "
                                f"characters ({len(value):,}).")
        out[name] = value
    return out


def save(req: CertificateRequest, form, *, actor: User, now: datetime) -> ReviewDraft:
    """Store the review form as typed (replacing the previous draft). Refused when the form cannot be shown
    any more (the request was completed, cancelled or submitted meanwhile)."""
    if not keeps_draft(req):
        raise ActionRefused("The draft was not saved: this request is no longer waiting for a reviewed "
                            "certificate. Reload the page.")
    fields = clean_fields(form)
    draft = db.session.get(ReviewDraft, req.id)
    if draft is None:
        draft = ReviewDraft(request_id=req.id)
        db.session.add(draft)
    draft.fields, draft.saved_by_id, draft.saved_at = fields, actor.id, now
    db.session.flush()
    return draft


def discard(req: CertificateRequest) -> None:
    """Forget the draft (after a submit, or when staff start over from the policies on file)."""
    draft = db.session.get(ReviewDraft, req.id)
    if draft is not None:
        db.session.delete(draft)
        db.session.flush()
